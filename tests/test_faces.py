"""The face detector and the face crop that preprocess (preprocess.face_crop) and predict share."""

import json
import multiprocessing
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib import cbook
from PIL import Image

from fer import demo
from fer.dataset import load_cache
from fer.faces import detect_faces
from fer.predict import OnnxModel, face_crops
from fer.preprocess import NO_FACE, build, load_image

GRACE_HOPPER = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A raw folder with a real photo, two half-profile demo faces and a photo without a face."""
    raw = tmp_path_factory.mktemp("raw")
    shutil.copy(GRACE_HOPPER, raw / "grace.jpg")
    demo.generate(raw / "demo", subjects=2, angles=("HL", "HR"), size=(192, 256))
    shutil.copy(raw / "demo/AF01/AF01HAHL.JPG", raw / "left.jpg")
    shutil.copy(raw / "demo/AF01/AF01HAHR.JPG", raw / "right.jpg")
    # a picture without a face: a brick wall, courses of bricks and mortar
    wall = np.full((160, 120, 3), 150, dtype=np.uint8)
    wall[::20] = wall[1::20] = wall[2::20] = 60
    Image.fromarray(wall).save(raw / "wall.jpg")
    return raw


def manifest(paths) -> pd.DataFrame:
    return pd.DataFrame({"path": paths, "label": "happy", "subject": "S1", "angle": "S",
                         "session": "A"})


@pytest.mark.parametrize("grayscale", [False, True])
def test_preprocess_and_predict_crop_the_same_face(photos, tmp_path, grayscale):
    paths = ["grace.jpg", "left.jpg", "right.jpg"]
    failed, _ = build(manifest(paths), photos, tmp_path, size=48, grayscale=grayscale, workers=1, face_margin=0.3)
    assert failed.empty
    cached, facts = load_cache(tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["face"]["margin"] == 0.3 and list(facts["path"]) == paths
    config = {"input_size": [1 if grayscale else 3, 48, 48], "face": meta["face"]}  # as train records it
    for i, path in enumerate(paths):
        boxes, crops = face_crops(Image.open(photos / path).convert("RGB"), config)
        assert len(boxes) == 1
        np.testing.assert_array_equal(cached[i], crops[0])
        # the margin comes from the checkpoint: without it, predict crops tighter than this training did
        _, default = face_crops(Image.open(photos / path).convert("RGB"), {"input_size": config["input_size"]})
        assert not np.array_equal(cached[i], default[0])
    # the crop is the face, not the portrait's centre square
    assert not np.array_equal(cached[0], load_image(photos / "grace.jpg", 48, grayscale))


@pytest.mark.parametrize("no_face", ["keep", "skip"])
def test_images_without_a_face_are_kept_whole_or_skipped_and_listed(photos, tmp_path, no_face):
    failed, _ = build(manifest(["wall.jpg", "grace.jpg"]), photos, tmp_path, size=32, grayscale=False, workers=1,
                      face_margin=0.2, no_face=no_face)
    faces = pd.read_csv(tmp_path / "faces.csv")
    assert faces.to_dict("records") == [{"path": "wall.jpg", "face_found": False},
                                        {"path": "grace.jpg", "face_found": True}]
    cached, facts = load_cache(tmp_path)
    if no_face == "keep":
        assert failed.empty and list(facts["path"]) == ["wall.jpg", "grace.jpg"]
        whole = np.asarray(Image.open(photos / "wall.jpg").convert("RGB"))  # decoded at full size, as for a face
        np.testing.assert_array_equal(cached[0], load_image(whole, 32, False))
    else:
        assert failed.to_dict("records") == [{"path": "wall.jpg", "reason": NO_FACE}]
        assert list(facts["path"]) == ["grace.jpg"] and len(cached) == 1


def test_without_face_crop_nothing_changes(photos, tmp_path):
    build(manifest(["grace.jpg"]), photos, tmp_path, size=32, grayscale=False, workers=1)
    assert "face" not in json.loads((tmp_path / "meta.json").read_text())
    assert not (tmp_path / "faces.csv").exists()
    np.testing.assert_array_equal(load_cache(tmp_path)[0][0], load_image(photos / "grace.jpg", 32, False))


def on_the_face(box, width: int = 96, height: int = 128) -> bool:
    """Whether `box` lies where the demo draws the face: centred, at 0.46 of the height, a third
    of the width wide (as bench/face_recall.py judges it)."""
    x, y, w, h = box
    return abs(x + w / 2 - width / 2) < 0.2 * width and abs(y + h / 2 - 0.46 * height) < 0.2 * height \
        and 0.3 * width < w < width


def test_the_detector_finds_95_percent_of_demo_faces_at_all_three_angles(tmp_path):
    # Half-profiles (HL, HR) are what the frontal cascade mostly missed (BENCHMARKS.md).
    photos = demo.generate(tmp_path, subjects=2, angles=("HL", "S", "HR"), size=(96, 128))
    found = {"HL": [], "S": [], "HR": []}
    for photo in photos:
        boxes = detect_faces(Image.open(photo).convert("RGB"))
        found[photo.stem[6:]].append(any(on_the_face(b) for b in boxes))
        assert all(on_the_face(b) for b in boxes), (photo.name, boxes)  # no false finds either
    assert np.mean(sum(found.values(), [])) >= 0.95, {a: np.mean(f) for a, f in found.items()}
    assert min(np.mean(f) for f in found.values()) >= 0.9, {a: np.mean(f) for a, f in found.items()}


def test_faces_are_found_at_any_photo_size_and_reported_in_its_pixels():
    photo = Image.open(GRACE_HOPPER).convert("RGB")  # 512x600, one face
    for scale in (0.25, 1, 4):
        image = photo.resize((int(photo.width * scale), int(photo.height * scale)))
        boxes = detect_faces(image)
        assert len(boxes) == 1, (scale, boxes)
        x, y, w, h = boxes[0]
        assert 0.25 * image.width < w < 0.5 * image.width and 0.1 * image.height < y < 0.3 * image.height
    assert detect_faces(photo.resize((64, 75))) == []  # a face under MIN_FACE px is not reported
    assert detect_faces(photo.resize((64, 75)), min_size=16) != []


def test_a_forked_preprocess_worker_finds_what_the_parent_finds():
    # The parent's ONNX session was made before the fork; the worker must not hang on its copy.
    photo = Image.open(GRACE_HOPPER).convert("RGB")
    boxes = detect_faces(photo)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(detect_faces, (photo,)).get(timeout=120) == boxes


def test_the_onnx_file_and_the_model_card_carry_the_face_crop(tmp_path):
    from fer.export import export_onnx, model_card
    from fer.model import create, data_config

    model = create("test_resnet", 7)
    config = {**data_config(model, 32, 3), "face": {"detector": "cascades", "margin": 0.3, "no_face": "skip"}}
    ckpt = {"classes": list("abcdefg"), "data_config": config, "model_name": "test_resnet", "epoch": 1, "params": {}}
    with torch.no_grad():
        export_onnx(model, ckpt, tmp_path / "model.onnx")
    assert OnnxModel(tmp_path / "model.onnx").data_config["face"]["margin"] == 0.3
    metrics = {"accuracy": 0.9, "macro_f1": 0.8, "balanced_accuracy": 0.85, "majority_baseline": 0.14,
               "test_images": 10, "per_class": {}}
    card = model_card(ckpt, metrics, {}, 1e-6, "model.onnx")
    assert "cropped to the face (cascades, margin 0.3; images without a face left out)" in card
