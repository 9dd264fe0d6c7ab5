"""Who the model fails: accuracy per group of every attribute the data gives.

One accuracy over everyone hides that a model may do much worse on some people, head angles
or one sex. Every column known of the test images that is not the label or bookkeeping
(KDEF's subject, sex, angle and session; the subject wherever subjects are known; whatever a
label CSV or a file-name pattern adds) is an attribute; each gets its groups' accuracy and
count, the worst group and its gap to the best. People are many and each is tested on few
images, so per subject the spread (worst, median, best person) is reported instead of a list.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# columns of the image tables that describe the label or the file, not the image's subject
NOT_ATTRIBUTES = ["path", "label", "target", "official", "raw_label", "digest", "votes", "split", "fold"]


def attributes(images: pd.DataFrame) -> pd.DataFrame:
    """The columns of a table of images (facts, manifest rows) that are attributes of the images."""
    return images.drop(columns=NOT_ATTRIBUTES, errors="ignore")


def by_group(correct, attributes: pd.DataFrame) -> dict:
    """For each column of `attributes` (one row per test image, aligned with `correct`) with
    at least two known values: its groups' accuracy and count (for subject, the spread
    instead), the worst and best group, and the gap between them (accuracy, 0-1)."""
    out = {}
    for column, g in table(correct, attributes).groupby("attribute", sort=False):
        worst, best = g.iloc[0], g.iloc[-1]
        entry = {
            "worst": worst["group"],
            "worst_accuracy": float(worst["accuracy"]),
            "best": best["group"],
            "best_accuracy": float(best["accuracy"]),
            "gap": float(best["accuracy"] - worst["accuracy"]),
        }
        if column == "subject":
            entry.update(
                people=len(g),
                median_accuracy=float(g["accuracy"].median()),
                images_per_person=float(g["count"].median()),
            )
        else:
            entry["groups"] = {r.group: {"accuracy": float(r.accuracy), "count": int(r.count)} for r in g.itertuples()}
        out[column] = entry
    return out


def table(correct, attributes: pd.DataFrame) -> pd.DataFrame:
    """Every group of every attribute as rows (attribute, group, accuracy, count), worst first
    within each attribute: the per-person list `by_group` summarises."""
    correct = pd.Series(np.asarray(correct, dtype=float))
    parts = []
    for column in attributes.columns:
        values = attributes[column].reset_index(drop=True).replace("", np.nan)
        if values.notna().sum() == 0 or values.nunique() < 2:
            continue
        g = correct[values.notna()].groupby(values.dropna().astype(str)).agg(accuracy="mean", count="size")
        parts.append(g.sort_values(["accuracy", "count"]).rename_axis("group").reset_index().assign(attribute=column))
    columns = ["attribute", "group", "accuracy", "count"]
    return pd.concat(parts)[columns] if parts else pd.DataFrame(columns=columns)
