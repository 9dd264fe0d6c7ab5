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
    split = assign(images, val=0.15, test=0.15, seed=seed)
    assert split.groupby(images["subject"]).nunique().max() == 1
    for name in ("train", "val", "test"):
        assert set(images["label"][split == name]) == set(CLASSES)
    assert summary(images, split, "subject")["subject_overlap"] == 0


def test_fractions_are_of_subjects_and_split_is_deterministic():
    images = kdef_like(40)
    a = assign(images, val=0.2, test=0.1, seed=1)
    assert a.equals(assign(images, val=0.2, test=0.1, seed=1))
    assert not a.equals(assign(images, val=0.2, test=0.1, seed=2))
    s = summary(images, a, "subject")
    assert (s["train_subjects"], s["val_subjects"], s["test_subjects"]) == (28, 8, 4)


def test_image_level_split_leaks_subjects_and_says_so():
    images = kdef_like(10, per_class=4)
    split = assign(images, val=0.15, test=0.15, seed=0, group_by="none")
    s = summary(images, split, "none")
    assert s["subject_overlap"] > 0 and s["protocol"].startswith("image-level")


def test_too_few_subjects_is_an_error():
    with pytest.raises(FerError, match="needs at least 3"):
        assign(kdef_like(2), val=0.15, test=0.15, seed=0)


def test_a_split_missing_a_class_is_an_error():
    images = kdef_like(6)
    # Only one subject has "sad": whichever split it lands in, the others miss the class.
    images = images[(images["label"] != "sad") | (images["subject"] == "S00")]
    with pytest.raises(FerError, match="has no images of sad"):
        assign(images.reset_index(drop=True), val=0.2, test=0.2, seed=0)
