"""Train/val/test assignment that never lets a person's face sit in two splits.

A random image-level split puts the same person (another session, another head angle)
in train and test, and the test accuracy then measures recognition of people, not of
expressions. Where subjects are known the default keeps whole subjects together;
`group_by: none` reproduces the leaky split so the difference can be measured. Where they
are not (FER2013), the dataset's own split is kept, and the protocol is reported as what
it is. `assign_folds` does the same for cross-validation: whole subjects per fold, and
every subject tested exactly once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupShuffleSplit,
    LeaveOneGroupOut,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

from fer import FerError
from fer.data.cache import SPLITS

# What the split's metrics file holds for DVC to compare (the rest of `summary` goes to the
# details file): how many people sit in two splits, 0 when the test numbers are on unseen people.
HEADLINE = ("subject_overlap",)


def assign(
    images: pd.DataFrame, val: float, test: float, seed: int, group_by: str = "subject"
) -> tuple[pd.Series, str]:
    """The split ("train"/"val"/"test") of every row of `images`, and the protocol used.

    images: needs `label`; `subject` and `official` (the dataset's own split) are used
    where present and non-empty. In order of preference:
    - subjects known and group_by "subject": whole subjects per split (subject-disjoint);
    - the dataset's own split (FER2013's Training/PublicTest/PrivateTest); a missing val
      split is carved from train, stratified by class;
    - otherwise images are split stratified by class: subjects leak (group_by "none") or
      are unknown.
    val, test: fractions of subjects, or of images when split by image.
    Raises FerError if a split would be empty or miss a class.
    """
    official = images["official"] if _has_official(images) else pd.Series("", index=images.index)
    has_subjects = _known(images, "subject")
    split = pd.Series("train", index=images.index)
    if group_by == "subject" and has_subjects:
        n_subjects = images["subject"].nunique()
        if n_subjects < 3:
            raise FerError(
                f"only {n_subjects} subject(s) found; a subject-disjoint train/val/test split "
                "needs at least 3 (add data or set split.group_by: none)"
            )
        rest, test_idx = _group_split(images, test, seed)
        train_idx, val_idx = _group_split(images.iloc[rest], val / (1 - test), seed)
        split.iloc[rest[val_idx]] = "val"
        split.iloc[test_idx] = "test"
        protocol = "subject-disjoint"
    elif set(official) == set(SPLITS):
        split[:] = official
        protocol = "official split"
    elif set(official) == {"train", "test"}:
        split[:] = official
        train_rows = np.flatnonzero(official == "train")
        _, val_pos = _stratified(images["label"].iloc[train_rows], val, seed)
        split.iloc[train_rows[val_pos]] = "val"
        protocol = "official train/test; val carved from train (stratified, seeded)"
    else:
        rest, test_idx = _stratified(images["label"], test, seed)
        _, val_pos = _stratified(images["label"].iloc[rest], val / (1 - test), seed)
        split.iloc[rest[val_pos]] = "val"
        split.iloc[test_idx] = "test"
        protocol = "image-level (subjects leak)" if has_subjects else "stratified by class (subjects unknown)"
    _check_classes(images["label"], split)
    return split, protocol


def select_angles(images: pd.DataFrame, angles, name: str = "split.angles") -> pd.DataFrame:
    """The rows of `images` taken at one of `angles` (head angles, e.g. KDEF's frontal "S");
    all rows when `angles` is empty. Raises FerError when the dataset names no angles, or
    not one of those asked for."""
    if not angles:
        return images
    present = sorted(set(images["angle"]) - {""}) if "angle" in images else []
    if not present:
        raise FerError(
            f"{name} keeps some head angles, but this dataset names none (KDEF's file names do); leave {name} empty"
        )
    absent = [a for a in angles if a not in present]
    if absent:
        raise FerError(f"{name}: no image at {', '.join(absent)}; this dataset has {', '.join(present)}")
    return images[images["angle"].isin(angles)].reset_index(drop=True)


def _known(images: pd.DataFrame, column: str) -> bool:
    """Whether every row has a non-empty `column`."""
    return column in images and images[column].notna().all() and (images[column] != "").all()


def _has_official(images: pd.DataFrame) -> bool:
    """Whether the dataset assigns every image its own split (FER2013's file prefixes)."""
    return _known(images, "official")


def drop_repeats(images: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Use each image content (`digest`) once: (images to split, repeats).

    repeats: `path`, `same_as` (the first copy), `reason`, `dropped`. Under the dataset's own
    split (every `official` set) nothing is dropped: that split is the protocol others
    report, so its repeats are kept and only listed.
    """
    first = images.groupby("digest")["path"].transform("first")
    later = images["digest"].duplicated()
    keep_all = _has_official(images)
    repeats = pd.DataFrame({"path": images["path"][later], "same_as": first[later]}).reset_index(drop=True)
    repeats["reason"] = "same content as " + repeats["same_as"]
    repeats["dropped"] = not keep_all
    return (images if keep_all else images[~later].reset_index(drop=True)), repeats


def locate_repeats(repeats: pd.DataFrame, images: pd.DataFrame) -> pd.DataFrame:
    """`repeats` with the split of each copy (`split` empty for a dropped copy)."""
    where = images.set_index("path")["split"]
    return repeats.assign(split=repeats["path"].map(where).fillna(""), same_as_split=repeats["same_as"].map(where))


def _stratified(labels: pd.Series, fraction: float, seed: int):
    """Positions (keep, out) with `fraction` of each class out."""
    idx = np.arange(len(labels))
    try:
        return tuple(
            np.asarray(a) for a in train_test_split(idx, test_size=fraction, random_state=seed, stratify=labels)
        )
    except ValueError as e:  # a class too small to appear on both sides
        raise FerError(f"cannot split by class: {e}; some class has too few images for the split fractions") from None


def _group_split(df: pd.DataFrame, fraction: float, seed: int):
    n_subjects = df["subject"].nunique()
    # At least one subject on each side, whatever the fraction rounds to.
    n_out = min(max(1, round(fraction * n_subjects)), n_subjects - 1)
    gss = GroupShuffleSplit(n_splits=1, test_size=n_out, random_state=seed)
    keep, out = next(gss.split(df, groups=df["subject"]))
    return keep, out


def _stratified_group_split(df: pd.DataFrame, fraction: float, seed: int):
    """Positions (keep, out): about `fraction` of the subjects out (one of round(1 / fraction)
    subject groups), stratified by class as far as the subjects allow, so that a class few
    people show still reaches both sides."""
    n = min(max(2, round(1 / fraction)), df["subject"].nunique())
    sgkf = StratifiedGroupKFold(n, shuffle=True, random_state=seed)
    keep, out = next(sgkf.split(df, df["label"], groups=df["subject"]))
    return keep, out


def _check_classes(labels: pd.Series, split: pd.Series, where: str = "", splits=SPLITS) -> None:
    want = set(labels)
    for name in splits:
        missing = want - set(labels[split == name])
        if missing:
            raise FerError(
                f"{where}the {name} split has no images of {', '.join(sorted(missing))}; "
                "use more subjects, larger split fractions, fewer folds, or another split.seed"
            )


def assign_folds(
    images: pd.DataFrame, folds: int | str, val: float, seed: int, group_by: str = "subject"
) -> tuple[pd.DataFrame, str]:
    """Cross-validation folds: every image is tested in exactly one fold.

    images: needs `label`; `subject` is used where known and group_by is "subject".
    folds: k >= 2, or "loso" (one fold per subject). With subjects, folds hold whole
    subjects, stratified by class as far as the subjects allow (StratifiedGroupKFold);
    without them (or group_by "none"), folds are stratified by image. In each fold, val
    (`val` of the other folds' subjects, or images) picks the best epoch; train is the rest.
    A dataset with its own split (FER2013's PrivateTest) is refused: its published numbers
    are on that split, and folds would mix it into training.
    Returns (a row per fold and image: `fold`, `image` (position in `images`), `split`
    train/val/test; the protocol). Raises FerError when a class is in too few subjects
    (or images) for the folds, or a fold's train or val split misses a class.
    """
    if _has_official(images):
        raise FerError(
            "split.folds: this dataset comes with its own train/val/test split (FER2013's "
            "Training/PublicTest/PrivateTest), the one its results are reported on; cross-validation "
            "would train on its test images. Set split.folds=0 to keep the official split"
        )
    by_subject = group_by == "subject" and _known(images, "subject")
    splitter, groups, protocol = _fold_splitter(images, folds, seed, by_subject)
    try:
        tests = [test for _, test in splitter.split(images, images["label"], groups)]
    except ValueError as e:
        raise FerError(f"split.folds={folds}: {e}") from None
    everything, parts = np.arange(len(images)), []
    for i, test in enumerate(tests):
        split = pd.Series("train", index=images.index)
        split.iloc[test] = "test"
        rest = np.setdiff1d(everything, test)
        if by_subject:
            _, val_pos = _stratified_group_split(images.iloc[rest], val, seed)
        else:
            _, val_pos = _stratified(images["label"].iloc[rest], val, seed)
        split.iloc[rest[val_pos]] = "val"
        # One subject's test set (loso) rarely shows every expression; pooled metrics cover them.
        _check_classes(images["label"], split, f"fold {i}: ", SPLITS if folds != "loso" else ("train", "val"))
        parts.append(pd.DataFrame({"fold": i, "image": everything, "split": split.to_numpy()}))
    return pd.concat(parts, ignore_index=True), protocol


def _fold_splitter(images: pd.DataFrame, folds: int | str, seed: int, by_subject: bool):
    """(scikit-learn splitter, groups, protocol) for `assign_folds`; checks every class can
    reach every fold's test set."""
    unit = "subjects" if by_subject else "images"
    if folds == "loso":
        if not by_subject:
            raise FerError(
                "split.folds=loso leaves one subject out, but "
                + ("split.group_by is none" if _known(images, "subject") else "the subjects are unknown")
                + ": set data.subject_pattern (folders) and split.group_by=subject, or use split.folds=k"
            )
        return LeaveOneGroupOut(), images["subject"], "leave-one-subject-out"
    spread = images.groupby("label")["subject"].nunique() if by_subject else images["label"].value_counts()
    few = spread[spread < folds]
    if len(few):
        raise FerError(
            f"split.folds={folds}: every fold's test set needs every class, but "
            + ", ".join(f"{c} has {n} {unit}" for c, n in few.items())
            + f"; use split.folds={max(2, int(few.min()))} or fewer, or drop the class with data.classes"
        )
    if by_subject:
        return (
            StratifiedGroupKFold(folds, shuffle=True, random_state=seed),
            images["subject"],
            f"{folds}-fold, subject-disjoint",
        )
    leak = "subjects leak" if _known(images, "subject") else "subjects unknown"
    return StratifiedKFold(folds, shuffle=True, random_state=seed), None, f"{folds}-fold by image ({leak})"


def fold_counts(images: pd.DataFrame, folds: pd.DataFrame, protocol: str) -> dict:
    """What the folds are, for metrics/split.json: protocol, count, test images per fold and
    subjects tested in two folds (0; None where subjects are unknown)."""
    test = folds[folds["split"] == "test"]
    out = {
        "protocol": protocol,
        "folds": int(folds["fold"].nunique()),
        "test_images": test.groupby("fold").size().tolist(),
    }
    if not _known(images, "subject"):
        return {**out, "subjects": "unknown", "subject_overlap": None}
    subject = images["subject"].to_numpy()[test["image"]]
    return {**out, "subject_overlap": int((pd.Series(test["fold"].to_numpy()).groupby(subject).nunique() > 1).sum())}


def counts(images: pd.DataFrame, split: pd.Series, protocol: str, repeats: pd.DataFrame | None = None) -> dict:
    """What the split did, for metrics/: protocol, sizes, repeated images (from
    `locate_repeats`) and subjects found in two splits (None where the dataset does not
    identify people)."""
    out = {"protocol": protocol, **{f"{name}_images": int((split == name).sum()) for name in SPLITS}}
    if repeats is not None:
        kept = repeats[repeats["split"] != ""]
        out["duplicates"] = len(repeats)
        out["duplicates_across_splits"] = int((kept["split"] != kept["same_as_split"]).sum())
    if not _known(images, "subject"):
        return {**out, "subjects": "unknown", "subject_overlap": None}
    subjects = images["subject"]
    return {
        **out,
        "subject_overlap": int((split.groupby(subjects).nunique() > 1).sum()),
        **{f"{name}_subjects": int(subjects[split == name].nunique()) for name in SPLITS},
    }
