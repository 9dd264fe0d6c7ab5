import shutil

import pytest

from fer.data import kdef, synthetic


@pytest.mark.parametrize(
    "name, expected",
    [
        ("AF01ANS.JPG", ("angry", "F01", "A", "F", "S")),
        ("BM35SUFR.JPG", ("surprise", "M35", "B", "M", "FR")),
        ("af01afhl.jpg", ("fear", "F01", "A", "F", "HL")),
        ("AM12HAHR.jpeg", ("happy", "M12", "A", "M", "HR")),
        ("BF07DIFL.JPG", ("disgust", "F07", "B", "F", "FL")),
        ("AM01NES.Jpg", ("neutral", "M01", "A", "M", "S")),
        ("BF02SAS.JPG", ("sad", "F02", "B", "F", "S")),
    ],
)
def test_parse_name(name, expected):
    f = kdef.parse_name(name)
    assert (f["label"], f["subject"], f["session"], f["sex"], f["angle"]) == expected


@pytest.mark.parametrize(
    "name", ["AF01XXS.JPG", "CF01ANS.JPG", "AF1ANS.JPG", "AF01ANS.png", "AF01ANSX.JPG", "notes.txt"]
)
def test_non_kdef_names_do_not_parse(name):
    assert kdef.parse_name(name) is None


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_scan_any_layout_and_reports_every_unused_file(tmp_path):
    touch(tmp_path / "AF01" / "AF01ANS.JPG")  # KDEF's per-subject folders
    touch(tmp_path / "train" / "happy" / "AM02HAS.JPG")  # class folders
    touch(tmp_path / "loose" / "BF03SUHL.jpg")  # anywhere, any case
    touch(tmp_path / "angry" / "AM04HAS.JPG")  # folder contradicts the code
    touch(tmp_path / "copy" / "AF01ANS.JPG")  # the same photo twice
    touch(tmp_path / "readme.txt")
    images, skipped = kdef.scan(tmp_path)
    assert sorted(images["path"]) == ["AF01/AF01ANS.JPG", "loose/BF03SUHL.jpg", "train/happy/AM02HAS.JPG"]
    reasons = dict(zip(skipped["path"], skipped["reason"]))
    assert reasons["angry/AM04HAS.JPG"] == "folder says angry, file name says happy"
    assert reasons["copy/AF01ANS.JPG"] == "another copy of AF01/AF01ANS.JPG"
    assert "not a KDEF code" in reasons["readme.txt"]
    assert len(images) + len(skipped) == 6


def test_scan_demo_reads_every_file(demo_raw, demo_images):
    assert len(demo_images) == 6 * 7 * 2
    assert set(demo_images["label"]) == {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}
    assert demo_images["subject"].nunique() == 6


def test_missing_names_exactly_the_photos_removed_from_a_copy(tmp_path):
    synthetic.generate(tmp_path, subjects=2, angles=("S", "HR"), size=(32, 32))  # F01, M01: 2 x 2 x 7 x 2 = 56
    for name in ("AF01SUHR.JPG", "AM01ANS.JPG"):
        (tmp_path / name[:4] / name).unlink()
    shutil.rmtree(tmp_path / "BF01")  # a person absent from one session
    # A file whose class folder contradicts its code is skipped, not missing.
    touch(tmp_path / "angry" / "AM01HAS.JPG")
    (tmp_path / "AM01" / "AM01HAS.JPG").unlink()
    images, skipped = kdef.scan(tmp_path)
    missing, expected = kdef.missing(images, skipped)
    assert expected == 56
    assert list(missing.columns) == ["code", "subject", "session", "label", "angle"]
    assert list(missing["code"]) == ["AF01SUHR", "AM01ANS"] + sorted(
        f"BF01{code}{angle}" for code in ("AF", "AN", "DI", "HA", "NE", "SA", "SU") for angle in ("S", "HR")
    )
    assert missing.iloc[0].to_dict() == {
        "code": "AF01SUHR",
        "subject": "F01",
        "session": "A",
        "label": "surprise",
        "angle": "HR",
    }


def test_a_copy_of_straight_photos_only_misses_nothing(demo_images):
    missing, expected = kdef.missing(demo_images)
    assert missing.empty and expected == 6 * 2 * 7 * 1
