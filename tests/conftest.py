"""Shared fixtures: tiny demo data and tiny params, so every test runs offline on CPU in seconds."""

import os

# Without network a hub lookup retries for ~50 s; tests must never wait on it.
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402

from fer.data import kdef, synthetic  # noqa: E402
from fer.params import TrainParams  # noqa: E402


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory):
    """A small demo dataset in KDEF layout: 6 people x 7 expressions x 1 angle x 2 sessions."""
    root = tmp_path_factory.mktemp("demo") / "raw"
    synthetic.generate(root, subjects=6, angles=("S",), size=(48, 64))
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
