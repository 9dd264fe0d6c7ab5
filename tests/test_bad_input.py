"""Messy files: each is used correctly or skipped with its reason, and the run goes on."""

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fer.data import formats, synthetic
from fer.data.cache import load_split
from fer.data.preprocess import build, load_image
from fer.params import DataParams


def gradient(mode="RGB", size=(40, 30)):
    a = np.linspace(0, 255, size[0] * size[1] * 3).reshape(size[1], size[0], 3).astype(np.uint8)
    return Image.fromarray(a).convert(mode)


def jpeg_bytes(img=None):
    buf = io.BytesIO()
    (img or gradient()).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "name, writer",
    [
        ("cmyk.jpg", lambda p: gradient("CMYK").save(p, "JPEG")),
        ("rgba.png", lambda p: gradient("RGBA").save(p)),
        ("palette.png", lambda p: gradient("P").save(p)),
        ("grey.png", lambda p: gradient("L").save(p)),
        ("sixteen.png", lambda p: Image.fromarray((np.arange(1200).reshape(30, 40) * 50).astype(np.uint16)).save(p)),
    ],
)
@pytest.mark.parametrize("grayscale", [False, True])
def test_unusual_image_modes_are_used(tmp_path, name, writer, grayscale):
    writer(tmp_path / name)
    out = load_image(tmp_path / name, 16, grayscale)
    assert out.shape == ((1 if grayscale else 3), 16, 16) and out.dtype == np.uint8
    top, bottom = out[:, :8].astype(float).mean(), out[:, 8:].astype(float).mean()
    assert bottom > top + 40  # the picture survives (dark at the top, light below): not blank, not inverted


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(tmp_path / "mid.png")
    assert load_image(tmp_path / "mid.png", 8, True).max() == 128


BROKEN = {
    "random.jpg": lambda: np.random.default_rng(0).bytes(3000),
    "truncated.jpg": lambda: jpeg_bytes()[:400],
    "empty.jpg": lambda: b"",
}


