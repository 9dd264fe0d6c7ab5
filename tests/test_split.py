import numpy as np
import pandas as pd
import pytest

from fer import FerError
from fer.data.labels import CLASSES
from fer.data.split import assign, assign_folds, counts, fold_counts, select_angles


def kdef_like(subjects: int, per_class: int = 2) -> pd.DataFrame:
    rows = [{"subject": f"S{s:02d}", "label": c} for s in range(subjects) for c in CLASSES for _ in range(per_class)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("subjects", [3, 5, 10, 24, 70])
@pytest.mark.parametrize("seed", range(8))
def test_no_subject_in_two_splits(subjects, seed):
    images = kdef_like(subjects)
    split, protocol = assign(images, val=0.15, test=0.15, seed=seed)
    assert protocol == "subject-disjoint"
    assert split.groupby(images["subject"]).nunique().max() == 1
    for name in ("train", "val", "test"):
        assert set(images["label"][split == name]) == set(CLASSES)
    assert counts(images, split, protocol)["subject_overlap"] == 0


def test_fractions_are_of_subjects_and_split_is_deterministic():
    images = kdef_like(40)
    a, protocol = assign(images, val=0.2, test=0.1, seed=1)
    assert a.equals(assign(images, val=0.2, test=0.1, seed=1)[0])
    assert not a.equals(assign(images, val=0.2, test=0.1, seed=2)[0])
    s = counts(images, a, protocol)
    assert (s["train_subjects"], s["val_subjects"], s["test_subjects"]) == (28, 8, 4)


def test_image_level_split_leaks_subjects_and_says_so():
    images = kdef_like(10, per_class=4)
    split, protocol = assign(images, val=0.15, test=0.15, seed=0, group_by="none")
    s = counts(images, split, protocol)
    assert s["subject_overlap"] > 0 and s["protocol"] == "image-level (subjects leak)"
    assert (split == "test").sum() == np.ceil(0.15 * len(images))


def test_too_few_subjects_is_an_error():
    with pytest.raises(FerError, match="needs at least 3"):
        assign(kdef_like(2), val=0.15, test=0.15, seed=0)


def test_a_split_missing_a_class_is_an_error():
    images = kdef_like(6)
    # Only one subject has "sad": whichever split it lands in, the others miss the class.
    images = images[(images["label"] != "sad") | (images["subject"] == "S00")]
    with pytest.raises(FerError, match="has no images of sad"):
        assign(images.reset_index(drop=True), val=0.2, test=0.2, seed=0)


def test_official_split_is_kept():
    images = kdef_like(4).assign(subject="")
    images["official"] = ["train", "val", "test"] * (len(images) // 3) + ["train"] * (len(images) % 3)
    split, protocol = assign(images, val=0.15, test=0.15, seed=0)
    assert protocol == "official split" and (split == images["official"]).all()
    s = counts(images, split, protocol)
    assert s["subjects"] == "unknown" and s["subject_overlap"] is None


def test_official_train_test_gets_a_val_split_carved_from_train():
    images = kdef_like(10).assign(subject="")
    images["official"] = ["test" if i % 5 == 0 else "train" for i in range(len(images))]
    split, protocol = assign(images, val=0.2, test=0.15, seed=0)
    assert protocol.startswith("official train/test; val carved from train")
    assert split[images["official"] == "test"].eq("test").all()
    assert (split == "val").sum() == np.ceil(0.2 * (images["official"] == "train").sum())  # sklearn rounds up
    assert split[images["official"] == "train"].isin(["train", "val"]).all()


def test_unknown_subjects_fall_back_to_a_stratified_split():
    images = kdef_like(10).assign(subject="")
    split, protocol = assign(images, val=0.15, test=0.15, seed=0)
    assert protocol == "stratified by class (subjects unknown)"
    counts = pd.crosstab(images["label"], split)
    assert (counts["test"] == counts["test"].iloc[0]).all()  # the same share of every class


def uneven(subjects: int, seed: int) -> pd.DataFrame:
    """Subjects showing different subsets of the classes (as in CK+), each class in >= 5 people."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(subjects):
        shown = set(rng.choice(CLASSES, size=rng.integers(2, 5), replace=False)) | {CLASSES[s % len(CLASSES)]}
        rows += [{"subject": f"S{s:03d}", "label": c} for c in shown for _ in range(rng.integers(1, 4))]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("subjects, folds", [(10, 2), (12, 3), (24, 5), (40, 10), (9, "loso")])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("make", [kdef_like, uneven], ids=["every-class", "uneven"])
def test_every_subject_is_tested_once_and_never_trained_on_in_its_fold(subjects, folds, seed, make):
    images = (
        kdef_like(subjects) if make is kdef_like else uneven(118 if folds != "loso" else 50, seed)
    )  # CK+: 118 people
    rows, protocol = assign_folds(images, folds, val=0.15, seed=seed)
    subject = images["subject"].to_numpy()[rows["image"]]
    test = rows["split"] == "test"
    k = images["subject"].nunique() if folds == "loso" else folds
    assert rows["fold"].nunique() == k and protocol in ("leave-one-subject-out", f"{folds}-fold, subject-disjoint")
    # every image (so every subject) in exactly one fold's test set
    assert sorted(rows.loc[test, "image"]) == list(range(len(images)))
    assert pd.Series(rows.loc[test, "fold"].to_numpy()).groupby(subject[test]).nunique().max() == 1
    # inside each fold, no subject in two of train/val/test
    assert (
        pd.DataFrame({"fold": rows["fold"], "subject": subject, "split": rows["split"]})
        .groupby(["fold", "subject"])["split"]
        .nunique()
        .max()
        == 1
    )
    for _, fold in rows.groupby("fold"):
        for name in ("train", "val"):
            assert set(images["label"].iloc[fold.loc[fold["split"] == name, "image"]]) == set(images["label"])
    assert fold_counts(images, rows, protocol)["subject_overlap"] == 0


def test_folds_are_stratified_as_far_as_subjects_allow_and_seeded():
    images = kdef_like(20)
    rows, _ = assign_folds(images, 5, val=0.15, seed=3)
    test = rows[rows["split"] == "test"]
    per_fold = pd.crosstab(test["fold"], images["label"].to_numpy()[test["image"]])
    assert (per_fold.to_numpy() == 8).all()  # 4 subjects x 2 images of every class in each fold
    assert rows.equals(assign_folds(images, 5, val=0.15, seed=3)[0])
    assert not rows.equals(assign_folds(images, 5, val=0.15, seed=4)[0])


def test_a_class_in_too_few_subjects_for_the_folds_is_an_error_naming_it():
    images = kdef_like(10)
    images = images[(images["label"] != "fear") | images["subject"].isin(["S00", "S01", "S02"])]
    with pytest.raises(FerError, match="split.folds=5: .*fear has 3 subjects; use split.folds=3 or fewer"):
        assign_folds(images.reset_index(drop=True), 5, val=0.15, seed=0)


def test_folds_without_subjects_are_by_image_and_say_so():
    images = kdef_like(10).assign(subject="")
    rows, protocol = assign_folds(images, 4, val=0.15, seed=0)
    assert protocol == "4-fold by image (subjects unknown)"
    assert sorted(rows.loc[rows["split"] == "test", "image"]) == list(range(len(images)))
    assert fold_counts(images, rows, protocol)["subjects"] == "unknown"
    with pytest.raises(FerError, match="loso leaves one subject out, but the subjects are unknown"):
        assign_folds(images, "loso", val=0.15, seed=0)


def test_folds_refuse_an_official_split():
    images = kdef_like(4).assign(subject="")
    images["official"] = ["train", "val", "test"] * (len(images) // 3) + ["train"] * (len(images) % 3)
    with pytest.raises(FerError, match="its own train/val/test split .* split.folds=0"):
        assign_folds(images, 5, val=0.15, seed=0)


def test_split_angles_keeps_those_angles_and_names_one_the_data_lacks(demo_images):
    two = pd.concat([demo_images, demo_images.assign(angle="HL", path="HL/" + demo_images["path"])], ignore_index=True)
    frontal = select_angles(two, ("S",))
    assert set(frontal["angle"]) == {"S"} and len(frontal) == len(demo_images)
    assert select_angles(two, ()) is two
    with pytest.raises(FerError, match="split.angles: no image at FL; this dataset has HL, S"):
        select_angles(two, ("S", "FL"))
    with pytest.raises(FerError, match="this dataset names none"):
        select_angles(two.assign(angle=""), ("S",))
