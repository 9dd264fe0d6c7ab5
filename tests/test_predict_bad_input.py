"""fer-predict on bad input: a one-line error naming the cause and the fix, never a traceback,
a non-zero exit when nothing useful was made, outputs checked before the work and never lost."""

import hashlib
import json
import os
import shutil

import numpy as np
import onnx
import pytest
import torch
import yaml
from matplotlib import cbook

from fer.checkpoint import Checkpoint
from fer.models import create, data_config
from fer.use import predict
from fer.use.export import export_onnx
from fer.use.predict import main

GRACE_HOPPER = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(checkpoint, ONNX file) of a tiny greyscale model."""
    torch.manual_seed(0)
    net = create("test_resnet", len(CLASSES), in_chans=1)
    folder = tmp_path_factory.mktemp("model")
    ckpt = Checkpoint(
        weights=net.state_dict(), model_name="test_resnet", classes=CLASSES, data_config=data_config(net, 48, 1)
    )
    ckpt.save(folder / "best.pt")
    export_onnx(net, ckpt, folder / "model.onnx")
    return folder / "best.pt", folder / "model.onnx"


def fails(capsys, *args, match):
    """fer-predict `args` ends with `error: ...` matching `match`, and no traceback."""
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    message = str(stop.value.code) + capsys.readouterr().err
    assert stop.value.code != 0 and "Traceback" not in message
    assert match in message, message


def test_a_text_file_or_bare_weights_as_checkpoint(model, tmp_path, capsys):
    (tmp_path / "notes.pt").write_text("not a model\n")
    fails(capsys, GRACE_HOPPER, "--checkpoint", tmp_path / "notes.pt", match="is not a readable PyTorch checkpoint")
    torch.save(torch.load(model[0], weights_only=True)["model"], tmp_path / "weights.pt")
    fails(capsys, GRACE_HOPPER, "--checkpoint", tmp_path / "weights.pt", match="holds weights alone")
    torch.save({"epoch": 3}, tmp_path / "other.pt")
    fails(capsys, GRACE_HOPPER, "--checkpoint", tmp_path / "other.pt", match="is not a checkpoint of this pipeline")


def test_a_random_or_cut_onnx_file(model, tmp_path, capsys):
    (tmp_path / "random.onnx").write_bytes(np.random.default_rng(0).bytes(5000))
    data = model[1].read_bytes()
    (tmp_path / "half.onnx").write_bytes(data[: len(data) // 2])
    for name in ("random.onnx", "half.onnx"):
        fails(capsys, GRACE_HOPPER, "--onnx", tmp_path / name, match="is not a readable ONNX model")


def test_an_onnx_file_with_damaged_weights_gives_no_nan(model, tmp_path, capsys):
    data = bytearray(model[1].read_bytes())
    weights = max(onnx.load(model[1]).graph.initializer, key=lambda t: len(t.raw_data)).raw_data
    start = bytes(data).find(weights)
    data[start : start + 2000] = b"\xff" * 2000  # 0xFFFFFFFF is a float NaN
    (tmp_path / "damaged.onnx").write_bytes(bytes(data))
    fails(
        capsys,
        GRACE_HOPPER,
        "--onnx",
        tmp_path / "damaged.onnx",
        "--json",
        tmp_path / "out.json",
        match="not numbers (NaN or infinite)",
    )
    assert not (tmp_path / "out.json").exists()


def test_an_onnx_file_from_an_earlier_model_is_refused(model, tmp_path, capsys):
    """A training run removes models/best.pt when it starts (DVC) and a stopped one never writes
    it back, while models/model.onnx stays the earlier model's: predict must not answer with it."""
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    for file in model:
        shutil.copy(file, repo / "models" / file.name)
    digest = hashlib.md5(model[0].read_bytes()).hexdigest()
    lock = {
        "stages": {
            "export": {"deps": [{"path": "models/best.pt", "md5": digest}], "outs": [{"path": "models/model.onnx"}]}
        }
    }
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    assert main([str(GRACE_HOPPER), "--onnx", str(repo / "models/model.onnx")]) == 0  # the workspace's own model
    (repo / "models/best.pt").write_bytes(model[0].read_bytes() + b"\0")
    fails(capsys, GRACE_HOPPER, "--onnx", repo / "models/model.onnx", match="which has changed since")
    (repo / "models/best.pt").unlink()
    fails(capsys, GRACE_HOPPER, "--onnx", repo / "models/model.onnx", match="which is gone")


@pytest.mark.parametrize("flag", ["--json", "--csv"])
def test_an_output_that_cannot_be_written_stops_before_the_work(model, tmp_path, capsys, monkeypatch, flag):
    monkeypatch.setattr(predict, "predict_files", lambda *a, **k: pytest.fail("the work started"))
    fails(
        capsys,
        GRACE_HOPPER,
        "--checkpoint",
        model[0],
        flag,
        tmp_path / "no" / "such" / "out",
        match=f"{flag} {tmp_path}/no/such/out: the folder {tmp_path}/no/such does not exist",
    )
    fails(capsys, GRACE_HOPPER, "--checkpoint", model[0], flag, tmp_path, match=f"{flag} {tmp_path} is a folder")
    (tmp_path / "file").write_text("x")
    fails(
        capsys, GRACE_HOPPER, "--checkpoint", model[0], "--annotate", tmp_path / "file", match="is a file, not a folder"
    )


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_batch_size_under_one_is_refused_by_name(model, capsys, value):
    fails(capsys, GRACE_HOPPER, "--checkpoint", model[0], "--batch-size", value, match="--batch-size")


def test_ctrl_c_keeps_the_faces_found_so_far(model, tmp_path, monkeypatch):
    photos = [shutil.copy(GRACE_HOPPER, tmp_path / f"{i}.jpg") for i in range(3)]
    calls, crops = [], predict.face_crops

    def interrupted_at_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return crops(*args, **kwargs)

    monkeypatch.setattr(predict, "face_crops", interrupted_at_the_third)
    assert main([*map(str, photos), "--checkpoint", str(model[0]), "--json", str(tmp_path / "out.json")]) == 130
    written = json.loads((tmp_path / "out.json").read_text())
    assert [os.path.basename(r["file"]) for r in written] == ["0.jpg", "1.jpg"]


def test_no_readable_image_at_all_is_a_failure(model, tmp_path, capsys):
    for name in ("a.jpg", "b.png"):
        (tmp_path / name).write_bytes(b"not an image")
    assert main([str(tmp_path), "--checkpoint", str(model[0]), "--json", str(tmp_path / "out.json")]) == 1
    assert "none of the 2 image(s) could be read" in capsys.readouterr().err


def test_a_folder_linked_into_itself_gives_each_photo_once(model, tmp_path):
    shutil.copy(GRACE_HOPPER, tmp_path / "face.jpg")
    (tmp_path / "loop").symlink_to(tmp_path)
    assert predict.expand([f"{tmp_path}/**/*.jpg"]) == [tmp_path / "face.jpg"]
    assert predict.expand([str(tmp_path)]) == [tmp_path / "face.jpg"]
