"""Reading FER2013 (image folders or CSV) and any class-folder dataset."""

import os
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
import pytest
from helpers import write_fer2013_csv
from PIL import Image

from fer import FerError
from fer.data import formats
from fer.data.labels import canonical
from fer.data.preprocess import build
from fer.data.split import assign, counts
from fer.params import DataParams, Format

# the real archive: $FER2013, else where a checkout beside ../shared finds it
FER2013_ARCHIVE = Path(
    os.environ.get("FER2013") or Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013-images.tar.gz"
)


def face(path: Path, value: int = 128, size: int = 48):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(path)


def test_each_format_params_accept_has_its_reader_and_an_unknown_one_is_named():
    assert list(formats.FORMATS) == list(get_args(Format))  # one list: params accept what a reader reads
    unknown = DataParams.model_construct(format="kdeff")  # past params' own check
    with pytest.raises(FerError, match=r"data.format 'kdeff' is none of .*: kdef, fer2013, folders, csv, ckplus"):
        formats.scan(Path("."), unknown)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("anger", "angry"),
        ("ANGRY", "angry"),
        ("AN", "angry"),
        ("Happiness", "happy"),
        ("HA", "happy"),
        ("sadness", "sad"),
        ("SA", "sad"),
        ("afraid", "fear"),
        ("AF", "fear"),
        ("surprised", "surprise"),
        ("disgusted", "disgust"),
        ("neutral", "neutral"),
        ("contempt", "contempt"),
        ("contemptuous", "contempt"),
        ("FE", "fear"),
        ("train", None),
    ],
)
def test_alias_table(name, expected):
    assert canonical(name) == expected


