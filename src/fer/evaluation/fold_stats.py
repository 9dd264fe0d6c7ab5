"""What the folds say together: mean, spread and interval of each fold metric, and the
paired comparison of two cross-validations over the same folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from fer.evaluation import calibration

FOLD_METRICS = ("accuracy", "macro_f1", "balanced_accuracy")  # each gets a spread over folds and a paired test
CONFIDENCE = 0.95


def t_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t interval of the mean of `values`, the folds taken as samples (the mean
    itself when there is no spread to go on)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2 or np.all(v == v[0]):
        return float(v.mean()), float(v.mean())
    lo, hi = stats.t.interval(confidence, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    return float(lo), float(hi)


def spread(values) -> dict:
    """mean, std (over folds, ddof=1), min, max and the t-interval of the mean."""
    v = np.asarray(values, dtype=float)
    lo, hi = t_interval(v)
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
        "ci95_low": lo,
        "ci95_high": hi,
    }


def summarize(folds: list[dict], predictions: pd.DataFrame, classes: list[str], split: dict, digest: str) -> dict:
    """Cross-validation's details: the spread of each fold metric over `folds` (each with the
    evaluate stage's `metrics`), the pooled metrics of every test prediction (`actual`,
    `predicted`), the per-fold values, and what the folds were (protocol from the split
    stage's `cv` summary, `folds_digest`: equal digests mean the same images in the same folds)."""
    if not folds:
        return {"folds": 0}
    per_fold = {m: [f["metrics"][m] for f in folds] for m in FOLD_METRICS}
    y_true, y_pred = predictions["actual"], predictions["predicted"]
    pooled = {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0),
        "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
    }
    # per head angle (KDEF): the spread over folds of each angle's accuracy
    angles = [f["metrics"].get("accuracy_by_angle") for f in folds]
    by_angle = (
        {"accuracy_by_angle": {a: spread([f[a] for f in angles]) for a in sorted(angles[0])}}
        if all(angles) and all(f.keys() == angles[0].keys() for f in angles)
        else {}
    )
    return {
        "folds": len(folds),
        "protocol": split.get("protocol", ""),
        "subjects": split.get("subjects", "known"),
        **{m: spread(per_fold[m]) for m in FOLD_METRICS},
        **by_angle,
        "pooled": {k: float(v) for k, v in pooled.items()},
        "test_images": len(predictions),
        "calibration": pooled_calibration(folds, predictions),
        "per_fold": {
            **per_fold,
            "test_images": [f["metrics"]["test_images"] for f in folds],
            "best_epoch": [f["best_epoch"] for f in folds],
        },
        "folds_digest": digest,
    }


def headline(cv: dict) -> dict:
    """What cross-validation's metrics file holds for DVC to compare (`summarize` gives the rest):
    the number of folds, the mean accuracy over folds with its 95% interval, and the mean
    macro-F1, under `summarize`'s names (`accuracy.mean`, ...: apart from the single split's
    `accuracy`, so `dvc exp show` keeps both columns under short names); nothing without
    folds, so the single split's table gains no column."""
    if not cv["folds"]:
        return {}
    return {
        "folds": cv["folds"],
        "accuracy": {k: cv["accuracy"][k] for k in ("mean", "ci95_low", "ci95_high")},
        "macro_f1": {"mean": cv["macro_f1"]["mean"]},
    }


def pooled_calibration(folds: list[dict], predictions: pd.DataFrame) -> dict:
    """Calibration over every fold's test images: ECE from the pooled answers (`confidence`,
    `confidence_uncalibrated`), NLL and Brier score as the folds' means weighted by their test
    images (both are means over images), and the spread of the folds' fitted temperatures."""
    correct = (predictions["actual"] == predictions["predicted"]).to_numpy()
    weights = np.array([f["metrics"]["test_images"] for f in folds], dtype=float)
    out = {"temperature": spread([f["metrics"]["calibration"]["temperature"] for f in folds]), "bins": calibration.BINS}
    for name, column in calibration.CONFIDENCE.items():
        out[name] = {
            "ece": calibration.ece(predictions[column], correct),
            **{
                m: float(np.average([f["metrics"]["calibration"][name][m] for f in folds], weights=weights))
                for m in ("nll", "brier")
            },
        }
    return out


def fold_table(cv: dict) -> pd.DataFrame:
    """One row per fold and metric (`fold`, `metric`, `value`): the per-fold plot's data."""
    rows = [{"fold": i, "metric": m, "value": v} for m in FOLD_METRICS for i, v in enumerate(cv["per_fold"][m])]
    return pd.DataFrame(rows, columns=["fold", "metric", "value"])


def paired(a, b, confidence: float = CONFIDENCE) -> dict:
    """B - A over the same folds: the mean difference, its t-interval, the paired t-test's
    and the Wilcoxon signed-rank test's p-values (None where undefined: fewer than 2 folds,
    or no fold differs)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = b - a
    lo, hi = t_interval(d, confidence)
    varies = len(d) > 1 and not np.all(d == d[0])
    t_p = float(stats.ttest_rel(b, a).pvalue) if varies else None
    w_p = float(stats.wilcoxon(d).pvalue) if varies and np.any(d != 0) else None
    return {
        "folds": len(d),
        "a_mean": float(a.mean()),
        "b_mean": float(b.mean()),
        "diff": float(d.mean()),
        "ci95_low": lo,
        "ci95_high": hi,
        "t_test_p": t_p,
        "wilcoxon_p": w_p,
        "b_wins": int((d > 0).sum()),
        "a_wins": int((d < 0).sum()),
    }
