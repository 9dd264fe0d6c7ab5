"""Test-split metrics: the numbers a user compares across runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, classification_report, f1_score


def metrics(y_true, y_pred, classes: list[str], train_targets, angles=None, scored=None) -> dict:
    """Flat headline metrics plus nested detail.

    y_true, y_pred: class indices of the test images; train_targets: those of the train
    split, for the majority-class baseline (always answering the most common train class).
    angles: head angle per test image, or None where the dataset has none.
    scored: the class indices macro-F1 averages over (default all): a test set from another
    dataset leaves out the model's classes it does not hold.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    majority = np.bincount(np.asarray(train_targets), minlength=len(classes)).argmax()
    report = classification_report(
        y_true, y_pred, labels=range(len(classes)), target_names=classes, output_dict=True, zero_division=0)
    out = {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, labels=range(len(classes)) if scored is None else list(scored),
                             average="macro", zero_division=0),
        "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
        "majority_baseline": float(np.mean(y_true == majority)),
        "majority_class": classes[majority],
        "test_images": len(y_true),
        "per_class": {
            c: {"precision": report[c]["precision"], "recall": report[c]["recall"],
                "f1": report[c]["f1-score"], "support": int(report[c]["support"])}
            for c in classes
        },
    }
    if angles is not None and pd.notna(angles).all():
        hit = pd.Series(y_true == y_pred)
        out["accuracy_by_angle"] = hit.groupby(np.asarray(angles)).mean().to_dict()
    return out


def confusion_rows(y_true, y_pred, classes: list[str]) -> pd.DataFrame:
    """One `actual,predicted` row per test image, with class names (DVC's confusion template)."""
    names = np.asarray(classes)
    return pd.DataFrame({"actual": names[np.asarray(y_true)], "predicted": names[np.asarray(y_pred)]})
