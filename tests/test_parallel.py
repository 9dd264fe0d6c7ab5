"""Training on 2 processes under torchrun (DDP, gloo on CPU) and the thread pool each run takes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
import yaml

from fer.checkpoint import Checkpoint
from fer.data import kdef, synthetic
from fer.data.preprocess import build
from fer.data.split import assign
from fer.evaluation.plots import live_history
from fer.io import write_csv
from fer.training import parallel

SRC = Path(__file__).resolve().parents[1] / "src"
TRAIN = {
    "model": "test_resnet",
    "pretrained": False,
    "epochs": 8,
    "batch_size": 32,
    "lr": 3e-3,
    "device": "cpu",
    "augment": {"rotation": 0, "scale": 0, "translate": 0, "color_jitter": 0},
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """10 people x 7 expressions x 2 head angles x 2 sessions at 32 px."""
    raw = tmp_path_factory.mktemp("ddp") / "raw"
    synthetic.generate(raw, subjects=10, angles=("HL", "S"), size=(48, 64))
    images, _ = kdef.scan(raw)
    out = raw.parent / "prepared"
    manifest = images.assign(split=assign(images, 0.25, 0.15, 0)[0])
    build(manifest, raw, out, size=32, grayscale=False, workers=1)
    write_csv(manifest, out / "manifest.csv")  # the split stage's, beside the cache
    return out


def train(workdir: Path, prepared: Path, devices: int, wait: bool = True, **overrides):
    """The train stage's script in `workdir` with TRAIN (+ overrides) on `devices` processes."""
    workdir.mkdir(exist_ok=True)
    (workdir / "params.yaml").write_text(yaml.safe_dump({"train": {**TRAIN, **overrides, "devices": devices}}))
    cmd = [
        sys.executable,
        str(SRC / "train.py"),
        str(prepared),
        str(prepared / "manifest.csv"),
        "best.pt",
        "live",
        "train.json",
        "state.pt",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # 2 processes on 2 cores: one thread each
    if not wait:
        return subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    p = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout + p.stderr


def test_two_processes_train_as_one_with_the_same_global_batch(prepared, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    train(one, prepared, 1)
    train(two, prepared, 2)
    # rank 0 alone wrote the log: one row per epoch, not two
    h1, h2 = live_history(one / "live"), live_history(two / "live")
    assert list(h2.index) == list(range(1, TRAIN["epochs"] + 1))
    assert not (two / "state.pt").exists()
    best = Checkpoint.load(two / "best.pt")
    assert best.params["devices"] == 2 and best.epoch in h2.index
    # the same global batch of 32 (16 per rank): the same learning, within noise
    assert h2["train_loss"].iloc[0] == pytest.approx(h1["train_loss"].iloc[0], abs=0.05)
    assert h2["train_loss"].iloc[-1] < h2["train_loss"].iloc[0] - 0.1
    assert h2["train_loss"].iloc[-1] == pytest.approx(h1["train_loss"].iloc[-1], abs=0.25)
    assert abs(h2["val_acc"].max() - h1["val_acc"].max()) <= 0.2, (h1["val_acc"].max(), h2["val_acc"].max())


def test_a_killed_two_process_run_resumes_and_ends_as_an_uninterrupted_one(prepared, tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    train(ref, prepared, 2, epochs=3)
    proc = train(killed, prepared, 2, wait=False, epochs=3)
    deadline = time.time() + 300
    while not (killed / "state.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "training ended before it could be killed"
    # the script, torchrun and both ranks, mid-run (torchrun's ranks outlive a killed launcher)
    for p in [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]:
        p.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "best.pt").exists()
    out = train(killed, prepared, 2, epochs=3)
    assert "resuming after epoch" in out
    cols = ["train_loss", "train_acc", "val_loss", "val_acc", "lr"]
    assert live_history(killed / "live")[cols].equals(live_history(ref / "live")[cols])


def test_batch_shards_of_all_ranks_make_the_whole_batch(monkeypatch):
    batch = torch.arange(10, 26)
    shards = []
    for r in range(4):
        monkeypatch.setenv("RANK", str(r))
        monkeypatch.setenv("WORLD_SIZE", "4")
        shards.append(parallel.shard(batch))
    assert all(len(s) == 4 for s in shards)
    assert sorted(torch.cat(shards).tolist()) == batch.tolist()


def test_threads_come_from_the_param_then_omp_then_the_share_of_cores(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        assert parallel.set_threads(0) == max(1, parallel.cpu_cores() // 2) == torch.get_num_threads()
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert parallel.set_threads(0) == 1 == torch.get_num_threads()
        assert parallel.set_threads(3) == 3 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_a_global_batch_that_does_not_split_evenly_is_refused():
    from fer.params import ParamsError, parse_params

    with pytest.raises(ParamsError, match="batch_size 30 is not a multiple of devices 4.*try batch_size 28"):
        parse_params({"train": {"batch_size": 30, "devices": 4}})
