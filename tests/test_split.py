import numpy as np
import pandas as pd
import pytest

from fer import FerError
from fer.labels import CLASSES
from fer.split import assign, summary


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
    assert summary(images, split, protocol)["subject_overlap"] == 0


def test_fractions_are_of_subjects_and_split_is_deterministic():
    images = kdef_like(40)
    a, protocol = assign(images, val=0.2, test=0.1, seed=1)
    assert a.equals(assign(images, val=0.2, test=0.1, seed=1)[0])
    assert not a.equals(assign(images, val=0.2, test=0.1, seed=2)[0])
    s = summary(images, a, protocol)
    assert (s["train_subjects"], s["val_subjects"], s["test_subjects"]) == (28, 8, 4)


def test_image_level_split_leaks_subjects_and_says_so():
    images = kdef_like(10, per_class=4)
    split, protocol = assign(images, val=0.15, test=0.15, seed=0, group_by="none")
    s = summary(images, split, protocol)
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
    s = summary(images, split, protocol)
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
