"""Applying a trained model: face detection on a real photo, ONNX export and parity, the CLI."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib import cbook
from PIL import Image

from fer.checkpoint import Checkpoint
from fer.models import create, data_config
from fer.training.calibrate import calibrate
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
    Checkpoint(
        weights=model.state_dict(),
        model_name="test_resnet",
        classes=CLASSES,
        data_config=data_config(model, 48, channels),
        epoch=1,
        val_acc=0.5,
        params={"epochs": 1, "pretrained": False},
    ).save(path)
    return path


def test_one_face_found_on_a_real_photo(checkpoint):
    faces, errors = predict_files([GRACE_HOPPER], TorchModel(checkpoint, "cpu"))
    assert errors.empty and len(faces) == 1
    width, height = Image.open(GRACE_HOPPER).size
    f = faces.iloc[0]
    assert 0 <= f.x < f.x + f.w <= width and 0 <= f.y < f.y + f.h <= height and f.w > 50
    assert f[CLASSES].sum() == pytest.approx(1, abs=1e-5) and f.label in CLASSES


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
    assert (
        main(
            [
                str(photos),
                "--checkpoint",
                str(checkpoint),
                "--json",
                str(tmp_path / "p.json"),
                "--annotate",
                str(tmp_path / "annotated"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    records = json.loads((tmp_path / "p.json").read_text())
    assert len(records) == 1 and set(CLASSES) <= set(records[0]) and records[0]["label"] in CLASSES
    annotated = np.asarray(Image.open(tmp_path / "annotated" / "grace.jpg"))
    assert annotated.shape == np.asarray(Image.open(GRACE_HOPPER)).shape
    assert "1 face(s) in 1 image(s); 0 unreadable" in capsys.readouterr().err


def test_photos_of_the_same_name_in_two_folders_get_two_annotated_copies(checkpoint, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.open(GRACE_HOPPER).save(tmp_path / folder / "grace.jpg")
    assert (
        main(
            [
                str(tmp_path / "a"),
                str(tmp_path / "b"),
                "--checkpoint",
                str(checkpoint),
                "--json",
                str(tmp_path / "p.json"),
                "--annotate",
                str(tmp_path / "annotated"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert sorted(
        p.relative_to(tmp_path / "annotated").as_posix() for p in (tmp_path / "annotated").rglob("*.jpg")
    ) == ["a/grace.jpg", "b/grace.jpg"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["nowhere/*.jpg"], "no such file, folder or match: nowhere/"),
        ([GRACE_HOPPER, "--onnx", "missing.onnx"], "ONNX model missing.onnx not found"),
    ],
)
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
    from fer.checkpoint import load_model

    model, ckpt = load_model(checkpoint)
    export_onnx(model, ckpt, tmp_path / "model.onnx", tta=tta)
    c = ckpt.data_config["input_size"][0]
    images = np.random.default_rng(0).integers(0, 256, (20, c, 48, 48), dtype=np.uint8)
    assert parity(model, ckpt, tmp_path / "model.onnx", images, tta) <= 1e-4
    onnx_model = OnnxModel(tmp_path / "model.onnx")
    assert onnx_model.classes == CLASSES and onnx_model.tta == tta
    a, _ = predict_files([GRACE_HOPPER], onnx_model)
    b, _ = predict_files([GRACE_HOPPER], TorchModel(checkpoint, "cpu", tta))
    np.testing.assert_allclose(a[CLASSES].to_numpy(), b[CLASSES].to_numpy(), atol=1e-4)


def test_flip_tta_averages_a_face_with_its_mirror_image(checkpoint, tmp_path):
    from fer.checkpoint import load_model

    model, ckpt = load_model(checkpoint)
    c = ckpt.data_config["input_size"][0]
    face = np.random.default_rng(1).integers(0, 256, (1, c, 48, 48), dtype=np.uint8)
    one, mirror = TorchModel(checkpoint, "cpu", "none")(face), TorchModel(checkpoint, "cpu", "none")(face[..., ::-1])
    flip = TorchModel(checkpoint, "cpu", "flip")(face)
    np.testing.assert_allclose(flip, (one + mirror) / 2, atol=1e-6)
    assert np.abs(flip - one).max() > 1e-4  # the random face is not symmetric: the averaging shows
    # fer-predict's default is what evaluate.tta's default scores; an ONNX file keeps what it was exported with
    export_onnx(model, ckpt, tmp_path / "plain.onnx", tta="none")
    with pytest.raises(SystemExit, match="exported with tta none"):
        main([str(GRACE_HOPPER), "--onnx", str(tmp_path / "plain.onnx"), "--tta", "flip"])


@pytest.fixture(scope="module")
def calibrated(checkpoint, tmp_path_factory):
    """The checkpoint calibrated on random "val" faces with random labels: an untrained model
    is over-confident about them, so its temperatures come out well above 1."""
    path = tmp_path_factory.mktemp("calibrated") / "best.pt"
    ckpt = Checkpoint.load(checkpoint)
    rng = np.random.default_rng(2)
    val = rng.integers(0, 256, (64, ckpt.channels, 48, 48), dtype=np.uint8)
    calibrate(ckpt, val, pd.DataFrame({"target": rng.integers(0, len(CLASSES), 64)}), device="cpu").save(path)
    assert ckpt.calibration == {"method": "temperature", "fitted_on": "val", "images": 64}
    assert all(t > 1.05 for t in ckpt.temperature.values()) and ckpt.temperature["none"] != ckpt.temperature["flip"]
    return path


@pytest.mark.parametrize("tta", ["none", "flip"])
def test_the_checkpoint_the_onnx_file_and_fer_predict_give_the_same_calibrated_probabilities(calibrated, tmp_path, tta):
    from fer.checkpoint import load_model

    model, ckpt = load_model(calibrated)
    t = ckpt.temperature[tta]
    export_onnx(model, ckpt, tmp_path / "model.onnx", tta=tta)
    onnx_model, torch_model = OnnxModel(tmp_path / "model.onnx"), TorchModel(calibrated, "cpu", tta)
    assert onnx_model.temperature == torch_model.temperature == pytest.approx(t)
    faces = np.random.default_rng(3).integers(0, 256, (16, ckpt.channels, 48, 48), dtype=np.uint8)
    np.testing.assert_allclose(onnx_model(faces.astype(np.float32)), torch_model(faces), atol=1e-4)
    raw = TorchModel(checkpoint_without_calibration(calibrated, tmp_path), "cpu", tta)(faces)
    assert (torch_model(faces).max(1) < raw.max(1)).all()  # every answer softened: T > 1
    if tta == "none":  # one view: exactly the softmax of the logits over T, the same answers
        expected = torch.from_numpy(np.log(raw)).div(t).softmax(1).numpy()
        np.testing.assert_allclose(torch_model(faces), expected, atol=1e-5)
        assert (torch_model(faces).argmax(1) == raw.argmax(1)).all()


def checkpoint_without_calibration(path, tmp_path):
    ckpt = Checkpoint.load(path)
    ckpt.temperature, ckpt.calibration = {}, {}
    ckpt.save(tmp_path / "raw.pt")
    return tmp_path / "raw.pt"


def test_min_confidence_labels_unsure_faces_uncertain_and_keeps_their_probabilities(calibrated, tmp_path, capsys):
    args = [GRACE_HOPPER, "--checkpoint", str(calibrated), "--device", "cpu", "--json"]
    assert main([*args, str(tmp_path / "all.json")]) == 0
    answered = json.loads((tmp_path / "all.json").read_text())[0]
    assert answered["label"] in CLASSES and answered["confidence"] == max(answered[c] for c in CLASSES)
    assert main([*args, str(tmp_path / "sure.json"), "--min-confidence", str(answered["confidence"] + 0.01)]) == 0
    unsure = json.loads((tmp_path / "sure.json").read_text())[0]
    assert unsure["label"] == "uncertain" and all(unsure[c] == pytest.approx(answered[c]) for c in CLASSES)
    assert "1 uncertain" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, str(tmp_path / "x.json"), "--min-confidence", "60"])
    assert "--min-confidence is a probability, 0 to 1" in capsys.readouterr().err


# what evaluate measures beyond accuracy: calibration, selective prediction, groups
TRUST_METRICS = {
    "calibration": {
        "method": "temperature",
        "temperature": 1.7,
        "bins": 15,
        "uncalibrated": {"ece": 0.12, "nll": 0.9, "brier": 0.4},
        "calibrated": {"ece": 0.015, "nll": 0.7, "brier": 0.35},
    },
    "selective": {
        "at_confidence": {"0.6": {"coverage": 0.8, "accuracy": 0.95}, "0.9": {"coverage": 0.0, "accuracy": None}}
    },
    "groups": {
        "sex": {
            "worst": "M",
            "worst_accuracy": 0.8,
            "best": "F",
            "best_accuracy": 0.95,
            "gap": 0.15,
            "groups": {"M": {"accuracy": 0.8, "count": 40}, "F": {"accuracy": 0.95, "count": 40}},
        },
        "subject": {
            "worst": "M07",
            "worst_accuracy": 0.5,
            "best": "F02",
            "best_accuracy": 1.0,
            "gap": 0.5,
            "people": 7,
            "median_accuracy": 0.9,
            "images_per_person": 14.0,
        },
    },
}


def test_model_card_says_what_was_measured(checkpoint):
    ckpt = Checkpoint.load(checkpoint)
    metrics = {
        "accuracy": 0.9,
        "macro_f1": 0.8,
        "balanced_accuracy": 0.85,
        "majority_baseline": 0.14,
        "test_images": 10,
        "per_class": {c: {"precision": 1, "recall": 1, "f1": 1, "support": 1} for c in CLASSES},
    }
    card = model_card(ckpt, metrics, {"protocol": "subject-disjoint", "subject_overlap": 0}, 1e-6, "model.onnx")
    for text in (
        "subject-disjoint",
        "No person appears in two splits",
        "| 0.9000 | 0.8000 | 0.8500 | 0.1400 |",
        "## Intended use and limits",
        "confusion.png",
        "| happy |",
    ):
        assert text in card
    assert "## How far the probabilities can be trusted" not in card  # not measured: not claimed
    metrics.update(TRUST_METRICS)
    card = model_card(ckpt, metrics, {"protocol": "subject-disjoint", "subject_overlap": 0}, 1e-6, "model.onnx")
    for text in (
        "T = 1.700, fitted on the val split",
        "| uncalibrated | 0.1200 |",
        "| as delivered | 0.0150 |",
        "`fer-predict --min-confidence P`",
        "| 0.6 | 80.0% | 95.0% |",
        "## Where it does worse",
        "By sex: M 80.0% (n=40), F 95.0% (n=40); gap 15.0 points between M and F",
        "worst M07 50.0%, median 90.0%, best F02 100.0%",
    ):
        assert text in card
    assert "| 0.9 |" not in card  # no face answered at 0.9: no row
