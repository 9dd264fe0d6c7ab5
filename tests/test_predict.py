"""Applying a trained model: face detection on a real photo, ONNX export and parity, the CLI."""

import json

import cv2
import numpy as np
import pytest
import torch
from matplotlib import cbook
from PIL import Image

from fer.data import synthetic
from fer.training.model import create, data_config, save_checkpoint
from fer.use.export import export_onnx, model_card, parity
from fer.use.predict import OnnxModel, TorchModel, main, predict_files

GRACE_HOPPER = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


@pytest.fixture(scope="module", params=[3, 1], ids=["rgb", "grey"])
def checkpoint(request, tmp_path_factory):
    torch.manual_seed(0)
    channels = request.param
    model = create("test_resnet", len(CLASSES), in_chans=channels)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint({"model": model.state_dict(), "model_name": "test_resnet", "classes": CLASSES,
                     "data_config": data_config(model, 48, channels), "epoch": 1, "val_acc": 0.5,
                     "params": {"epochs": 1, "pretrained": False}}, path)
    return path


def test_one_face_found_on_a_real_photo(checkpoint):
    faces, errors = predict_files([GRACE_HOPPER], TorchModel(checkpoint, "cpu"))
    assert errors.empty and len(faces) == 1
    width, height = Image.open(GRACE_HOPPER).size
    f = faces.iloc[0]
    assert 0 <= f.x < f.x + f.w <= width and 0 <= f.y < f.y + f.h <= height and f.w > 50
    assert f[CLASSES].sum() == pytest.approx(1, abs=1e-5) and f.label in CLASSES


def test_a_face_the_cascade_reports_twice_is_one_face(checkpoint, tmp_path):
    # Demo faces turned aside where OpenCV's cascade returns two shifted boxes for one face.
    synthetic.generate(tmp_path, subjects=24, angles=("HR",), size=(96, 128))
    photos = [tmp_path / "AF06" / "AF06ANHR.JPG", tmp_path / "AF08" / "AF08HAHR.JPG"]
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    for photo in photos:  # the case itself: two boxes straight from the cascade
        grey = np.asarray(Image.open(photo).convert("L"))
        assert len(cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))) == 2
    faces, errors = predict_files(photos, TorchModel(checkpoint, "cpu"))
    assert errors.empty and list(faces["file"]) == list(map(str, photos))


