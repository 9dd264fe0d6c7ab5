"""PNG figures for people who just want to look (DVC renders the CSV and TSV files itself),
and fer-video's timeline."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay


def confusion_png(
    confusion: pd.DataFrame, classes: list[str], path: str | Path, title: str = "Test confusion matrix"
) -> None:
    """Confusion matrix of `actual`/`predicted` rows, counts and row-normalised colour
    (with no rows, a figure that says `title`)."""
    if confusion.empty:
        return _note_png(title, path)
    fig, ax = plt.subplots(figsize=(7, 6))
    ConfusionMatrixDisplay.from_predictions(
        confusion["actual"],
        confusion["predicted"],
        labels=classes,
        ax=ax,
        cmap="Blues",
        xticks_rotation=45,
        colorbar=False,
    )
    acc = (confusion["actual"] == confusion["predicted"]).mean()
    ax.set_title(f"{title} (accuracy {acc:.1%}, n={len(confusion)})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def live_history(live_dir: str | Path) -> pd.DataFrame:
    """The train stage's dvclive metrics (one `step<TAB>name` TSV per metric) as one table,
    a row per epoch (dvclive's step is the epoch)."""
    files = sorted(Path(live_dir, "plots", "metrics").glob("*.tsv"))
    return pd.concat([pd.read_csv(f, sep="\t", index_col="step") for f in files], axis=1).rename_axis("epoch")


def curve_png(history: pd.DataFrame, metric: str, path: str | Path) -> None:
    """Train and val `metric` ("acc" or "loss") per epoch (`history`'s index)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for split in ("train", "val"):
        ax.plot(history.index, history[f"{split}_{metric}"], marker=".", label=split)
    ax.set_xlabel("epoch")
    ax.set_ylabel({"acc": "accuracy"}.get(metric, metric))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def folds_png(table: pd.DataFrame, path: str | Path) -> None:
    """Each fold's value of each metric (`fold`, `metric`, `value` rows) as points, the mean
    over folds as a line: how far one split's number can move."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for offset, (metric, rows) in zip((-0.15, 0, 0.15), table.groupby("metric", sort=False)):
        line = ax.plot(rows["fold"] + offset, rows["value"], "o", label=metric)[0]
        ax.axhline(rows["value"].mean(), color=line.get_color(), lw=1, alpha=0.6)
    ax.set_xticks(sorted(table["fold"].unique()))
    ax.set_xlabel("fold")
    ax.set_ylabel("test value (line: mean over folds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def reliability_png(bins: dict[str, pd.DataFrame], ece: dict[str, float], path: str | Path) -> None:
    """Reliability diagram: per confidence bin, how often the answers were right against how
    sure the model was (`calibration.reliability`'s rows, one table per name: before and
    after calibration, each with its measured `ece`); on the diagonal, probabilities mean what they say."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfectly calibrated")
    for name, rows in bins.items():
        ax.plot(rows["confidence"], rows["accuracy"], marker="o", label=f"{name} (ECE {ece[name]:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (mean of the bin's highest probability)")
    ax.set_ylabel("accuracy in the bin")
    ax.set_title("Reliability diagram, test split")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def coverage_png(curve: pd.DataFrame, path: str | Path) -> None:
    """Accuracy of the faces answered when only the most confident share is answered."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(curve["coverage"], curve["accuracy"], marker=".")
    ax.set_xlabel("coverage (share of test faces answered, most confident first)")
    ax.set_ylabel("accuracy of the answered faces")
    ax.set_title("Selective prediction: accuracy against coverage")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def timeline_png(means: pd.DataFrame, classes: list[str], path: str | Path, max_tracks: int = 8) -> None:
    """fer-video's timeline: each class's smoothed probability over time, one panel per track
    (the `max_tracks` longest in view); `means` holds `time` and `smoothed_<class>` indexed by
    (track, time bin), as `fer.use.video.timeline_means` gives them."""
    if means.empty:
        return _note_png("no face was found in the video", path)
    longest = means.groupby(level=0).size().sort_values(ascending=False).index[:max_tracks]
    fig, axes = plt.subplots(len(longest), 1, figsize=(10, 2.2 * len(longest) + 0.6), sharex=True, squeeze=False)
    for ax, track in zip(axes[:, 0], sorted(longest)):
        curve = means.loc[track]
        for c in classes:
            ax.plot(curve["time"], curve[f"smoothed_{c}"], label=c, lw=1.2)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"track {track}")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(ncol=min(len(classes), 8), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.35))
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _note_png(text: str, path: str | Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    fig.savefig(path, dpi=120)
    plt.close(fig)
