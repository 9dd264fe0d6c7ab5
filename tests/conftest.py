"""Shared fixtures: tiny demo data and tiny params, so every test runs offline on CPU in seconds."""

import os
import subprocess
from pathlib import Path

# Without network a hub lookup retries for ~50 s; tests must never wait on it.
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402

from fer import demo, kdef  # noqa: E402
from fer.params import TrainParams  # noqa: E402

ROOT = Path(__file__).parent.parent


def shipped_params_text() -> str:
    """params.yaml as committed: `dvc exp run` (e.g. `make demo`) rewrites the workspace copy."""
    try:
        return subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: the file is all there is
        return (ROOT / "params.yaml").read_text()


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory):
    """A small demo dataset in KDEF layout: 6 people x 7 expressions x 1 angle x 2 sessions."""
    root = tmp_path_factory.mktemp("demo") / "raw"
    demo.generate(root, subjects=6, angles=("S",), size=(48, 64))
    return root


@pytest.fixture(scope="session")
def demo_images(demo_raw):
    images, skipped = kdef.scan(demo_raw)
    assert skipped.empty
    return images


@pytest.fixture
def tiny_train():
    """Train params for a tiny timm model, no pretrained weights, on CPU."""
    return TrainParams(model="test_resnet", pretrained=False, epochs=2, batch_size=8, lr=1e-3, device="cpu")


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

    import fer.train

    ref_history, ref_best = fer.train.fit(params, train, val, classes)
    real_predict, calls = fer.train.predict, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(fer.train, "predict", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fer.train.fit(params, train, val, classes, state_path=state_path)
    monkeypatch.setattr(fer.train, "predict", real_predict)
    if before_resume:
        before_resume()
    history, best = fer.train.fit(params, train, val, classes, state_path=state_path)
    drop = lambda hs: [{k: v for k, v in h.items() if k != "seconds"} for h in hs]  # noqa: E731
    assert drop(history) == drop(ref_history)  # the lr of every epoch included
    for k in ref_best["model"]:
        assert torch.equal(best["model"][k], ref_best["model"][k]), k
