import pytest

from fer import kdef


@pytest.mark.parametrize("name, expected", [
    ("AF01ANS.JPG", ("angry", "F01", "A", "F", "S")),
    ("BM35SUFR.JPG", ("surprise", "M35", "B", "M", "FR")),
    ("af01afhl.jpg", ("fear", "F01", "A", "F", "HL")),
    ("AM12HAHR.jpeg", ("happy", "M12", "A", "M", "HR")),
    ("BF07DIFL.JPG", ("disgust", "F07", "B", "F", "FL")),
    ("AM01NES.Jpg", ("neutral", "M01", "A", "M", "S")),
    ("BF02SAS.JPG", ("sad", "F02", "B", "F", "S")),
])
def test_parse_name(name, expected):
    f = kdef.parse_name(name)
    assert (f["label"], f["subject"], f["session"], f["sex"], f["angle"]) == expected


@pytest.mark.parametrize("name", ["AF01XXS.JPG", "CF01ANS.JPG", "AF1ANS.JPG", "AF01ANS.png", "AF01ANSX.JPG", "notes.txt"])
def test_non_kdef_names_do_not_parse(name):
    assert kdef.parse_name(name) is None


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_scan_any_layout_and_reports_every_unused_file(tmp_path):
    touch(tmp_path / "AF01" / "AF01ANS.JPG")               # KDEF's per-subject folders
    touch(tmp_path / "train" / "happy" / "AM02HAS.JPG")    # class folders
    touch(tmp_path / "loose" / "BF03SUHL.jpg")             # anywhere, any case
    touch(tmp_path / "angry" / "AM04HAS.JPG")              # folder contradicts the code
    touch(tmp_path / "copy" / "AF01ANS.JPG")               # the same photo twice
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
