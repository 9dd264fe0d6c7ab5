"""Beyond one run: a queued sweep run two at a time, and experiments shared between clones
through a Git remote and a DVC remote (the real `dvc` in temporary git repositories)."""

import json
import time
from pathlib import Path

import pytest
import torch
from helpers import TINY, make_repo, run

pytestmark = pytest.mark.e2e


def experiments(repo: Path) -> dict[str, dict]:
    """`dvc exp show --json`'s experiments (not the baselines), by name: their metrics files."""
    found = {}
    for baseline in json.loads(run(repo, "dvc", "exp", "show", "--json").stdout):
        for exp in baseline.get("experiments") or []:
            for rev in exp["revs"]:
                found[rev["name"]] = (rev.get("data") or {}).get("metrics") or {}
    return found


def accuracy(metrics: dict) -> float:
    return metrics["metrics/metrics.json"]["data"]["accuracy"]


def wait_for_queue(repo: Path, timeout: float = 900) -> str:
    """Poll `dvc queue status` until nothing is queued or running; return its last output."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = run(repo, "dvc", "queue", "status").stdout
        if not any(word in status for word in ("Queued", "Running")):
            return status
        time.sleep(3)
    raise AssertionError(f"the queue did not finish in {timeout:.0f} s:\n{status}")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """A repository whose baseline run is committed: experiments take its data stages from the cache."""
    repo = make_repo(tmp_path_factory.mktemp("a") / "a", TINY)
    run(repo, "dvc", "repro")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "baseline")
    return repo


def test_a_queued_sweep_runs_on_two_workers_and_lists_every_run_with_metrics(baseline):
    repo = baseline
    run(repo, "dvc", "exp", "run", "--queue", "-S", "train.lr=1e-3,3e-3", "-S", "train.threads=1")
    run(repo, "dvc", "queue", "start", "-j", "2")
    status = wait_for_queue(repo)
    assert "Failed" not in status, status
    exps = experiments(repo)
    assert len(exps) == 2, exps  # the two of the sweep, each with its metrics
    for metrics in exps.values():
        assert 0 <= accuracy(metrics) <= 1
        assert 1 <= metrics["metrics/train/metrics.json"]["data"]["best_epoch"] <= TINY["train"]["epochs"]


def test_an_experiment_pushed_from_one_clone_is_pulled_with_its_model_into_another(baseline, tmp_path):
    origin, storage = tmp_path / "origin.git", tmp_path / "storage"
    run(tmp_path, "git", "init", "-q", "--bare", str(origin))
    a = baseline
    run(a, "dvc", "remote", "add", "-d", "storage", str(storage))
    run(a, "git", "commit", "-qam", "DVC remote")
    run(a, "git", "remote", "add", "origin", str(origin))
    run(a, "git", "push", "-q", "origin", "HEAD")
    run(a, "dvc", "exp", "run", "-n", "lr-3e-3", "-S", "train.lr=3e-3")
    run(a, "dvc", "exp", "push", "origin", "lr-3e-3")
    made = (a / "models/best.pt").read_bytes()

    b = tmp_path / "b"
    run(tmp_path, "git", "clone", "-q", str(origin), str(b))
    assert "lr-3e-3" in run(b, "dvc", "exp", "list", "--all-commits", "origin").stdout
    run(b, "dvc", "exp", "pull", "origin", "lr-3e-3")
    assert accuracy(experiments(b)["lr-3e-3"]) == accuracy(experiments(a)["lr-3e-3"])
    run(b, "dvc", "exp", "apply", "lr-3e-3")
    run(b, "dvc", "pull")
    assert (b / "models/best.pt").read_bytes() == made
    assert torch.load(b / "models/best.pt", weights_only=True)["params"]["lr"] == 3e-3
