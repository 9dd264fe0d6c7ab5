import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

from fer.data.cache import load_cache, load_split
from fer.data.preprocess import blank, build, image_stats, load_image, mismatch
from fer.data.split import assign


@pytest.fixture(scope="module")
def manifest(demo_images):
    m = demo_images.copy()
    m["split"] = assign(m, val=0.2, test=0.2, seed=0)[0]
    return m


@pytest.mark.parametrize("grayscale, channels", [(False, 3), (True, 1)])
def test_cache_shapes_dtypes_and_facts(demo_raw, manifest, tmp_path, grayscale, channels):
    failed, _ = build(manifest, demo_raw, tmp_path, size=32, grayscale=grayscale, workers=2)
    assert failed.empty
    meta = json.loads((tmp_path / "meta.json").read_text())
    framing = meta.pop("framing")  # whole images: how their faces sit in them, measured for predict
    assert meta == {
        "classes": ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"],
        "size": 32,
        "channels": channels,
    }
    assert framing["measured"] == {"images": 84, "faces": 84}
    cached, _ = load_cache(tmp_path)
    assert isinstance(cached, np.memmap) and cached.shape == (len(manifest), channels, 32, 32)
    total = 0
    for split in ("train", "val", "test"):
        images, facts = load_split(tmp_path, manifest, split)
        assert images.dtype == np.uint8
        assert images.shape == (len(facts), channels, 32, 32)
        assert list(facts["path"]) == list(manifest["path"][manifest["split"] == split])
        assert set(facts["target"]) == set(range(7))
        assert (facts["label"] == np.array(meta["classes"])[facts["target"]]).all()
        total += len(facts)
    assert total == len(manifest)


def test_a_long_decode_says_how_far_it_is_in_a_log(demo_raw, manifest, tmp_path, monkeypatch, capsys):
    # into a log (dvc exp run > log, CI) tqdm's bar is off: a plain line comes every INTERVAL seconds
    monkeypatch.setattr("fer.progress.INTERVAL", 0.0)
    build(manifest.iloc[:10], demo_raw, tmp_path, size=32, grayscale=False, workers=1)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("preprocess: decode")]
    assert lines[0].startswith("preprocess: decode: 1/10 images (10%)") and len(lines) == 9  # not after the last
    assert all("left" in line for line in lines)


def test_cached_pixels_are_the_decoded_image(demo_raw, manifest, tmp_path):
    build(manifest, demo_raw, tmp_path, size=40, grayscale=False, workers=1)
    images, facts = load_split(tmp_path, manifest, "test")
    np.testing.assert_array_equal(images[3], load_image(demo_raw / facts["path"][3], 40, False))
    assert images[3].std() > 10  # a face, not a blank


def test_undecodable_file_is_listed_and_left_out(demo_raw, manifest, tmp_path):
    raw = tmp_path / "raw"
    import shutil

    shutil.copytree(demo_raw, raw)
    broken = manifest[manifest["split"] == "train"]["path"].iloc[0]
    (raw / broken).write_bytes(b"not a jpeg at all")
    failed, _ = build(manifest, raw, tmp_path / "out", size=32, grayscale=False, workers=1)
    assert list(failed["path"]) == [broken] and "cannot decode" in failed["reason"][0]
    images, facts = load_split(tmp_path / "out", manifest, "train")
    assert broken not in set(facts["path"]) and len(images) == len(facts)
    assert len(facts) == (manifest["split"] == "train").sum() - 1


def test_train_blurrier_than_test_is_reported(demo_raw, manifest):
    files = manifest[manifest["split"] == "test"]["path"][:20]
    sharp = np.stack([load_image(demo_raw / f, 48, True) for f in files])
    # a copy whose train images were blurred by whoever made it
    soft = np.stack(
        [load_image(np.asarray(Image.open(demo_raw / f).filter(ImageFilter.GaussianBlur(3))), 48, True) for f in files]
    )
    alike = {"train": image_stats(sharp), "test": image_stats(sharp)}
    assert mismatch(alike) == ""
    warning = mismatch({"train": image_stats(soft), "test": image_stats(sharp)})
    assert "sharpness differs between train" in warning and "not made the same way" in warning
    # test blurrier than train: reported too
    assert "sharpness differs between train" in mismatch({"train": image_stats(sharp), "test": image_stats(soft)})


def test_one_cache_serves_every_split(demo_raw, demo_images, tmp_path):
    """The cache is built without a split; any split (another seed, the leaky one) picks its
    rows from it, and those rows are the images decoded as they would be on their own."""
    build(demo_images, demo_raw, tmp_path, size=24, grayscale=True, workers=1)
    cache, _ = load_cache(tmp_path)
    assert len(cache) == len(demo_images)
    for seed, group_by in [(0, "subject"), (1, "subject"), (0, "none")]:
        m = demo_images.assign(split=assign(demo_images, 0.2, 0.2, seed, group_by)[0])
        seen = []
        for split in ("train", "val", "test"):
            images, facts = load_split(tmp_path, m, split)
            assert set(facts["path"]) == set(m["path"][m["split"] == split])
            np.testing.assert_array_equal(images[0], load_image(demo_raw / facts["path"][0], 24, True))
            seen += list(facts["path"])
        assert sorted(seen) == sorted(demo_images["path"])


def test_a_file_with_no_picture_is_listed_and_left_out(demo_raw, demo_images, tmp_path):
    """A black placeholder (with a few stray pixels, as in circulating KDEF copies) is no
    photo: left out with the reason; faces, however dark or flat, are kept."""
    raw = tmp_path / "raw"
    import shutil

    shutil.copytree(demo_raw, raw)
    placeholder = np.zeros((96, 71), dtype=np.uint8)
    placeholder[40:44, 30:36] = 139  # a blot of stray pixels
    path = demo_images["path"].iloc[5]
    Image.fromarray(placeholder).convert("RGB").save(raw / path, "JPEG")
    failed, _ = build(demo_images, raw, tmp_path / "out", size=32, grayscale=False, workers=1)
    assert list(failed["path"]) == [path] and failed["reason"][0].startswith("no picture: near-constant pixels")
    _, facts = load_cache(tmp_path / "out")
    assert path not in set(facts["path"]) and len(facts) == len(demo_images) - 1
    face = load_image(demo_raw / demo_images["path"].iloc[0], 32, True)
    assert blank(face) == "" and blank((face // 4).astype(np.uint8)) == ""  # a dark, flat face is still a picture