def test_images_without_a_face_are_named_with_the_fix(checkpoint, tmp_path, capsys):
    Image.new("RGB", (120, 160), (90, 90, 90)).save(tmp_path / "wall.jpg")
    assert main([str(tmp_path / "wall.jpg"), GRACE_HOPPER, "--checkpoint", str(checkpoint), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert f"no face found in 1 image(s): {tmp_path / 'wall.jpg'}." in err and "--no-detect" in err
    assert "1 face(s) in 2 image(s)" in err


def test_unreadable_file_is_reported_and_the_rest_predicted(checkpoint, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    faces, errors = predict_files([broken, GRACE_HOPPER], TorchModel(checkpoint, "cpu"))
    assert list(errors["file"]) == [str(broken)] and "UnidentifiedImageError" in errors["error"][0]
    assert list(faces["file"]) == [GRACE_HOPPER]


def test_cli_writes_json_and_annotated_copies(checkpoint, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.open(GRACE_HOPPER).save(photos / "grace.jpg")
    (photos / "notes.txt").write_text("ignored: not an image")
    assert main([str(photos), "--checkpoint", str(checkpoint), "--json", str(tmp_path / "p.json"),
                 "--annotate", str(tmp_path / "annotated"), "--device", "cpu"]) == 0
    records = json.loads((tmp_path / "p.json").read_text())
    assert len(records) == 1 and set(CLASSES) <= set(records[0]) and records[0]["label"] in CLASSES
    annotated = np.asarray(Image.open(tmp_path / "annotated" / "grace.jpg"))
    assert annotated.shape == np.asarray(Image.open(GRACE_HOPPER)).shape
    assert "1 face(s) in 1 image(s); 0 unreadable" in capsys.readouterr().err


def test_photos_of_the_same_name_in_two_folders_get_two_annotated_copies(checkpoint, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.open(GRACE_HOPPER).save(tmp_path / folder / "grace.jpg")
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--checkpoint", str(checkpoint), "--json",
                 str(tmp_path / "p.json"), "--annotate", str(tmp_path / "annotated"), "--device", "cpu"]) == 0
    assert sorted(p.relative_to(tmp_path / "annotated").as_posix()
                  for p in (tmp_path / "annotated").rglob("*.jpg")) == ["a/grace.jpg", "b/grace.jpg"]


@pytest.mark.parametrize("args, expected", [
    (["nowhere/*.jpg"], "no such file, folder or match: nowhere/"),
    ([GRACE_HOPPER, "--onnx", "missing.onnx"], "ONNX model missing.onnx not found"),
])
def test_a_missing_input_or_model_stops_with_its_name(checkpoint, tmp_path, args, expected):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args] + ["--checkpoint", str(checkpoint), "--json", str(tmp_path / "p.json")])
    assert expected in str(e.value)
    assert not (tmp_path / "p.json").exists()


def test_no_detect_treats_each_image_as_one_face(checkpoint):
    faces, _ = predict_files([GRACE_HOPPER], TorchModel(checkpoint, "cpu"), detect=False)
    assert len(faces) == 1 and (faces.x[0], faces.y[0]) == (0, 0)


@pytest.mark.parametrize("tta", ["none", "flip"])
def test_onnx_matches_pytorch(checkpoint, tmp_path, tta):
    from fer.training.model import load_checkpoint

    model, ckpt = load_checkpoint(checkpoint)
    export_onnx(model, ckpt, tmp_path / "model.onnx", tta=tta)
    c = ckpt["data_config"]["input_size"][0]
    images = np.random.default_rng(0).integers(0, 256, (20, c, 48, 48), dtype=np.uint8)
    assert parity(model, ckpt, tmp_path / "model.onnx", images, tta) <= 1e-4
    onnx_model = OnnxModel(tmp_path / "model.onnx")
    assert onnx_model.classes == CLASSES and onnx_model.tta == tta
    a, _ = predict_files([GRACE_HOPPER], onnx_model)
    b, _ = predict_files([GRACE_HOPPER], TorchModel(checkpoint, "cpu", tta))
    np.testing.assert_allclose(a[CLASSES].to_numpy(), b[CLASSES].to_numpy(), atol=1e-4)


def test_flip_tta_averages_a_face_with_its_mirror_image(checkpoint, tmp_path):
    from fer.training.model import load_checkpoint

    model, ckpt = load_checkpoint(checkpoint)
    c = ckpt["data_config"]["input_size"][0]
    face = np.random.default_rng(1).integers(0, 256, (1, c, 48, 48), dtype=np.uint8)
    one, mirror = TorchModel(checkpoint, "cpu", "none")(face), TorchModel(checkpoint, "cpu", "none")(face[..., ::-1])
    flip = TorchModel(checkpoint, "cpu", "flip")(face)
    np.testing.assert_allclose(flip, (one + mirror) / 2, atol=1e-6)
    assert np.abs(flip - one).max() > 1e-4  # the random face is not symmetric: the averaging shows
    # fer-predict's default is what evaluate.tta's default scores; an ONNX file keeps what it was exported with
    export_onnx(model, ckpt, tmp_path / "plain.onnx", tta="none")
    with pytest.raises(SystemExit, match="exported with tta none"):
        main([str(GRACE_HOPPER), "--onnx", str(tmp_path / "plain.onnx"), "--tta", "flip"])


def test_model_card_says_what_was_measured(checkpoint):
    ckpt = torch.load(checkpoint, weights_only=True)
    metrics = {"accuracy": 0.9, "macro_f1": 0.8, "balanced_accuracy": 0.85, "majority_baseline": 0.14,
               "test_images": 10, "per_class": {c: {"precision": 1, "recall": 1, "f1": 1, "support": 1} for c in CLASSES}}
    card = model_card(ckpt, metrics, {"protocol": "subject-disjoint", "subject_overlap": 0}, 1e-6, "model.onnx")
    for text in ("subject-disjoint", "No person appears in two splits", "| 0.9000 | 0.8000 | 0.8500 | 0.1400 |",
                 "## Intended use and limits", "confusion.png", "| happy |"):
        assert text in card