def test_broken_files_are_skipped_with_their_reason(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    rows = []
    for i, (name, content) in enumerate(BROKEN.items()):
        (raw / "happy").mkdir(parents=True, exist_ok=True)
        (raw / "happy" / name).write_bytes(content())
        rows.append({"path": f"happy/{name}", "label": "happy", "split": "train"})
    for i in range(3):
        gradient().save(raw / "happy" / f"ok{i}.jpg")
        rows.append({"path": f"happy/ok{i}.jpg", "label": "happy", "split": ["train", "val", "test"][i]})
    # A decompression bomb: pixels past PIL's limit (lowered here so the test stays small).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 30)
    Image.new("RGB", (40, 31)).save(raw / "happy" / "bomb.png")
    rows.append({"path": "happy/bomb.png", "label": "happy", "split": "train"})
    failed, _ = build(pd.DataFrame(rows), raw, tmp_path / "out", size=16, grayscale=False, workers=2)
    reasons = dict(zip(failed["path"], failed["reason"]))
    assert set(reasons) == {"happy/random.jpg", "happy/truncated.jpg", "happy/empty.jpg", "happy/bomb.png"}
    assert "UnidentifiedImageError" in reasons["happy/empty.jpg"]
    assert "truncated" in reasons["happy/truncated.jpg"].lower()
    assert "DecompressionBomb" in reasons["happy/bomb.png"]
    images, facts = load_split(tmp_path / "out", pd.DataFrame(rows), "train")
    assert list(facts["path"]) == ["happy/ok0.jpg"] and images.shape[0] == 1


@pytest.mark.parametrize("reader", ["kdef", "folders"])
def test_non_image_files_are_listed(tmp_path, reader):
    (tmp_path / "happy").mkdir()
    gradient().save(tmp_path / "happy" / "AF01HAS.JPG")
    for junk in (".DS_Store", "Thumbs.db", "readme.txt"):
        (tmp_path / "happy" / junk).write_bytes(b"junk")
    images, skipped = formats.scan(tmp_path, DataParams(format=reader, classes=("happy",)))
    assert list(images["path"]) == ["happy/AF01HAS.JPG"]
    assert sorted(skipped["path"]) == ["happy/.DS_Store", "happy/Thumbs.db", "happy/readme.txt"]
    assert skipped["reason"].str.len().gt(0).all()


def unique_jpeg(seed: int) -> bytes:
    return jpeg_bytes(Image.fromarray(np.random.default_rng(seed).integers(0, 255, (30, 40, 3), dtype=np.uint8)))


def run_split_stage(tmp_path, data: dict):
    import json
    import subprocess
    import sys

    import yaml

    src = Path(__file__).resolve().parents[1] / "src"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": data, "split": {"val": 0.25, "test": 0.25}}))
    p = subprocess.run(
        [sys.executable, str(src / "split.py"), "raw", "split", "split.json", "details.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    return (
        pd.read_csv(tmp_path / "split" / "manifest.csv"),
        pd.read_csv(tmp_path / "split" / "skipped.csv"),
        json.loads((tmp_path / "details.json").read_text()),
    )


def test_same_image_twice_is_used_once(tmp_path):
    for s in range(1, 5):
        for i, code in enumerate(("AF", "AN", "DI", "HA", "NE", "SA", "SU")):
            path = tmp_path / "raw" / f"AF{s:02d}" / f"AF{s:02d}{code}S.JPG"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(unique_jpeg(s * 10 + i))
    # The same photo again under another person's name: it could land in another split.
    copy = tmp_path / "raw" / "AF09" / "AF09HAS.JPG"
    copy.parent.mkdir()
    copy.write_bytes((tmp_path / "raw" / "AF01" / "AF01HAS.JPG").read_bytes())
    manifest, skipped, stats = run_split_stage(tmp_path, {"format": "kdef"})
    assert "AF09/AF09HAS.JPG" not in set(manifest["path"])
    assert dict(zip(skipped["path"], skipped["reason"])) == {"AF09/AF09HAS.JPG": "same content as AF01/AF01HAS.JPG"}
    assert stats["duplicates"] == 1 and stats["skipped"] == 1


def test_photos_missing_from_a_kdef_copy_are_listed_and_counted(tmp_path):
    synthetic.generate(tmp_path / "raw", subjects=4, angles=("S", "HR"), size=(32, 32))
    for name in ("AF01SUHR.JPG", "BM02ANS.JPG"):
        (tmp_path / "raw" / name[:4] / name).unlink()
    manifest, skipped, stats = run_split_stage(tmp_path, {"format": "kdef"})
    missing = pd.read_csv(tmp_path / "split" / "missing.csv")
    assert missing.to_dict("records") == [
        {"code": "AF01SUHR", "subject": "F01", "session": "A", "label": "surprise", "angle": "HR"},
        {"code": "BM02ANS", "subject": "M02", "session": "B", "label": "angry", "angle": "S"},
    ]
    assert stats["missing"] == 2 and len(manifest) == 4 * 2 * 7 * 2 - 2 and skipped.empty


def test_fer2013_duplicates_across_splits_are_kept_and_counted(tmp_path):
    seed = 0
    for prefix, folder in (("Training", "train"), ("PublicTest", "test"), ("PrivateTest", "test")):
        for c in ("angry", "happy"):
            for i in range(2):
                path = tmp_path / "raw" / folder / c / f"{prefix}_{c}{i}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(unique_jpeg(seed := seed + 1))
    repeat = tmp_path / "raw" / "test" / "happy" / "PrivateTest_again.jpg"
    repeat.write_bytes((tmp_path / "raw" / "train" / "happy" / "Training_happy0.jpg").read_bytes())
    manifest, skipped, stats = run_split_stage(tmp_path, {"format": "fer2013"})
    assert "test/happy/PrivateTest_again.jpg" in set(manifest["path"])  # the official split is kept whole
    assert stats["protocol"] == "official split"
    assert stats["duplicates"] == 1 and stats["duplicates_across_splits"] == 1
    assert "missing" not in stats  # only KDEF has a design to miss photos of
    assert pd.read_csv(tmp_path / "split" / "missing.csv").empty
    dups = pd.read_csv(tmp_path / "split" / "duplicates.csv")
    # Files are read in path order, so the test copy counts as the first.
    assert dups.to_dict("records") == [
        {
            "path": "train/happy/Training_happy0.jpg",
            "same_as": "test/happy/PrivateTest_again.jpg",
            "reason": "same content as test/happy/PrivateTest_again.jpg",
            "dropped": False,
            "split": "train",
            "same_as_split": "test",
        }
    ]
