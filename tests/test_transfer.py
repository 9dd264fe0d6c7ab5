"""Starting a run from a checkpoint of other classes, channels or input size, and the
fine-tuning schedule that transfer needs (a frozen backbone first, a slower backbone)."""

import dataclasses

import numpy as np
import pytest
import torch
from helpers import assert_resumes_exactly
from timm.models import adapt_input_conv

from fer import FerError
from fer.checkpoint import Checkpoint, describe_init
from fer.data.labels import BASIC
from fer.models import create, data_config
from fer.params import TrainParams
from fer.training.state import seed_everything
from fer.training.train import adamw, fit, start_model
from fer.training.transfer import carry

SEVEN = list(BASIC)  # angry disgust fear happy neutral sad surprise
SIX = [c for c in SEVEN if c != "neutral"]  # CK+ without contempt
EIGHT = SIX + ["contempt", "neutral"]  # CK+ (contempt is not in the vocabulary) plus neutral, in another order


def checkpoint(classes, channels=3, size=32, name="test_resnet", seed=0):
    torch.manual_seed(seed)
    model = create(name, len(classes), channels)
    return Checkpoint(
        weights=model.state_dict(),
        model_name=name,
        classes=list(classes),
        data_config=data_config(model, size, channels),
        extra={"data": {"source": "fer2013.csv"}},
    )


@pytest.mark.parametrize("classes", [SIX, EIGHT], ids=["6 classes", "8 classes"])
def test_shared_classifier_rows_are_carried_bit_for_bit_and_the_others_start_fresh(classes):
    old = checkpoint(SEVEN)
    torch.manual_seed(1)
    model = create("test_resnet", len(classes))
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    init = carry(model, "test_resnet", classes, old, "fer2013.pt")
    new = model.state_dict()
    for key in ("fc.weight", "fc.bias"):
        for i, c in enumerate(classes):
            if c in SEVEN:
                assert torch.equal(new[key][i], old.weights[key][SEVEN.index(c)]), (key, c)
            else:
                assert torch.equal(new[key][i], fresh[key][i]), (key, c)
    for key in new:
        if not key.startswith("fc."):
            assert torch.equal(new[key], old.weights[key]), key
    assert init["rows_carried"] == len([c for c in classes if c in SEVEN]) and init["rows"] == len(classes)
    assert init["new"] == [c for c in classes if c not in SEVEN]
    assert init["dropped"] == [c for c in SEVEN if c not in classes]


def test_the_carried_model_answers_the_shared_classes_as_the_old_one_did():
    old = checkpoint(SEVEN)
    before = create("test_resnet", 7)
    before.load_state_dict(old.weights)
    model = create("test_resnet", len(EIGHT))
    carry(model, "test_resnet", EIGHT, old, "fer2013.pt")
    x = torch.randn(2, 3, 48, 48)  # another input size than the checkpoint's 32 px
    shared = [SEVEN.index(c) for c in EIGHT if c in SEVEN]
    ours = [i for i, c in enumerate(EIGHT) if c in SEVEN]
    torch.testing.assert_close(model.eval()(x)[:, ours], before.eval()(x)[:, shared])


@pytest.mark.parametrize("old, new", [(1, 3), (3, 1)], ids=["grey to RGB", "RGB to grey"])
def test_the_first_layer_is_folded_or_repeated_as_timm_does(old, new):
    source = checkpoint(SEVEN, channels=old)
    model = create("test_resnet", 7, new)
    init = carry(model, "test_resnet", SEVEN, source, "fer2013.pt")
    w, src = model.state_dict()["conv1.0.weight"], source.weights["conv1.0.weight"]
    assert w.shape[1] == new
    expected = adapt_input_conv(1, src) if new == 1 else src.repeat(1, 3, 1, 1) / 3
    torch.testing.assert_close(w, expected)
    # a grey image gives the adapted layer the response it gave the old one
    grey = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(
        torch.nn.functional.conv2d(grey.expand(-1, new, -1, -1), w),
        torch.nn.functional.conv2d(grey.expand(-1, old, -1, -1), src),
        rtol=1e-4,
        atol=1e-5,
    )
    assert init["channels"] == [old, new] and "first layer adapted from" in describe_init(init)


def test_a_checkpoint_of_another_architecture_is_an_error_naming_both():
    model = create("test_resnet", 7)
    with pytest.raises(FerError, match="holds a test_efficientnet, but this run trains a test_resnet"):
        carry(model, "test_resnet", SEVEN, checkpoint(SEVEN, name="test_efficientnet"), "other.pt")


