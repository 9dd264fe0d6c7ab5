"""The starter model that ships in starter/: intact, its ONNX file gives its checkpoint's
probabilities, it answers fer-predict and fer-video out of the box, and runs start from it
by name; packing a run makes all of that."""

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import tiny_checkpoint
from matplotlib import cbook
from PIL import Image

from fer import FerError, starter
from fer.checkpoint import Checkpoint
from fer.data import synthetic
from fer.params import TrainParams
from fer.training.train import start_model
from fer.training.transfer import preprocessing_gaps
from fer.use import pack, video
from fer.use.export import parity
from fer.use.predict import face_crops, main

GRACE_HOPPER = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)  # a real photo of a real face
CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def test_the_shipped_files_are_the_ones_packed():
    assert set(starter.recorded_hashes()) >= {"starter.pt", "starter.onnx", "MODEL_CARD.md"}
    starter.verify()


def test_a_changed_file_is_named(tmp_path):
    copy = shutil.copytree(starter.DIR, tmp_path / "starter")
    data = bytearray((copy / "starter.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "starter.onnx").write_bytes(bytes(data))
    with pytest.raises(FerError, match=r"starter\.onnx is not the starter model that was packed"):
        starter.verify(copy)


def test_checkpoint_and_onnx_file_together_fit_in_25_mb():
    assert starter.CHECKPOINT.stat().st_size + starter.ONNX.stat().st_size <= 25e6


def test_the_onnx_file_gives_the_checkpoints_probabilities_on_a_real_face():
    ckpt = Checkpoint.load(starter.CHECKPOINT)
    assert ckpt.temperature and ckpt.starter["command"].startswith("make starter")
    assert ckpt.optimizer is None and ckpt.weights["fc.weight"].dtype == torch.float16
    _, faces = face_crops(Image.open(GRACE_HOPPER).convert("RGB"), ckpt.data_config)
    noise = np.random.default_rng(1).integers(0, 256, (7, *ckpt.data_config["input_size"]), dtype=np.uint8)
    assert len(faces) == 1
    assert parity(ckpt.build(), ckpt, starter.ONNX, np.concatenate([np.stack(faces), noise]), "flip") < 1e-4


def test_the_card_says_how_it_was_made_and_what_it_scores():
    card = starter.CARD.read_text()
    for text in (
        "make starter",
        "commit",
        "FER2013",
        "terms",
        "## Test results",
        "## On other datasets",
        "## Known failure cases",
        "## How far the probabilities can be trusted",
    ):
        assert text in card


def predict(tmp_path, monkeypatch, capsys, *args):
    """fer-predict on the real photo, run in `tmp_path`: (its faces, what it said on stderr)."""
    monkeypatch.chdir(tmp_path)
    assert main([GRACE_HOPPER, "--json", "out.json", "--device", "cpu", *args]) == 0
    return json.loads((tmp_path / "out.json").read_text()), capsys.readouterr().err


def test_a_fresh_folder_answers_with_the_starter_and_says_so(tmp_path, monkeypatch, capsys):
    faces, err = predict(tmp_path, monkeypatch, capsys)
    assert len(faces) == 1 and faces[0]["label"] in Checkpoint.load(starter.CHECKPOINT).classes
    line = err.splitlines()[0]
    assert line.startswith("the starter model: ") and "starter.pt (resnet10t" in line
    assert "card: " in line and "MODEL_CARD.md" in line and "no models/best.pt trained yet" in line


def demo_checkpoint(path, source="demo"):
    tiny_checkpoint(CLASSES, epoch=1, val_acc=0.5, params={}, extra={"data": {"source": source}})[1].save(path)


def test_the_demos_model_gives_way_to_the_starter_unless_asked_for(tmp_path, monkeypatch, capsys):
    (tmp_path / "models").mkdir()
    demo_checkpoint(tmp_path / "models" / "best.pt")
    _, err = predict(tmp_path, monkeypatch, capsys)
    assert err.startswith("the starter model: ") and "models/best.pt learnt the demo's generated faces" in err
    _, err = predict(tmp_path, monkeypatch, capsys, "--checkpoint", "models/best.pt")
    assert err.startswith("model: models/best.pt (test_resnet, trained on demo; card: none)")


def test_a_model_of_ones_own_answers(tmp_path, monkeypatch, capsys):
    (tmp_path / "models").mkdir()
    demo_checkpoint(tmp_path / "models" / "best.pt", source="/data/my-photos")
    (tmp_path / "models" / "MODEL_CARD.md").write_text("# card\n")
    _, err = predict(tmp_path, monkeypatch, capsys)
    assert err.startswith("model: models/best.pt (test_resnet, trained on my-photos; card: models/MODEL_CARD.md)")


def test_fer_video_answers_with_the_starter_out_of_the_box(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    clip = synthetic.demo_video(tmp_path / "clip.mp4", seconds=0.5, fps=10)
    assert video.main([str(clip), "--out", "out", "--device", "cpu"]) == 0
    assert capsys.readouterr().err.startswith("the starter model: ")
    assert (tmp_path / "out" / "frames.csv").read_text().count("\n") > 1


def test_a_run_starts_from_the_starter_by_name():
    classes = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]  # CK+'s names
    params = TrainParams(model="resnet10t", pretrained=False, init_from="starter", device="cpu")
    model, init = start_model(params, classes, 3)
    assert init["from"] == "starter" and init["rows_carried"] == 6 and init["new"] == ["contempt"]
    assert init["channels"] == [1, 3] and init["dropped"] == ["neutral"]
    shipped = Checkpoint.load(starter.CHECKPOINT).weights
    assert torch.equal(model.state_dict()["layer4.0.conv2.weight"], shipped["layer4.0.conv2.weight"].float())
    with pytest.raises(FerError, match="starter holds a resnet10t, but this run trains a test_resnet"):
        start_model(params.model_copy(update={"model": "test_resnet"}), classes, 3)


def test_pack_writes_a_starter_that_checks_out(tmp_path):
    torch.manual_seed(0)
    ckpt_path = tmp_path / "best.pt"
    model, ckpt = tiny_checkpoint(
        CLASSES,
        epoch=3,
        val_acc=0.5,
        params={"epochs": 3},
        extra={"data": {"source": "fer2013.tar.gz", "format": "fer2013"}},
        temperature={"flip": 1.5, "none": 1.4},
    )
    ckpt.optimizer = torch.optim.AdamW(model.parameters()).state_dict()
    ckpt.save(ckpt_path)
    metrics = {
        "accuracy": 0.7,
        "macro_f1": 0.6,
        "balanced_accuracy": 0.65,
        "majority_baseline": 0.25,
        "test_images": 10,
        "per_class": {c: {"precision": 1, "recall": 1, "f1": 1, "support": 1} for c in CLASSES},
    }
    other = {
        "dataset": "/data/ckplus48.tar.gz",
        "protocol": "cross-dataset, all images",
        "test_images": 927,
        "accuracy": 0.71,
        "macro_f1": 0.65,
        "ece": 0.05,
        "no_face": 0,
        "groups": {},
    }
    hashes = pack.pack(
        ckpt_path, tmp_path / "out", metrics, {"protocol": "official split"}, [other], "make starter X=1"
    )
    assert set(hashes) == {"starter.pt", "starter.onnx", "MODEL_CARD.md"}
    starter.verify(tmp_path / "out")
    packed = Checkpoint.load(tmp_path / "out" / "starter.pt")
    assert packed.optimizer is None and packed.starter["command"] == "make starter X=1"
    assert all(v.dtype == torch.float16 for v in packed.weights.values() if v.is_floating_point())
    faces = np.random.default_rng(0).integers(0, 256, (8, 1, 48, 48), dtype=np.uint8)
    assert parity(packed.build(), packed, tmp_path / "out" / "starter.onnx", faces, "flip") < 1e-4
    card = (tmp_path / "out" / "MODEL_CARD.md").read_text()
    for text in ("`make starter X=1`", "ICML 2013", "| ckplus48.tar.gz (cross-dataset, all images) | 927 | 71.0% |"):
        assert text in card


def test_how_a_run_caches_faces_unlike_the_starter_is_named():
    ckpt = Checkpoint.load(starter.CHECKPOINT)
    assert preprocessing_gaps(ckpt, 48, True, False, False) == []  # as the starter was trained
    gaps = preprocessing_gaps(ckpt, 64, False, True, True)  # make kdef's colour face crops, aligned
    assert gaps[:2] == [
        "it saw 48 px faces, this run caches 64 px",
        "it is greyscale and this run RGB: its first layer is adapted",
    ]
    assert "this run's are cut by the detector" in gaps[2] and "its faces were not aligned" in gaps[3]
