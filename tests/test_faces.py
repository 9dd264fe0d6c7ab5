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

from fer.data import synthetic
from fer.data.cache import load_cache
from fer.data.faces import (
    DETECT_SIDES,
    DETECTOR,
    LANDMARKS_IN_BOX,
    Face,
    crop,
    detect_faces,
    find_faces,
    largest,
    margin_framing,
)
from fer.data.preprocess import NO_FACE, build, load_image
from fer.use.predict import OnnxModel, face_crops

GRACE_HOPPER = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A raw folder with a real photo, two half-profile demo faces and a photo without a face."""
    raw = tmp_path_factory.mktemp("raw")
    shutil.copy(GRACE_HOPPER, raw / "grace.jpg")
    synthetic.generate(raw / "demo", subjects=2, angles=("HL", "HR"), size=(192, 256))
    shutil.copy(raw / "demo/AF01/AF01HAHL.JPG", raw / "left.jpg")
    shutil.copy(raw / "demo/AF01/AF01HAHR.JPG", raw / "right.jpg")
    # a picture without a face: a brick wall, courses of bricks and mortar
    wall = np.full((160, 120, 3), 150, dtype=np.uint8)
    wall[::20] = wall[1::20] = wall[2::20] = 60
    Image.fromarray(wall).save(raw / "wall.jpg")
    return raw


def manifest(paths) -> pd.DataFrame:
    return pd.DataFrame({"path": paths, "label": "happy", "subject": "S1", "angle": "S", "session": "A"})


@pytest.mark.parametrize("grayscale, align", [(False, False), (True, False), (False, True)])
def test_preprocess_and_predict_crop_the_same_face(photos, tmp_path, grayscale, align):
    paths = ["grace.jpg", "left.jpg", "right.jpg"]
    failed, _ = build(
        manifest(paths), photos, tmp_path, size=48, grayscale=grayscale, workers=1, face_margin=0.3, align=align
    )
    assert failed.empty
    cached, facts = load_cache(tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["face"]["margin"] == 0.3 and meta["face"]["align"] == align and list(facts["path"]) == paths
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
    failed, _ = build(
        manifest(["wall.jpg", "grace.jpg"]),
        photos,
        tmp_path,
        size=32,
        grayscale=False,
        workers=1,
        face_margin=0.2,
        no_face=no_face,
    )
    faces = pd.read_csv(tmp_path / "faces.csv")
    assert faces.to_dict("records") == [
        {"path": "wall.jpg", "face_found": False},
        {"path": "grace.jpg", "face_found": True},
    ]
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


def eye_angle(face: Face) -> float:
    """The angle of the line from the left eye to the right, in degrees: 0 when level."""
    (lx, ly), (rx, ry) = face.landmarks[:2]
    return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


def centre_of_light(image: Image.Image) -> np.ndarray:
    """The (x, y) centre of an image's light, weighted by brightness."""
    pixels = np.asarray(image)[..., 0].astype(float)
    ys, xs = np.indices(pixels.shape)
    return np.array([(xs * pixels).sum(), (ys * pixels).sum()]) / pixels.sum()


def test_an_aligned_crop_puts_known_landmarks_where_the_framing_says():
    # A face whose five landmarks are known: the framing's own points, scaled, turned by 30
    # degrees and moved. Each landmark is drawn alone as a white dot and followed through the crop.
    turn = np.radians(30)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    points = np.array(LANDMARKS_IN_BOX) * 150 @ rotation.T + (200, 180)
    face = Face((125.0, 105.0, 150.0, 150.0), tuple(map(tuple, points)), 1.0)
    framing = margin_framing(0.25)

    def dot(i: int) -> Image.Image:
        image = np.zeros((400, 400, 3), dtype=np.uint8)
        x, y = points[i].round().astype(int)
        image[y - 2 : y + 3, x - 2 : x + 3] = 255
        return Image.fromarray(image)

    for i, target in enumerate(framing["landmarks"]):
        out = crop(dot(i), face, framing, align=True)
        assert out.width == out.height == round(150 / framing["box"][2])  # about the photo's own resolution
        np.testing.assert_allclose(centre_of_light(out), np.array(target) * out.width, atol=1)
    # the eyes are level; without alignment the crop is upright as the photo lies, 30 degrees off
    for align, degrees in ((True, 0), (False, 30)):
        (lx, ly), (rx, ry) = (centre_of_light(crop(dot(i), face, framing, align)) for i in (0, 1))
        assert np.degrees(np.arctan2(ry - ly, rx - lx)) == pytest.approx(degrees, abs=1)


