"""Whether the probabilities mean what they say, and how accurate the model is where it is sure.

- `measure`: expected calibration error (ECE: over confidence bins, the gap between how sure
  the model is and how often it is right, weighted by the bin's share of faces), negative
  log-likelihood and Brier score.
- `reliability`: the reliability diagram's bins (mean confidence, accuracy, count).
- `coverage_curve` and `selective`: selective prediction. Answer only the faces the model is
  most sure of; the accuracy-coverage curve says how accurate the answered share is, and
  `selective` reads it at a few coverages and at a few confidence thresholds (what
  `fer-predict --min-confidence` does).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import brier_score_loss, log_loss
from torchmetrics.functional.classification import binary_calibration_error

BINS = 15  # ECE's equal-width confidence bins, as Guo et al. (2017) use
# the column of an answers table (actual, predicted, ...) that holds each answer's confidence, by calibration
CONFIDENCE = {"uncalibrated": "confidence_uncalibrated", "calibrated": "confidence"}
COVERAGES = (0.9, 0.8, 0.5)
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def ece(confidence, correct, bins: int = BINS) -> float:
    """Top-label expected calibration error of answers given with `confidence` (the highest
    probability) that were `correct` (bool)."""
    if not len(confidence):
        return float("nan")
    return float(
        binary_calibration_error(
            torch.as_tensor(np.asarray(confidence, dtype=np.float32)),
            torch.as_tensor(np.asarray(correct, dtype=np.int64)),
            n_bins=bins,
        )
    )


def measure(probs: np.ndarray, y_true, bins: int = BINS) -> dict:
    """ECE, negative log-likelihood (nats) and Brier score (summed over classes, 0-2) of
    probabilities `probs` (N, classes)."""
    y_true, labels = np.asarray(y_true), list(range(probs.shape[1]))
    if not len(y_true):
        return {"ece": float("nan"), "nll": float("nan"), "brier": float("nan")}
    return {
        "ece": ece(probs.max(1), probs.argmax(1) == y_true, bins),
        "nll": float(log_loss(y_true, probs, labels=labels)),
        "brier": float(brier_score_loss(y_true, probs, labels=labels, scale_by_half=False)),
    }


def reliability(confidence, correct, bins: int = BINS) -> pd.DataFrame:
    """One row per non-empty confidence bin: the answers' mean `confidence`, their `accuracy` and `count`."""
    frame = pd.DataFrame({"confidence": np.asarray(confidence, dtype=float), "accuracy": np.asarray(correct, float)})
    binned = frame.groupby(pd.cut(frame["confidence"], np.linspace(0, 1, bins + 1), include_lowest=True), observed=True)
    return binned.mean().assign(count=binned.size()).reset_index(drop=True)


def reliability_by_kind(answers: pd.DataFrame, bins: int = BINS) -> dict[str, pd.DataFrame]:
    """`reliability` of a table of answers (actual, predicted and the `CONFIDENCE` columns),
    uncalibrated and calibrated."""
    correct = answers["actual"] == answers["predicted"]
    return {kind: reliability(answers[column], correct, bins) for kind, column in CONFIDENCE.items()}


def coverage_curve(confidence, correct, points: int = 100) -> pd.DataFrame:
    """Accuracy of the most confident share of answers, for shares (`coverage`) from 1/points
    to all; `min_confidence`: the lowest confidence answered at that share."""
    order = np.argsort(-np.asarray(confidence), kind="stable")
    hits = np.cumsum(np.asarray(correct, dtype=float)[order])
    n = len(order)
    k = (
        np.unique((-(-np.arange(1, points + 1) * n // points)).clip(1, n)) if n else np.zeros(0, int)
    )  # ceil(i n / points)
    return pd.DataFrame(
        {
            "coverage": k / max(n, 1),
            "accuracy": hits[k - 1] / k,
            "min_confidence": np.asarray(confidence, dtype=float)[order][k - 1],
        }
    )


def selective(confidence, correct) -> dict:
    """Accuracy at `COVERAGES` of the faces (the most confident ones) and at each confidence
    threshold of `THRESHOLDS` (faces below it left unanswered): what `fer-predict --min-confidence` gives.
    An accuracy of nothing answered is None."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
    curve = coverage_curve(confidence, correct, points=1000)
    at_coverage = {}
    for c in COVERAGES:
        row = curve[curve["coverage"] >= c - 1e-9].iloc[0] if len(curve) else None
        at_coverage[f"{c:.0%}"] = (
            {"accuracy": float(row["accuracy"]), "min_confidence": float(row["min_confidence"])}
            if row is not None
            else {}
        )
    at_confidence = {}
    for t in THRESHOLDS:
        answered = confidence >= t
        at_confidence[f"{t:g}"] = {
            "coverage": float(answered.mean()) if len(answered) else 0.0,
            "accuracy": float(correct[answered].mean()) if answered.any() else None,
        }
    return {"at_coverage": at_coverage, "at_confidence": at_confidence}
