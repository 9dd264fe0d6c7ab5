"""Datasets whose file names carry the label and the person (JAFFE, RaFD, fixed-width codes)."""

import shutil

import numpy as np
import pytest
from PIL import Image

from fer import FerError
from fer.data import formats
from fer.data.cache import load_split
from fer.data.kdef import parse_name
from fer.data.preprocess import build
from fer.data.split import assign
from fer.params import DataParams
from fer.training.train import fit

JAFFE = {"angry": "AN", "disgust": "DI", "fear": "FE", "happy": "HA", "neutral": "NE", "sad": "SA", "surprise": "SU"}
RAFD = {
    "angry": "angry",
    "disgust": "disgusted",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprised",
}
LETTERS = dict(zip(JAFFE, "abcdefg"))


def jaffe(person: int, label: str, take: int) -> str:
    return f"{chr(65 + person)}{chr(75 + person)}.{JAFFE[label]}{take}.{100 + take}.tiff"  # KA.AN1.39.tiff


def rafd(person: int, label: str, take: int) -> str:
    return f"Rafd090_{person:02d}_Caucasian_{'female' if take == 1 else 'male'}_{RAFD[label]}_frontal.jpg"


def fixed(person: int, label: str, take: int) -> str:
    return f"{person:03d}{take}{LETTERS[label]}01.jpg"  # 0111b01.jpg: person 011, take 1, expression b, view 01


LAYOUTS = {
    "jaffe": (jaffe, {"label_pattern": "jaffe"}),
    "rafd": (rafd, {"label_pattern": "rafd"}),
    "fixed": (
        fixed,
        {
            "label_pattern": r"^\d{4}([a-z])\d\d\.",
            "subject_pattern": r"^(\d{3})",
            "class_map": {letter: label for label, letter in LETTERS.items()},
        },
    ),
}


def rename_tree(demo_raw, tmp_path, name) -> tuple:
    """The demo faces (6 people, 7 expressions, 2 sessions) under file names of the `name` convention."""
    subjects = sorted({parse_name(p.name)["subject"] for p in demo_raw.rglob("*.JPG")})
    root = tmp_path / name
    root.mkdir()
    for photo in demo_raw.rglob("*.JPG"):
        f = parse_name(photo.name)
        new = LAYOUTS[name][0](subjects.index(f["subject"]) + 1, f["label"], 1 if f["session"] == "A" else 2)
        if new.endswith(".tiff"):
            Image.open(photo).save(root / new)
        else:
            shutil.copy(photo, root / new)
    (root / "README.txt").write_text("not a photo")
    return root, subjects


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_each_convention_trains_end_to_end_with_its_classes_and_people_apart(demo_raw, tmp_path, tiny_train, name):
    root, subjects = rename_tree(demo_raw, tmp_path, name)
    data = DataParams(source=str(root), format="filenames", **LAYOUTS[name][1])
    images, skipped = formats.scan(root, data)
    assert len(images) == 84 and set(images["label"]) == set(JAFFE)
    assert images["subject"].nunique() == len(subjects) and list(skipped["path"]) == ["README.txt"]
    images["split"], protocol = assign(images, val=0.2, test=0.2, seed=0)
    assert protocol == "subject-disjoint"
    people = images.groupby("split")["subject"].agg(set)
    assert not (people["train"] & people["test"]) and not (people["train"] & people["val"])
    build(images, root, tmp_path / "cache", size=32, grayscale=False, workers=1)
    (x_train, m_train), (x_val, m_val) = (load_split(tmp_path / "cache", images, s) for s in ("train", "val"))
    history, best = fit(
        tiny_train.model_copy(update={"epochs": 1}),
        (x_train, m_train["target"].to_numpy()),
        (x_val, m_val["target"].to_numpy()),
        sorted(JAFFE),
    )
    assert best.classes == sorted(JAFFE) and np.isfinite(history[0]["train_loss"])


def test_a_name_the_pattern_misses_is_skipped_and_an_unmapped_label_stops_with_counts(demo_raw, tmp_path):
    root, _ = rename_tree(demo_raw, tmp_path, "jaffe")
    (root / "notes.AN1.tiff").write_bytes((root / next(p.name for p in root.glob("*.tiff"))).read_bytes())
    for i in range(3):
        shutil.copy(next(root.glob("*.tiff")), root / f"KA.XX{i}.1.tiff")
    shutil.copy(next(root.glob("*.tiff")), root / "KA.ZZ1.1.tiff")
    with pytest.raises(FerError, match=r"2 label value\(s\) .* map to no class: 'XX' \(3\), 'ZZ' \(1\)"):
        formats.scan(root, DataParams(format="filenames", label_pattern="jaffe"))
    data = DataParams(format="filenames", label_pattern="jaffe", class_map={"XX": "happy", "ZZ": "sad"})
    images, skipped = formats.scan(root, data)
    assert len(images) == 88 and "notes.AN1.tiff" in set(skipped["path"])
    assert "does not match the file name" in skipped.set_index("path").loc["notes.AN1.tiff", "reason"]


def test_filenames_needs_a_label_pattern_with_one_group():
    with pytest.raises(ValueError, match="format filenames needs label_pattern"):
        DataParams(format="filenames")
    with pytest.raises(ValueError, match="label_pattern .* needs exactly one \\(group\\)"):
        DataParams(format="filenames", label_pattern=r"^(\d)(\d)")


def test_attributes_from_file_names_and_label_csv_columns_reach_the_image_list(demo_raw, tmp_path):
    # what accuracy per group is reported on (evaluate reads them from the split's manifest)
    root, _ = rename_tree(demo_raw, tmp_path, "rafd")
    data = DataParams(
        source=str(root),
        format="filenames",
        label_pattern="rafd",
        attributes={"sex": "_(female|male)_", "ethnicity": r"Rafd\d+_\d+_([A-Za-z]+)_"},
    )
    images, _ = formats.scan(root, data)
    assert images["sex"].value_counts().to_dict() == {"female": 42, "male": 42}
    assert set(images["ethnicity"]) == {"Caucasian"}
    images[["path", "label"]].assign(gender=images["sex"]).to_csv(root / "labels.csv", index=False)
    listed, _ = formats.scan(root, DataParams(source=str(root), format="csv", label_csv={"attributes": ["gender"]}))
    assert listed.set_index("path")["gender"].to_dict() == images.set_index("path")["sex"].to_dict()
    with pytest.raises(
        FerError, match=r"data.label_csv.attributes age: not a column of labels.csv \(path, label, gender\)"
    ):
        formats.scan(root, DataParams(source=str(root), format="csv", label_csv={"attributes": ["age"]}))
    with pytest.raises(ValueError, match="attributes.subject: subject is the pipeline's own column"):
        DataParams(attributes={"subject": "(x)"})
