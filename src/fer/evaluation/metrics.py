"""Test-split metrics: the numbers a user compares across runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, classification_report, f1_score

NO_ANSWER = -1  # the predicted index of an image in which no face was found: wrong for every class
# What a test set's metrics file holds for DVC to compare (the rest goes to the details file):
# accuracy, macro-F1 (fair to rare classes), and the calibrated ECE and NLL (probabilities to
# trust). Every metrics file's keys share one `dvc metrics show` table, a column each.
HEADLINE = ("accuracy", "macro_f1", "ece", "nll")


def compute(y_true, y_pred, classes: list[str], train_targets, angles=None, scored=None) -> dict:
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
        y_true, y_pred, labels=range(len(classes)), target_names=classes, output_dict=True, zero_division=0
    )
    out = {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(
            y_true,
            y_pred,
            labels=range(len(classes)) if scored is None else list(scored),
            average="macro",
            zero_division=0,
        ),
        "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
        "majority_baseline": float(np.mean(y_true == majority)),
        "majority_class": classes[majority],
        "test_images": len(y_true),
        "per_class": {
            c: {
                "precision": report[c]["precision"],
                "recall": report[c]["recall"],
                "f1": report[c]["f1-score"],
                "support": int(report[c]["support"]),
            }
            for c in classes
        },
    }
    if angles is not None and pd.notna(angles).all():
        hit = pd.Series(y_true == y_pred)
        out["accuracy_by_angle"] = hit.groupby(np.asarray(angles)).mean().to_dict()
    return out


def class_names(indices, classes: list[str]) -> list[str]:
    """Class names of predicted indices; `NO_ANSWER` (no face found) as "no face"."""
    return [classes[i] if i != NO_ANSWER else "no face" for i in np.asarray(indices)]


def confusion_rows(y_true, y_pred, classes: list[str]) -> pd.DataFrame:
    """One `actual,predicted` row per test image, with class names (DVC's confusion template)."""
    return pd.DataFrame({"actual": class_names(y_true, classes), "predicted": class_names(y_pred, classes)})
