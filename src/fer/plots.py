"""PNG figures for people who just want to look (DVC renders the CSV and TSV files itself)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay


def confusion_png(confusion: pd.DataFrame, classes: list[str], path: str | Path) -> None:
    """Confusion matrix of `actual`/`predicted` rows, counts and row-normalised colour."""
    fig, ax = plt.subplots(figsize=(7, 6))
    ConfusionMatrixDisplay.from_predictions(
        confusion["actual"], confusion["predicted"], labels=classes, ax=ax, cmap="Blues",
        xticks_rotation=45, colorbar=False)
    acc = (confusion["actual"] == confusion["predicted"]).mean()
    ax.set_title(f"Test confusion matrix (accuracy {acc:.1%}, n={len(confusion)})")
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
