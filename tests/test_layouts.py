"""The layouts datasets circulate in: numbered class folders, numeric folders with a published
code table, a label CSV beside the images, and the original CK+ release."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from fer import FerError
from fer.data import formats
from fer.data.labels import CLASS_MAPS, classes_in
from fer.params import DataParams, LabelCsvParams

SRC = Path(__file__).resolve().parents[1] / "src"


def image(path: Path, seed: int = 0):
    """A small distinct PNG (distinct content: the split drops repeated images)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (12, 12), dtype=np.uint8)).save(path)


def folders(root: Path, names, per_class: int = 1):
    for i, name in enumerate(names):
        for k in range(per_class):
            image(root / name / f"img{k}.png", seed=100 * i + k)


def mapping(images) -> dict:
    return formats.class_map_used(images)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("1 - Happy", {"happy"}),
        ("03_sad", {"sad"}),
        ("Happy (2)", {"happy"}),
        ("7-NEUTRAL", {"neutral"}),
        ("anger_faces", {"angry"}),
        ("SA", {"sad"}),
        ("happy2", {"happy"}),
        ("Happy vs Sad", {"happy", "sad"}),
        # short aliases count only as whole words
        ("chair", set()),
        ("shape", set()),
        ("AF01", set()),
        ("sun", set()),
        ("8 - Pain", set()),
        ("8 - Contempt", {"contempt"}),  # contempt is in the vocabulary (FER+, CK+, AffectNet, RaFD)
    ],
)
def test_a_name_names_the_classes_of_its_whole_words(name, expected):
    assert classes_in(name) == expected


def test_numbered_and_decorated_folders_map_by_their_expression_word(tmp_path):
    names = [
        "1 - Angry",
        "2 - Disgust",
        "03_fear",
        "Happy (2)",
        "neutral-5",
        "6. Sadness",
        "7 Surprised",
        "8 - Contempt",
    ]
    folders(tmp_path / "train", names)
    image(tmp_path / "test" / "1 - Angry" / "t.png", seed=999)
    images, skipped = formats.scan(tmp_path, DataParams(format="folders"))
    assert skipped.empty
    assert mapping(images) == {
        "03_fear": "fear",
        "1 - Angry": "angry",
        "2 - Disgust": "disgust",
        "6. Sadness": "sad",
        "7 Surprised": "surprise",
        "8 - Contempt": "contempt",
        "Happy (2)": "happy",
        "neutral-5": "neutral",
    }
    assert set(images["official"]) == {"train", "test"}


def test_folders_that_name_two_classes_or_a_misspelt_one_are_errors_listing_them(tmp_path):
    folders(tmp_path, ["1 - Happy", "Happy vs Sad", "angry or disgust", "Hapy faces"])
    with pytest.raises(FerError) as e:
        formats.scan(tmp_path, DataParams(format="folders"))
    msg = str(e.value)
    assert (
        "class folders 'Happy vs Sad' (happy and sad), 'angry or disgust' (angry and disgust) name two classes"
    ) in msg
    assert "'Hapy faces' (happy?) look like misspelt classes" in msg and "data.class_map" in msg
    # An explicit mapping settles them.
    images, _ = formats.scan(
        tmp_path,
        DataParams(
            format="folders", class_map={"Happy vs Sad": "happy", "angry or disgust": "Anger", "Hapy faces": "happy"}
        ),
    )
    assert set(images["label"]) == {"happy", "angry"}


@pytest.mark.parametrize("preset", list(CLASS_MAPS))
def test_numeric_folders_read_with_each_published_code_table(tmp_path, preset):
    table = CLASS_MAPS[preset]
    folders(tmp_path, [f"{int(code):02d}" if preset == "rafdb" else code for code in table])  # "01" is code 1
    images, _ = formats.scan(tmp_path, DataParams(format="folders", class_map=preset))
    assert mapping(images) == {f"{int(c):02d}" if preset == "rafdb" else c: label for c, label in table.items()}
    assert set(images["label"]) - {"contempt"} == {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}


def test_published_tables_say_what_the_datasets_say():
    assert CLASS_MAPS["rafdb"]["1"] == "surprise" and CLASS_MAPS["rafdb"]["7"] == "neutral"
    assert CLASS_MAPS["affectnet"]["0"] == "neutral" and CLASS_MAPS["affectnet"]["7"] == "contempt"
    assert CLASS_MAPS["fer2013"]["0"] == "angry" and CLASS_MAPS["fer2013"]["6"] == "neutral"
    assert CLASS_MAPS["ckplus"]["2"] == "contempt" and CLASS_MAPS["ckplus"]["7"] == "surprise"


