"""Train/val/test assignment that never lets a person's face sit in two splits.

A random image-level split puts the same person (another session, another head angle)
in train and test, and the test accuracy then measures recognition of people, not of
expressions. The default keeps whole subjects together; `group_by: none` reproduces the
leaky split so the difference can be measured.
"""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from fer import FerError

SPLITS = ("train", "val", "test")


def assign(images: pd.DataFrame, val: float, test: float, seed: int, group_by: str = "subject") -> pd.Series:
    """The split ("train"/"val"/"test") of every row of `images`.

    images: needs `label`, and `subject` when group_by is "subject".
    val, test: fractions of subjects (or of images for group_by "none").
    Raises FerError if a split would be empty or miss a class.
    """
    if group_by == "subject":
        n_subjects = images["subject"].nunique()
        if n_subjects < 3:
            raise FerError(
                f"only {n_subjects} subject(s) found; a subject-disjoint train/val/test split "
                "needs at least 3 (add data or set split.group_by: none)"
            )
        rest, test_idx = _group_split(images, test, seed)
        rest_df = images.iloc[rest]
        train_idx, val_idx = _group_split(rest_df, val / (1 - test), seed)
        val_idx, train_idx = rest[val_idx], rest[train_idx]
    else:
        idx = pd.RangeIndex(len(images))
        rest, test_idx = train_test_split(idx, test_size=test, random_state=seed, stratify=images["label"])
        train_idx, val_idx = train_test_split(
            rest, test_size=val / (1 - test), random_state=seed, stratify=images["label"].iloc[rest]
        )
    split = pd.Series("train", index=images.index)
    split.iloc[val_idx] = "val"
    split.iloc[test_idx] = "test"
    _check_classes(images["label"], split)
    return split


def _group_split(df: pd.DataFrame, fraction: float, seed: int):
    n_subjects = df["subject"].nunique()
    # At least one subject on each side, whatever the fraction rounds to.
    n_out = min(max(1, round(fraction * n_subjects)), n_subjects - 1)
    gss = GroupShuffleSplit(n_splits=1, test_size=n_out, random_state=seed)
    keep, out = next(gss.split(df, groups=df["subject"]))
    return keep, out


def _check_classes(labels: pd.Series, split: pd.Series) -> None:
    want = set(labels)
    for name in SPLITS:
        missing = want - set(labels[split == name])
        if missing:
            raise FerError(
                f"the {name} split has no images of {', '.join(sorted(missing))}; "
                "use more subjects, larger split fractions, or another split.seed"
            )


def summary(images: pd.DataFrame, split: pd.Series, group_by: str) -> dict:
    """What the split did, for metrics/: protocol, sizes, and subjects found in two splits."""
    owners = split.groupby(images["subject"]).nunique()
    return {
        "protocol": "subject-disjoint" if group_by == "subject" else "image-level (subjects leak)",
        "subject_overlap": int((owners > 1).sum()),
        **{f"{name}_images": int((split == name).sum()) for name in SPLITS},
        **{f"{name}_subjects": int(images["subject"][split == name].nunique()) for name in SPLITS},
    }
