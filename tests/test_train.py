import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_resumes_exactly

from fer import FerError
from fer.data.preprocess import load_image
from fer.inference import to_input
from fer.models import create, data_config
from fer.params import AugmentParams
from fer.training.train import Batches, augmentation, fit, on_device


@pytest.fixture(scope="module")
def arrays(demo_raw, demo_images):
    """(train, val) as (uint8 images, targets) at 32 px: 4 people to train on, 2 to validate."""
    classes = sorted(demo_images["label"].unique())
    x = np.stack([load_image(demo_raw / p, 32, False) for p in demo_images["path"]])
    y = demo_images["label"].map(classes.index).to_numpy()
    is_val = demo_images["subject"].isin(demo_images["subject"].unique()[:2]).to_numpy()
    return (x[~is_val], y[~is_val]), (x[is_val], y[is_val]), classes


class NanAfter(torch.nn.Module):
    """A batch transform that turns every batch after the first `n` into NaNs."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, x):
        self.calls += 1
        return x * float("nan") if self.calls > self.n else x


def test_loss_falls_when_overfitting_one_batch(arrays):
    (x, y), _, classes = arrays
    torch.manual_seed(0)
    model = create("test_resnet", len(classes))
    cfg = data_config(model, 32, 3)
    xb, yb = to_input(torch.from_numpy(x[:16]), cfg, torch.device("cpu")), torch.from_numpy(y[:16])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_fit_returns_history_and_a_self_describing_best_checkpoint(arrays, tiny_train):
    train, val, classes = arrays
    history, best = fit(tiny_train.model_copy(update={"epochs": 3}), train, val, classes, extra={"note": 1})
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert set(history[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    assert all(np.isfinite(h["train_loss"]) and 0 <= h["val_acc"] <= 1 for h in history)
    assert best.val_acc == max(h["val_acc"] for h in history)
    assert history[best.epoch - 1]["val_acc"] == best.val_acc
    assert best.model_name == "test_resnet" and best.classes == classes
    assert best.data_config["input_size"] == [3, 32, 32] and best.extra == {"note": 1}
    assert best.params["lr"] == tiny_train.lr and "state" in best.optimizer


def test_same_seed_same_weights_other_seed_other_weights(arrays, tiny_train):
    train, val, classes = arrays
    aug = tiny_train.model_copy(update={"epochs": 1})
    a, b = fit(aug, train, val, classes)[1], fit(aug, train, val, classes)[1]
    c = fit(aug.model_copy(update={"seed": 7}), train, val, classes)[1]
    for k in a.weights:
        torch.testing.assert_close(a.weights[k], b.weights[k], rtol=0, atol=0)
    assert any(not torch.equal(a.weights[k], c.weights[k]) for k in a.weights if a.weights[k].is_floating_point())


def test_early_stopping_stops_and_keeps_the_best(arrays, tiny_train):
    train, val, classes = arrays
    # lr 0 never improves on the first epoch's val accuracy.
    p = tiny_train.model_copy(update={"epochs": 10, "early_stopping": 2, "lr": 1e-12})
    history, best = fit(p, train, val, classes)
    assert len(history) == 3 and best.epoch == 1


def test_non_finite_loss_stops_with_advice(arrays, tiny_train, monkeypatch):
    import fer.training.train

    train, val, classes = arrays
    # Stand-in for a diverged run: every input turns NaN, so the loss does too.
    monkeypatch.setattr(fer.training.train, "augmentation", lambda aug, cfg: NanAfter(0))
    with pytest.raises(FerError, match="loss became nan in epoch 1; lower train.lr"):
        fit(tiny_train, train, val, classes)


def test_batch_larger_than_train_split_is_an_error(arrays, tiny_train):
    train, val, classes = arrays
    with pytest.raises(FerError, match="larger than the train split"):
        fit(tiny_train.model_copy(update={"batch_size": 10_000}), train, val, classes)


def test_training_continues_from_a_previous_checkpoint(arrays, tiny_train, tmp_path):
    train, val, classes = arrays
    _, first = fit(tiny_train.model_copy(update={"epochs": 1}), train, val, classes)
    first.save(tmp_path / "best.pt")
    # A vanishing lr leaves the starting weights as they were: they must be the checkpoint's.
    p = tiny_train.model_copy(update={"epochs": 1, "lr": 1e-30, "init_from": str(tmp_path / "best.pt"), "seed": 3})
    _, second = fit(p, train, val, classes)
    for k, v in first.weights.items():
        if k.endswith("weight"):
            torch.testing.assert_close(second.weights[k], v)


def test_starting_from_a_checkpoint_of_another_model_is_an_error(arrays, tiny_train, tmp_path):
    train, val, classes = arrays
    _, first = fit(tiny_train.model_copy(update={"epochs": 1, "model": "test_efficientnet"}), train, val, classes)
    first.save(tmp_path / "best.pt")
    p = tiny_train.model_copy(update={"epochs": 1, "init_from": str(tmp_path / "best.pt")})
    with pytest.raises(FerError, match=r"best.pt holds a test_efficientnet, but this run trains a test_resnet"):
        fit(p, train, val, classes)


def test_non_finite_loss_keeps_the_last_good_state(arrays, tiny_train, monkeypatch, tmp_path):
    import fer.training.train

    train, val, classes = arrays
    batches_per_epoch = len(train[1]) // tiny_train.batch_size
    monkeypatch.setattr(fer.training.train, "augmentation", lambda aug, cfg: NanAfter(batches_per_epoch))
    with pytest.raises(FerError, match="loss became nan in epoch 2.*state after epoch 1 is kept in"):
        fit(tiny_train.model_copy(update={"epochs": 3}), train, val, classes, state_path=tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert len(state["progress"]["history"]) == 1 and state["progress"]["best"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_gpu_out_of_memory_names_the_batch_size(arrays, tiny_train, monkeypatch):
    train, val, classes = arrays

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(F, "cross_entropy", out_of_memory)
    with pytest.raises(FerError, match=r"ran out of memory at train.batch_size=8 .*try train.batch_size=4"):
        fit(tiny_train, train, val, classes)


def test_batches_cover_the_split_once_per_epoch_normalised(arrays, tiny_train):
    (x, y), _, _ = arrays
    cfg = data_config(create("test_resnet", 7), 32, 3)
    no_aug = AugmentParams(flip=False, rotation=0, scale=0, translate=0, color_jitter=0)
    batches = Batches(
        on_device(x, torch.device("cpu")),
        torch.as_tensor(y),
        5,
        augmentation(no_aug, cfg),
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
        drop_last=False,
    )
    seen = torch.cat([xb for xb, _ in batches])
    assert len(batches) == -(-len(y) // 5) and seen.shape == (len(y), 3, 32, 32) and seen.dtype == torch.float32
    expected = to_input(torch.from_numpy(x), cfg, torch.device("cpu"))
    # the same images, each exactly once, in a shuffled order, normalised as for evaluation
    order = torch.cdist(seen.flatten(1), expected.flatten(1)).argmin(1)
    assert sorted(order.tolist()) == list(range(len(y))) and order.tolist() != list(range(len(y)))
    torch.testing.assert_close(seen, expected[order], atol=1e-4, rtol=0)


def test_augmentation_draws_per_image_not_per_batch(arrays):
    (x, _), _, _ = arrays
    cfg = data_config(create("test_resnet", 7), 32, 3)
    flip_only = AugmentParams(flip=True, rotation=0, scale=0, translate=0, color_jitter=0)
    torch.manual_seed(0)
    same = torch.from_numpy(np.repeat(x[:1], 64, axis=0)).float() / 255
    out = augmentation(flip_only, cfg)(same)
    plain = to_input(torch.from_numpy(x[:1]), cfg, torch.device("cpu"))
    mirrored = plain.flip(3)
    is_plain = (out - plain).abs().flatten(1).amax(1) < 1e-4
    is_mirrored = (out - mirrored).abs().flatten(1).amax(1) < 1e-4
    assert (is_plain | is_mirrored).all() and 10 < is_mirrored.sum() < 54
    full = augmentation(AugmentParams(), cfg)(same)  # the default affine moves and jitter
    assert torch.pdist(full.flatten(1)).min() > 1e-2  # no two images of the 64 alike


def test_compile_param_compiles_the_training_model(arrays, tiny_train, monkeypatch):
    train, val, classes = arrays
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model: compiled.append(model) or model)
    fit(tiny_train.model_copy(update={"epochs": 1}), train, val, classes)
    assert compiled == []
    _, best = fit(tiny_train.model_copy(update={"epochs": 1, "compile": True}), train, val, classes)
    assert len(compiled) == 1 and not any(k.startswith("_orig_mod") for k in best.weights)


def test_onecycle_warms_up_then_anneals_to_almost_zero(arrays, tiny_train):
    train, val, classes = arrays
    history, _ = fit(tiny_train.model_copy(update={"epochs": 4, "schedule": "onecycle"}), train, val, classes)
    lr = [h["lr"] for h in history]  # at the end of each epoch; the peak is at 30% of the steps
    assert lr[0] > 0.9 * tiny_train.lr and lr[0] > lr[1] > lr[2] > lr[3] and lr[3] < 0.01 * tiny_train.lr


def test_an_interrupted_onecycle_run_resumes_exactly(arrays, tiny_train, tmp_path, monkeypatch):
    p = tiny_train.model_copy(update={"epochs": 3, "schedule": "onecycle"})
    assert_resumes_exactly(p, *arrays, tmp_path / "state.pt", monkeypatch, interrupt_at=3)


def test_label_smoothing_is_in_the_training_loss(arrays):
    from fer.training.train import train_epoch

    (x, y), _, classes = arrays
    torch.manual_seed(0)
    model = create("test_resnet", len(classes))
    with torch.no_grad():  # confident predictions, where smoothing makes a difference
        model.get_classifier().weight.mul_(50)
    cfg = data_config(model, 32, 3)
    no_aug = AugmentParams(flip=False, rotation=0, scale=0, translate=0, color_jitter=0)
    xs, ys = torch.from_numpy(x[:32]), torch.from_numpy(y[:32])
    with torch.no_grad():  # one batch of all 32 in train mode, as train_epoch sees it
        expected = {
            s: F.cross_entropy(model.train()(to_input(xs, cfg, torch.device("cpu"))), ys, label_smoothing=s)
            for s in (0.0, 0.3)
        }
    for s in (0.0, 0.3):
        batches = Batches(xs, ys, 32, augmentation(no_aug, cfg), torch.device("cpu"), torch.Generator().manual_seed(0))
        frozen = torch.optim.SGD(model.parameters(), lr=0.0)
        loss, _, _ = train_epoch(model, batches, frozen, label_smoothing=s)
        assert loss == pytest.approx(expected[s].item(), rel=1e-4)
    assert abs(expected[0.3] - expected[0.0]) > 0.1


def test_random_erasing_blanks_a_rectangle_in_the_share_of_images_asked(arrays):
    (x, _), _, _ = arrays
    cfg = data_config(create("test_resnet", 7), 32, 3)
    torch.manual_seed(0)
    same = torch.from_numpy(np.repeat(x[:1], 200, axis=0)).float() / 255
    none = AugmentParams(flip=False, rotation=0, scale=0, translate=0, color_jitter=0)
    plain = augmentation(none, cfg)(same)
    erased = augmentation(none.model_copy(update={"erasing": 0.5}), cfg)(same)
    changed = (erased != plain).flatten(1)
    hit = changed.any(1)
    assert 60 < hit.sum() < 140  # about half the images
    # what changed was blanked to 0 (the normalised mean), in one rectangle per image
    assert (erased.flatten(1)[changed] == 0).all()
    rows = changed.view(-1, 3, 32, 32).any(1)[hit]
    assert all(r.any(1).sum() * r.any(0).sum() == r.sum() for r in rows)


def test_mixup_and_cutmix_train_on_blended_images_and_soft_targets(arrays, tiny_train):
    from fer.training.train import mixing, train_epoch

    (x, y), _, classes = arrays
    assert mixing(tiny_train, len(classes)) is None  # off by default
    p = tiny_train.model_copy(update={"mixup": 0.4, "label_smoothing": 0.1})
    mix = mixing(p, len(classes))
    torch.manual_seed(0)
    np.random.seed(0)
    xs, ys = torch.rand(8, 3, 32, 32), torch.arange(8) % len(classes)
    mixed, target = mix(xs.clone(), ys)
    assert target.shape == (8, len(classes)) and torch.allclose(target.sum(1), torch.ones(8))
    assert not torch.allclose(mixed, xs) and (target.max(1).values < 0.95).all()  # blended and smoothed
    # a whole run trains and resumes as usual, on soft targets
    history, _ = fit(p.model_copy(update={"cutmix": 1.0, "epochs": 2}), *arrays)
    assert all(np.isfinite(h["train_loss"]) for h in history)
    with pytest.raises(ValueError, match="batch_size / devices must be even"):
        type(tiny_train)(**{**tiny_train.model_dump(), "mixup": 0.2, "batch_size": 7})
    model = create("test_resnet", len(classes))
    cfg = data_config(model, 32, 3)
    batches = Batches(
        torch.from_numpy(x[:16]),
        torch.from_numpy(y[:16]),
        8,
        augmentation(AugmentParams(), cfg),
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
    )
    loss, acc, seen = train_epoch(model, batches, torch.optim.SGD(model.parameters(), lr=0.0), mix=mix)
    assert np.isfinite(loss) and 0 <= acc <= 1 and seen == 16


def test_an_interrupted_mixup_run_resumes_exactly(arrays, tiny_train, tmp_path, monkeypatch):
    """timm's Mixup draws from NumPy's RNG: the saved state holds it too."""
    p = tiny_train.model_copy(update={"epochs": 3, "mixup": 0.4, "cutmix": 1.0})
    # a fresh process would not be where the interrupted one was
    assert_resumes_exactly(
        p, *arrays, tmp_path / "state.pt", monkeypatch, interrupt_at=2, before_resume=lambda: np.random.seed(123)
    )