@pytest.mark.parametrize("degrees", [-25, 15])
def test_a_tilted_head_comes_out_level(degrees):
    photo = Image.open(GRACE_HOPPER).convert("RGB").rotate(degrees, resample=Image.Resampling.BICUBIC)
    face = largest(find_faces(photo))
    assert abs(eye_angle(face) + degrees) < 5  # the detector sees the tilt (PIL turns counter-clockwise)
    aligned = crop(photo, face, margin_framing(0.2), align=True)
    again = largest(find_faces(aligned))
    assert abs(eye_angle(again)) < 3, eye_angle(again)
    # the eyes land where the framing puts them, at any tilt
    np.testing.assert_allclose(
        np.array(again.landmarks[:2]) / aligned.width, margin_framing(0.2)["landmarks"][:2], atol=0.03
    )
    upright = crop(photo, face, margin_framing(0.2))
    assert abs(eye_angle(largest(find_faces(upright))) + degrees) < 5


def test_a_model_of_face_crops_frames_a_photos_face_as_its_crops_are_framed(photos, tmp_path):
    # Face crops cut tight (margin 0.05) from photos, as FER2013's faces are: preprocess takes
    # them whole and measures how their faces sit; predict then cuts a photo's face alike.
    crops = tmp_path / "crops"
    crops.mkdir()
    tight = margin_framing(0.05)
    sources = [GRACE_HOPPER] + sorted((photos / "demo").rglob("*.JPG"))
    for i, source in enumerate(sources[:5] * 5):  # enough crops to measure on (faces.MEASURE_MIN)
        image = Image.open(source).convert("RGB").rotate(3 * (i % 5) - 6)
        crop(image, largest(find_faces(image)), tight).resize((48, 48)).save(crops / f"{i}.png")
    paths = sorted(p.name for p in crops.iterdir())
    build(manifest(paths), crops, tmp_path / "cache", size=48, grayscale=True, workers=2)
    framing = json.loads((tmp_path / "cache/meta.json").read_text())["framing"]
    assert framing["measured"] == {"images": 25, "faces": 25}
    assert framing["box"] == pytest.approx(tight["box"], abs=0.05)
    config = {"input_size": [1, 48, 48], "framing": framing}  # as the train stage records it
    photo = Image.open(GRACE_HOPPER).convert("RGB")
    _, [framed] = face_crops(photo, config)
    expected = crop(photo, largest(find_faces(photo)), framing)
    np.testing.assert_array_equal(framed, load_image(np.asarray(expected), 48, True))
    _, [default] = face_crops(photo, {"input_size": [1, 48, 48]})  # a model that recorded none: the margin
    assert not np.array_equal(framed, default)


def on_the_face(box, width: int = 96, height: int = 128) -> bool:
    """Whether `box` lies where the demo draws the face: centred, at 0.46 of the height, a third
    of the width wide (as bench/face_recall.py judges it)."""
    x, y, w, h = box
    return (
        abs(x + w / 2 - width / 2) < 0.2 * width
        and abs(y + h / 2 - 0.46 * height) < 0.2 * height
        and 0.3 * width < w < width
    )


def test_the_detector_finds_95_percent_of_demo_faces_at_all_three_angles(tmp_path):
    # Half-profiles (HL, HR) are the hard case, so each angle is held to 90% on its own.
    photos = synthetic.generate(tmp_path, subjects=2, angles=("HL", "S", "HR"), size=(96, 128))
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


def test_a_face_found_at_both_detection_sizes_is_one_face():
    # The photo is searched at each of DETECT_SIDES: one face comes back once per size, its
    # boxes a few px apart, and must be reported once.
    photo = Image.open(GRACE_HOPPER).convert("RGB")
    per_side = [find_faces(photo, sides=(side,)) for side in DETECT_SIDES]
    assert [len(faces) for faces in per_side] == [1] * len(DETECT_SIDES)
    assert len({faces[0].box for faces in per_side}) == len(DETECT_SIDES)  # shifted boxes, not copies
    assert len(find_faces(photo)) == 1


def test_a_forked_preprocess_worker_finds_what_the_parent_finds():
    # The parent's ONNX session was made before the fork; the worker must not hang on its copy.
    photo = Image.open(GRACE_HOPPER).convert("RGB")
    boxes = detect_faces(photo)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(detect_faces, (photo,)).get(timeout=120) == boxes


def test_the_onnx_file_and_the_model_card_carry_the_face_crop(tmp_path):
    from fer.checkpoint import Checkpoint
    from fer.models import create, data_config
    from fer.use.export import export_onnx, model_card

    model = create("test_resnet", 7)
    config = {**data_config(model, 32, 3), "face": {"detector": DETECTOR, "margin": 0.3, "no_face": "skip"}}
    ckpt = Checkpoint(model.state_dict(), "test_resnet", list("abcdefg"), config, epoch=1)
    with torch.no_grad():
        export_onnx(model, ckpt, tmp_path / "model.onnx")
    assert OnnxModel(tmp_path / "model.onnx").data_config["face"]["margin"] == 0.3
    metrics = {
        "accuracy": 0.9,
        "macro_f1": 0.8,
        "balanced_accuracy": 0.85,
        "majority_baseline": 0.14,
        "test_images": 10,
        "per_class": {},
    }
    card = model_card(ckpt, metrics, {}, 1e-6, "model.onnx")
    assert f"cropped to the face ({DETECTOR}, margin 0.3; images without a face left out)" in card
