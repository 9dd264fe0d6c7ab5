"""Helpers the tests share (fixtures live in conftest.py): the shipped params, tiny files,
a resume check, and a temporary copy of the pipeline to run the real `dvc` commands in."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def shipped_params_text() -> str:
    """params.yaml as committed: `dvc exp run` (e.g. `make demo`) rewrites the workspace copy."""
    try:
        return subprocess.run(
            ["git", "show", "HEAD:params.yaml"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: the file is all there is
        return (ROOT / "params.yaml").read_text()


TINY = {
    "data": {"source": "demo", "demo_subjects": 6, "demo_angles": ["S"], "demo_size": [48, 64]},
    "preprocess": {"size": 32},
    "train": {"model": "test_resnet", "pretrained": False, "epochs": 2, "batch_size": 16, "lr": 1e-3},
}


def run(cwd, *cmd, check=True, env=None):
    """Run a command as a user would (this environment's python and dvc, offline, with a git identity);
    with `check`, a failure raises with its whole output."""
    env = {
        **os.environ,
        # the stages' `python` must be this environment's, whatever the caller's PATH says
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        **(env or {}),
    }
    # Output goes to files, not pipes: `dvc queue start` leaves workers behind that hold the
    # pipes open, and reading a pipe to its end would wait for them to exit.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        out.seek(0), err.seek(0)
        p.stdout, p.stderr = out.read(), err.read()
    if check and p.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def make_repo(root: Path, params_update: dict | None) -> Path:
    """A git repository at `root` holding the pipeline (code, dvc.yaml, the shipped params.yaml with
    `params_update` applied per section), committed: what `dvc repro` and `dvc exp run` need."""
    (root / "params.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(shipped_params_text())
    for name in ("src", "dvc.yaml", ".dvcignore", ".gitignore", ".dvc/config", ".dvc/.gitignore"):
        src, dst = ROOT / name, root / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)
    (root / "starter").symlink_to(ROOT / "starter")  # the shipped starter model (20 MB): read, never written
    if params_update:
        params = yaml.safe_load((root / "params.yaml").read_text())
        for section, values in params_update.items():
            params[section].update(values)
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(root, "git", "init", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "pipeline")
    return root


def write_fer2013_csv(path: Path, rows):
    """A fer2013.csv with (emotion, pixels, Usage) rows."""
    lines = ["emotion,pixels,Usage"] + [f"{e},{p},{u}" for e, p, u in rows]
    path.write_text("\n".join(lines) + "\n")


def assert_resumes_exactly(params, train, val, classes, state_path, monkeypatch, interrupt_at: int, before_resume=None):
    """Run `fit` once through, then again interrupted during the `interrupt_at`-th epoch's
    validation and resumed from `state_path`: the resumed run must end with the same history
    (every value but the seconds) and bit-identical best weights. before_resume: called
    between the two, e.g. to disturb an RNG a fresh process would not share."""
    import torch

    import fer.training.train

    ref_history, ref_best = fer.training.train.fit(params, train, val, classes)
    real_predict, calls = fer.training.train.predict, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(fer.training.train, "predict", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fer.training.train.fit(params, train, val, classes, state_path=state_path)
    monkeypatch.setattr(fer.training.train, "predict", real_predict)
    if before_resume:
        before_resume()
    history, best = fer.training.train.fit(params, train, val, classes, state_path=state_path)
    drop = lambda hs: [{k: v for k, v in h.items() if k != "seconds"} for h in hs]  # noqa: E731
    assert drop(history) == drop(ref_history)  # the lr of every epoch included
    for k in ref_best.weights:
        assert torch.equal(best.weights[k], ref_best.weights[k]), k


def tiny_checkpoint(classes: list[str], channels: int = 1, size: int = 48, **fields):
    """(model, Checkpoint) of a fresh timm test_resnet for `classes`; `fields` fill the rest
    (epoch, params, temperature, ...)."""
    from fer.checkpoint import Checkpoint
    from fer.models import create, data_config

    model = create("test_resnet", len(classes), in_chans=channels)
    return model, Checkpoint(
        weights=model.state_dict(),
        model_name="test_resnet",
        classes=list(classes),
        data_config=data_config(model, size, channels),
        **fields,
    )