def test_numeric_folders_without_a_table_or_outside_it_are_errors(tmp_path):
    folders(tmp_path, ["1", "2", "8"])
    with pytest.raises(
        FerError,
        match=r"class folders '1', '2', '8' are numbers: .*data.class_map.*"
        r"rafdb, affectnet, fer2013, ckplus",
    ):
        formats.scan(tmp_path, DataParams(format="folders"))
    with pytest.raises(FerError, match=r"class folders '8' are not in data.class_map \(it maps 1, 2, 3, 4, 5, 6, 7\)"):
        formats.scan(tmp_path, DataParams(format="folders", class_map="rafdb"))


def test_an_explicit_class_map_goes_through_the_alias_table(tmp_path):
    folders(tmp_path, ["1", "2", "joyful", "sad"])
    images, _ = formats.scan(
        tmp_path, DataParams(format="folders", class_map={1: "Happiness", "2": "anger", "Joyful": "happy"})
    )
    assert mapping(images) == {"1": "happy", "2": "angry", "joyful": "happy", "sad": "sad"}


def write_csv(path: Path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def test_label_csv_with_names_subjects_and_a_missing_file(tmp_path):
    for i, name in enumerate(["a.png", "b.png", "c.jpg", "sub/d.png", "unlisted.png"]):
        image(tmp_path / "images" / name, seed=i)
    write_csv(
        tmp_path / "labels.csv",
        [
            "Image, Emotion, Person",
            "images/a.png,Happy,p1",
            "images/b.png,sadness,p2",
            "images/c.jpg,SU,p1",
            "d.png,angry,p3",  # a bare file name, found wherever it is
            "images/gone.png,happy,p2",  # no such file
            "images/a.png,,p1",  # no label
        ],
    )
    images, skipped = formats.scan(tmp_path, DataParams(format="csv"))
    assert dict(zip(images["path"], images["label"])) == {
        "images/a.png": "happy",
        "images/b.png": "sad",
        "images/c.jpg": "surprise",
        "images/sub/d.png": "angry",
    }
    assert list(images["subject"]) == ["p1", "p2", "p1", "p3"]
    reasons = dict(zip(skipped["path"], skipped["reason"]))
    assert reasons["images/gone.png"] == "labels.csv line 6: no such file"
    assert reasons["images/a.png"] == "labels.csv line 7: no label"
    assert reasons["images/unlisted.png"] == "no row of the label CSV names it"


def test_label_csvs_with_codes_beside_numeric_folders_rafdb_style(tmp_path):
    # The RAF-DB copy in circulation: train/<code>/<name>.jpg, test/... and one CSV per split
    # that names each image by its bare file name.
    rows = {"train": [], "test": []}
    for split, n in (("train", 3), ("test", 1)):
        for code in range(1, 8):
            for k in range(n):
                name = f"{split}_{code}{k}.jpg"
                image(tmp_path / "DATASET" / split / str(code) / name, seed=code * 10 + k + (split == "test") * 500)
                rows[split].append(f"{name},{code}")
    for split, lines in rows.items():
        write_csv(tmp_path / f"{split}_labels.csv", ["image,label", *lines])
    images, skipped = formats.scan(tmp_path, DataParams(format="csv", class_map="rafdb"))
    assert skipped.empty and len(images) == 28
    assert mapping(images) == CLASS_MAPS["rafdb"]
    assert images.set_index("path").loc["DATASET/train/1/train_10.jpg", "label"] == "surprise"
    assert set(images["official"]) == {"train", "test"}
    with pytest.raises(FerError, match="labels '1', '2', .* are numbers: say what they mean with data.class_map"):
        formats.scan(tmp_path, DataParams(format="csv"))


def test_label_csv_columns_can_be_named(tmp_path):
    image(tmp_path / "x.png", seed=1)
    image(tmp_path / "y.png", seed=2)
    write_csv(tmp_path / "meta" / "annotations.csv", ["fname,expr,who", "../x.png,happy,s1", "../y.png,fear,s2"])
    with pytest.raises(FerError, match=r"no label CSV .*Found: meta/annotations.csv \(fname, expr, who\)"):
        formats.scan(tmp_path, DataParams(format="csv"))
    columns = LabelCsvParams(file="meta/annotations.csv", path="fname", label="EXPR", subject="who")
    images, _ = formats.scan(tmp_path, DataParams(format="csv", label_csv=columns))
    assert list(zip(images["path"], images["label"], images["subject"])) == [
        ("x.png", "happy", "s1"),
        ("y.png", "fear", "s2"),
    ]
    with pytest.raises(FerError, match="data.label_csv.subject 'person' is not a column of annotations.csv"):
        formats.scan(tmp_path, DataParams(format="csv", label_csv=columns.model_copy(update={"subject": "person"})))


def test_loose_images_beside_a_csv_read_as_folders_point_to_the_csv_format(tmp_path):
    image(tmp_path / "a.png")
    write_csv(tmp_path / "labels.csv", ["path,label", "a.png,happy"])
    with pytest.raises(
        FerError, match="no image is inside a class folder, and labels.csv may hold the labels: set data.format=csv"
    ):
        formats.scan(tmp_path, DataParams(format="folders"))


def test_a_label_csv_whose_every_row_is_bad_is_an_error(tmp_path):
    image(tmp_path / "a.png")
    write_csv(tmp_path / "labels.csv", ["path,label", "b.png,happy", "c.png,sad"])
    with pytest.raises(FerError, match=r"no row of the label CSV names an image .*labels.csv line 2: no such file"):
        formats.scan(tmp_path, DataParams(format="csv"))


def ckplus_release(root: Path, labels: dict, frames: int = 5):
    """cohn-kanade-images/S###/###/*.png for every sequence in `labels` ((subject, seq) ->
    Emotion code, or None for an unlabelled sequence) and the Emotion/ files."""
    for n, ((subject, seq), code) in enumerate(labels.items()):
        for f in range(1, frames + 1):
            image(root / "cohn-kanade-images" / subject / seq / f"{subject}_{seq}_{f:08d}.png", seed=100 * n + f)
        (root / "Landmarks" / subject / seq).mkdir(parents=True, exist_ok=True)
        (root / "Landmarks" / subject / seq / f"{subject}_{seq}_00000001_landmarks.txt").write_text("1 2\n")
        if code is not None:
            label = root / "Emotion" / subject / seq / f"{subject}_{seq}_{frames:08d}_emotion.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(f"   {code:.7e}\n")


def test_ckplus_release_takes_the_last_frames_of_labelled_sequences(tmp_path):
    ckplus_release(tmp_path, {("S005", "001"): 3, ("S005", "002"): None, ("S010", "004"): 5, ("S011", "001"): 2})
    images, skipped = formats.scan(tmp_path, DataParams(format="ckplus"))
    assert list(images["path"].str.rsplit("/", n=1).str[-1]) == [
        "S005_001_00000003.png",
        "S005_001_00000004.png",
        "S005_001_00000005.png",
        "S010_004_00000003.png",
        "S010_004_00000004.png",
        "S010_004_00000005.png",
        "S011_001_00000003.png",
        "S011_001_00000004.png",
        "S011_001_00000005.png",
    ]
    assert list(images["label"]) == ["disgust"] * 3 + ["happy"] * 3 + ["contempt"] * 3
    assert list(images["subject"]) == ["S005"] * 3 + ["S010"] * 3 + ["S011"] * 3
    assert dict(zip(skipped["path"], skipped["reason"])) == {
        "cohn-kanade-images/S005/002": "sequence without an Emotion label (5 frames)"
    }
    assert mapping(images) == {"2": "contempt", "3": "disgust", "5": "happy"}
    # One last frame and the first frame as neutral (of the contempt sequence too), contempt left out.
    images, _ = formats.scan(
        tmp_path,
        DataParams(format="ckplus", ckplus_frames=1, ckplus_neutral=True, classes=("disgust", "happy", "neutral")),
    )
    assert list(zip(images["path"].str[-21:], images["label"])) == [
        ("S005_001_00000005.png", "disgust"),
        ("S005_001_00000001.png", "neutral"),
        ("S010_004_00000005.png", "happy"),
        ("S010_004_00000001.png", "neutral"),
        ("S011_001_00000001.png", "neutral"),
    ]


def test_ckplus_without_emotion_files_says_where_they_are(tmp_path):
    ckplus_release(tmp_path, {("S005", "001"): None})
    with pytest.raises(FerError, match=r"no CK\+ Emotion labels .*Emotion_labels.zip"):
        formats.scan(tmp_path, DataParams(format="ckplus"))


def test_split_stage_writes_the_mapping_it_used(tmp_path):
    for s in range(6):
        for code in range(1, 8):
            image(tmp_path / "raw" / str(code) / f"S{s}_{code}.png", seed=10 * s + code)
    data = {"format": "folders", "class_map": "rafdb", "subject_pattern": r"^(S\d)_"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": data, "split": {"val": 0.2, "test": 0.2}}))
    p = subprocess.run(
        [sys.executable, str(SRC / "split.py"), "raw", "split", "split.json", "details.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    split = json.loads((tmp_path / "details.json").read_text())
    assert split["class_map"] == CLASS_MAPS["rafdb"] and split["subject_overlap"] == 0
    assert json.loads((tmp_path / "split.json").read_text()) == {"subject_overlap": 0}  # the headline alone
    assert "'1' -> surprise" in p.stdout
