"""A training run killed with SIGKILL mid-run resumes and ends exactly as an uninterrupted one."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from fer.checkpoint import Checkpoint
from fer.data.cache import load_split
from fer.data.preprocess import build
from fer.data.split import assign
from fer.evaluation.plots import live_history
from fer.io import write_csv
from fer.params import TrainParams
from fer.training.train import fit

SRC = Path(__file__).resolve().parents[1] / "src"
PARAMS = {
    "train": {"model": "test_resnet", "pretrained": False, "epochs": 6, "batch_size": 4, "lr": 1e-3, "device": "cpu"}
}


@pytest.fixture(scope="module")
def prepared(demo_raw, demo_images, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    manifest = demo_images.assign(split=assign(demo_images, 0.2, 0.2, 0)[0])
    build(manifest, demo_raw, out, size=32, grayscale=False, workers=1)
    write_csv(manifest, out / "manifest.csv")  # the split stage's, beside the cache
    return out


def train_cmd(workdir: Path, prepared: Path):
    (workdir / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    return [
        sys.executable,
        str(SRC / "train.py"),
        str(prepared),
        str(prepared / "manifest.csv"),
        "best.pt",
        "live",
        "train.json",
        "state.pt",
    ]


def test_sigkill_mid_training_then_rerun_gives_the_uninterrupted_result(prepared, tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    ref.mkdir(), killed.mkdir()
    subprocess.run(train_cmd(ref, prepared), cwd=ref, check=True, capture_output=True)

    proc = subprocess.Popen(train_cmd(killed, prepared), cwd=killed, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while not (killed / "state.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # now in epoch 2: epoch 1's state is on disk
    proc.wait()
    assert not (killed / "best.pt").exists()

    rerun = subprocess.run(train_cmd(killed, prepared), cwd=killed, capture_output=True, text=True, check=True)
    resumed_after = int(rerun.stdout.split("resuming after epoch ")[1].split()[0])
    assert 1 <= resumed_after < PARAMS["train"]["epochs"]
    assert not (killed / "state.pt").exists()  # finished: nothing left to resume

    # the resumed run's log holds the whole run: the epochs before the kill are logged again
    drop = ["seconds"]
    history = live_history(killed / "live")
    assert list(history.index) == list(range(1, PARAMS["train"]["epochs"] + 1))
    pd.testing.assert_frame_equal(history.drop(columns=drop), live_history(ref / "live").drop(columns=drop))
    a, b = (Checkpoint.load(d / "best.pt") for d in (ref, killed))
    assert a.epoch == b.epoch
    for k in a.weights:
        assert torch.equal(a.weights[k], b.weights[k]), k


def test_state_of_other_params_is_not_resumed(prepared, tmp_path):
    # Leave a finished run's state behind, then change the lr: it must start over.
    (x, m), (xv, mv) = (load_split(prepared, prepared / "manifest.csv", s) for s in ("train", "val"))
    classes = sorted(m["label"].unique())
    p = TrainParams(**{**PARAMS["train"], "epochs": 1, "batch_size": 16})
    fit(p, (x, m["target"].to_numpy()), (xv, mv["target"].to_numpy()), classes, state_path=tmp_path / "s.pt")
    history, _ = fit(
        p.model_copy(update={"lr": 5e-3, "epochs": 2}),
        (x, m["target"].to_numpy()),
        (xv, mv["target"].to_numpy()),
        classes,
        state_path=tmp_path / "s.pt",
    )
    assert [h["epoch"] for h in history] == [1, 2]