def test_fer2013_folders_keep_the_official_split(tmp_path):
    for i, (folder, prefix) in enumerate([("train", "Training"), ("test", "PublicTest"), ("test", "PrivateTest")]):
        for c in ("angry", "happy"):
            face(tmp_path / "fer2013" / folder / c / f"{prefix}_{i}{c}.jpg")
    images, skipped = formats.scan(tmp_path, DataParams(format="fer2013"))
    assert skipped.empty
    official = dict(zip(images["path"].str.extract(r"/(\w+?)_", expand=False), images["official"]))
    assert official == {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
    split, protocol = assign(images, 0.15, 0.15, 0)
    assert protocol == "official split" and (split == images["official"]).all()


def test_fer2013_folders_without_prefixes_carve_val_from_train(tmp_path):
    for folder, n in (("train", 10), ("test", 3)):
        for c in ("angry", "happy"):
            for i in range(n):
                face(tmp_path / folder / c / f"{i}.png")
    images, _ = formats.scan(tmp_path, DataParams(format="fer2013"))
    split, protocol = assign(images, 0.2, 0.15, 0)
    assert protocol.startswith("official train/test; val carved from train")
    assert (split == "test").sum() == 6 and (split == "val").sum() == 4


def test_fer2013_csv_with_a_bad_row(tmp_path):
    ok = " ".join(["7"] * 2304)
    gradient = " ".join(str(i % 256) for i in range(2304))
    write_fer2013_csv(
        tmp_path / "fer2013.csv",
        [
            (0, gradient, "Training"),
            (3, ok, "Training"),
            (6, ok, "PublicTest"),
            (4, ok, "PrivateTest"),
            (9, ok, "Training"),  # no such emotion
            (3, "1 2 3", "Training"),  # truncated pixels
        ],
    )
    images, skipped = formats.scan(tmp_path, DataParams(format="fer2013"))
    assert list(images["label"]) == ["angry", "happy", "neutral", "sad"]
    assert list(images["official"]) == ["train", "train", "val", "test"]
    assert list(skipped["path"]) == ["fer2013.csv#4", "fer2013.csv#5"]
    assert "emotion '9' is not 0-6" in skipped["reason"][0] and "3 values" in skipped["reason"][1]
    # The pixels become the cache without any image file in between.
    build(images, tmp_path, tmp_path / "out", size=48, grayscale=True, workers=1)
    cached = np.load(tmp_path / "out" / "images.npy")
    np.testing.assert_array_equal(cached[0, 0].ravel(), np.arange(2304) % 256)


def test_folders_any_dataset_with_aliases_and_unknown_classes(tmp_path):
    face(tmp_path / "Anger" / "a.png")
    face(tmp_path / "happiness" / "b.jpg")
    face(tmp_path / "contempt" / "c.png")
    (tmp_path / "happiness" / "notes.txt").write_text("x")
    face(tmp_path / "loose.png")
    images, skipped = formats.scan(tmp_path, DataParams(format="folders"))
    assert dict(zip(images["path"], images["label"])) == {
        "Anger/a.png": "angry",
        "happiness/b.jpg": "happy",
        "contempt/c.png": "contempt",
    }
    assert dict(zip(skipped["path"], skipped["reason"])) == {
        "happiness/notes.txt": "not an image file",
        "loose.png": "not inside a class folder",
    }
    # data.classes drops the rest, and says so.
    images, skipped = formats.scan(tmp_path, DataParams(format="folders", classes=("anger", "happy")))
    assert set(images["label"]) == {"angry", "happy"}
    assert "class contempt not in data.classes" in set(skipped["reason"])


def ck_plus_like(root: Path, subjects=8):
    for s in range(subjects):
        for c in ("anger", "happy", "sadness", "surprise", "contempt"):
            for k in range(2):
                face(root / c / f"S{s:03d}_{k:03d}_{c}.png", value=10 * s)


def test_subject_pattern_gives_a_subject_disjoint_split(tmp_path):
    ck_plus_like(tmp_path)
    face(tmp_path / "happy" / "odd-name.png")
    images, skipped = formats.scan(tmp_path, DataParams(format="folders", subject_pattern=r"^(S\d+)_"))
    assert images["subject"].nunique() == 8 and list(skipped["path"]) == ["happy/odd-name.png"]
    for seed in range(5):
        split, protocol = assign(images, 0.25, 0.25, seed)
        assert protocol == "subject-disjoint"
        assert split.groupby(images["subject"]).nunique().max() == 1
        assert counts(images, split, protocol)["subject_overlap"] == 0


def test_without_subject_pattern_the_split_says_subjects_are_unknown(tmp_path):
    ck_plus_like(tmp_path)
    images, _ = formats.scan(tmp_path, DataParams(format="folders"))
    split, protocol = assign(images, 0.25, 0.25, 0)
    assert protocol == "stratified by class (subjects unknown)"
    assert counts(images, split, protocol)["subjects"] == "unknown"


def test_subject_pattern_matching_nothing_is_an_error(tmp_path):
    ck_plus_like(tmp_path, subjects=2)
    with pytest.raises(FerError, match=r"data.subject_pattern .* matches no file name \(e.g. S000_000_anger.png\)"):
        formats.scan(tmp_path, DataParams(format="folders", subject_pattern=r"^(X\d+)"))


def test_canonical_class_order_is_shared(tmp_path):
    from fer.data.preprocess import class_list

    assert class_list(["surprise", "angry", "contempt", "happy"]) == ["angry", "contempt", "happy", "surprise"]
    assert class_list(["pain", "happy"]) == ["happy", "pain"]  # outside the vocabulary: after it


@pytest.mark.skipif(not FER2013_ARCHIVE.exists(), reason="real FER2013 archive not present")
def test_real_fer2013_archive_split_sizes(tmp_path):
    from fer.data.sources import extract

    extract(FER2013_ARCHIVE, tmp_path)
    images, skipped = formats.scan(tmp_path, DataParams(format="fer2013"))
    split, protocol = assign(images, 0.15, 0.15, 0)
    assert protocol == "official split" and skipped.empty
    assert split.value_counts().to_dict() == {"train": 28709, "val": 3589, "test": 3589}
    assert pd.Series(images["label"][split == "train"]).value_counts()["disgust"] == 436


@pytest.mark.parametrize("fmt", ["folders", "fer2013"])
def test_folders_that_name_no_expression_mean_the_wrong_format(tmp_path, fmt):
    # KDEF's own tree read as class folders would train on 48 "classes", one per person.
    for s in range(1, 6):
        face(tmp_path / f"AF{s:02d}" / f"AF{s:02d}HAS.JPG")
    with pytest.raises(FerError, match=r"none of the 5 class folders \(af01, af02, af03, af04, \.\.\.\).*data.format"):
        formats.scan(tmp_path, DataParams(format=fmt))
    # A dataset of other classes works once they are named.
    images, _ = formats.scan(tmp_path, DataParams(format=fmt, classes=("af01", "af02")))
    assert sorted(images["label"]) == ["af01", "af02"]


def test_a_class_folder_without_images_is_an_error(tmp_path):
    face(tmp_path / "happy" / "a.png")
    (tmp_path / "sad").mkdir()
    (tmp_path / "sad" / "notes.txt").write_text("todo")
    with pytest.raises(FerError, match="class folder sad holds no images"):
        formats.scan(tmp_path, DataParams(format="folders"))


def test_kdef_without_a_class_is_an_error_unless_classes_say_so(tmp_path):
    for s in range(1, 4):
        for code in ("AN", "DI", "HA", "NE", "SA", "SU"):  # no AF: nobody afraid
            face(tmp_path / f"AF{s:02d}" / f"AF{s:02d}{code}S.JPG", value=s * 20 + len(code))
    with pytest.raises(FerError, match="no KDEF images of fear; add them, or train on the classes present"):
        formats.scan(tmp_path, DataParams(format="kdef"))
    six = ("angry", "disgust", "happy", "neutral", "sad", "surprise")
    images, _ = formats.scan(tmp_path, DataParams(format="kdef", classes=six))
    assert set(images["label"]) == set(six)