def test_init_from_and_weights_take_a_checkpoint_of_other_classes_and_record_it(tmp_path):
    checkpoint(SEVEN, channels=1).save(tmp_path / "fer2013.pt")
    for key in ("init_from", "weights"):  # pretrained: the checkpoint replaces hub weights, so none are fetched
        p = TrainParams(model="test_resnet", pretrained=True, device="cpu", **{key: str(tmp_path / "fer2013.pt")})
        model, init = start_model(p, EIGHT, 1)
        assert init["from"] == str(tmp_path / "fer2013.pt") and init["rows_carried"] == 7
        assert describe_init(init).startswith(
            f"backbone from {tmp_path / 'fer2013.pt'} (test_resnet, trained on "
            f"fer2013.csv), 7 of 8 classifier rows carried; new: contempt"
        )


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (48, 3, 32, 32), dtype=np.uint8)
    y = np.arange(48) % 3
    return (x[:32], y[:32]), (x[32:], y[32:]), ["angry", "happy", "sad"]


def test_freeze_epochs_train_only_the_head_then_everything(arrays, tmp_path):
    train, val, classes = arrays
    p = TrainParams(
        model="test_resnet", pretrained=False, epochs=1, batch_size=8, lr=1e-2, device="cpu", seed=0, freeze_epochs=1
    )
    seed_everything(0)
    start = create("test_resnet", len(classes)).state_dict()  # what fit starts from with this seed
    last = {}
    for epochs in (1, 2):  # the weights after the last epoch are in the training state
        fit(p.model_copy(update={"epochs": epochs}), train, val, classes, state_path=tmp_path / f"{epochs}.pt")
        last[epochs] = torch.load(tmp_path / f"{epochs}.pt", weights_only=True)["model"]
    for k, v in start.items():
        if k.endswith("weight") and v.dim() > 1:
            assert (not torch.equal(last[1][k], v)) == k.startswith("fc."), k  # epoch 1: only the head moved
            assert not torch.equal(last[2][k], last[1][k]), k  # epoch 2: everything


def test_backbone_lr_scale_gives_the_backbone_a_smaller_step():
    model = create("test_resnet", 3)
    optimizer = adamw(model, lr=1e-3, backbone_lr_scale=0.1)
    head, backbone = optimizer.param_groups
    assert head["lr"] == 1e-3 and backbone["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in head["params"]} == {id(model.fc.weight), id(model.fc.bias)}
    assert len(head["params"]) + len(backbone["params"]) == len(list(model.parameters()))
    assert len(adamw(model, lr=1e-3).param_groups) == 1  # the default: one group, as before


def test_an_interrupted_run_with_a_frozen_start_resumes_exactly(arrays, tmp_path, monkeypatch):
    p = TrainParams(
        model="test_resnet",
        pretrained=False,
        epochs=3,
        batch_size=8,
        lr=1e-3,
        device="cpu",
        freeze_epochs=2,
        backbone_lr_scale=0.5,
        schedule="onecycle",
    )
    assert_resumes_exactly(p, *arrays, tmp_path / "state.pt", monkeypatch, interrupt_at=2)


def test_the_model_card_says_what_the_model_was_initialised_from(tmp_path):
    from fer.use.export import model_card

    model = create("test_resnet", len(EIGHT), 1)
    init = carry(model, "test_resnet", EIGHT, checkpoint(SEVEN, channels=3), "models/fer2013.pt")
    params = TrainParams(freeze_epochs=2, backbone_lr_scale=0.3).model_dump()
    ckpt = dataclasses.replace(checkpoint(EIGHT, channels=1), init=init, epoch=3, val_acc=0.5, params=params)
    metrics = {
        "accuracy": 0.9,
        "macro_f1": 0.8,
        "balanced_accuracy": 0.85,
        "majority_baseline": 0.14,
        "test_images": 8,
        "per_class": {},
    }
    card = model_card(ckpt, metrics, {"protocol": "subject-disjoint", "subject_overlap": 0}, 1e-6, "model.onnx")
    assert (
        "- Initialised from: backbone from models/fer2013.pt (test_resnet, trained on fer2013.csv), 7 of 8 "
        "classifier rows carried; new: contempt; first layer adapted from 3 to 1 channel(s)."
    ) in card
    assert "fine-tuned from a previous run" in card
    assert "only the classifier trained for the first 2 epoch(s); backbone lr 0.3 x lr" in card
    plain = model_card(
        dataclasses.replace(ckpt, init=None), metrics, {"protocol": "subject-disjoint"}, 1e-6, "model.onnx"
    )
    assert "Initialised from" not in plain
