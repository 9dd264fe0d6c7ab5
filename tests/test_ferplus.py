"""FER+: ten votes per face read into majority labels or vote shares, and training on the shares."""

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import assert_resumes_exactly
from PIL import Image

from fer import FerError
from fer.data import ferplus
from fer.data.cache import targets
from fer.data.preprocess import class_list
from fer.params import DataParams
from fer.training.train import VoteMixup, fit

# votes in label.csv's order: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
ROWS = {
    "fer0000001.png": (2, 7, 1, 0, 0, 0, 0, 0, 0, 0),  # happy
    "fer0000002.png": (1, 0, 0, 0, 0, 0, 0, 6, 3, 0),  # contempt: a class of its own now
    "fer0000003.png": (4, 4, 0, 0, 0, 0, 0, 0, 2, 0),  # tie
    "fer0000004.png": (1, 0, 0, 0, 0, 0, 0, 0, 8, 1),  # unknown wins
    "fer0000005.png": (0, 0, 0, 0, 0, 0, 0, 0, 0, 10),  # not a face
    "fer0000006.png": (0, 0, 0, 3, 5, 2, 0, 0, 0, 0),  # angry
}


def write_ferplus(root, rows=ROWS, split="FER2013Train", missing=()):
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (name, votes) in enumerate(rows.items()):
        if name not in missing:
            pixels = np.random.default_rng(i).integers(0, 255, (48, 48), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name)
        lines.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
    (folder / "label.csv").write_text("\n".join(lines) + "\n")


def test_majority_labels_and_every_face_left_out_with_its_reason(tmp_path):
    write_ferplus(tmp_path, missing=("fer0000006.png",))
    write_ferplus(tmp_path, {"fer0000010.png": ROWS["fer0000001.png"]}, "FER2013Test")
    images, skipped = ferplus.scan(tmp_path)
    assert dict(zip(images["path"], images["label"])) == {
        "FER2013Train/fer0000001.png": "happy",
        "FER2013Train/fer0000002.png": "contempt",
        "FER2013Test/fer0000010.png": "happy",
    }
    assert dict(zip(images["path"], images["official"])) == {
        "FER2013Train/fer0000001.png": "train",
        "FER2013Train/fer0000002.png": "train",
        "FER2013Test/fer0000010.png": "test",
    }
    reasons = dict(zip(skipped["path"].str.split("/").str[-1], skipped["reason"]))
    assert reasons == {
        "fer0000003.png": "tie: two classes share the top vote",
        "fer0000004.png": "top vote: unknown",
        "fer0000005.png": "top vote: NF",
        "fer0000006.png": "listed in label.csv but no image (FER+ dropped the face)",
    }
    happy = images.set_index("path").loc["FER2013Train/fer0000001.png", "votes"]
    assert happy == "neutral=2 happy=7 surprise=1 sad=0 angry=0 disgust=0 fear=0 contempt=0"


def test_vote_shares_follow_the_class_order_and_leave_unknown_out(tmp_path):
    write_ferplus(tmp_path)
    images, _ = ferplus.scan(tmp_path)
    classes = class_list(images["label"])
    assert classes == ["angry", "contempt", "happy"]
    shares = targets(images, classes, distribution=True)
    # happy's face: 7 happy votes of the 7 its classes got (neutral and surprise are not this run's classes)
    np.testing.assert_allclose(shares, [[0, 0, 1], [0, 1, 0], [5 / 5, 0, 0]])
    assert targets(images.assign(target=[2, 1, 0]), classes).tolist() == [2, 1, 0]


def test_not_a_ferplus_tree_and_distribution_without_votes_are_refused(tmp_path):
    (tmp_path / "happy").mkdir()
    with pytest.raises(FerError, match="no FER\\+ label.csv .* FER2013Train"):
        ferplus.scan(tmp_path)
    with pytest.raises(ValueError, match="ferplus_labels distribution trains on annotators' votes"):
        DataParams(format="folders", ferplus_labels="distribution")
    facts = pd.DataFrame({"target": [0], "votes": [""]})
    with pytest.raises(FerError, match="needs each image's votes"):
        targets(facts, ["angry"], distribution=True)


def test_mixup_blends_vote_shares_as_distributions():
    mix = VoteMixup(mixup_alpha=0.4, label_smoothing=0.1, num_classes=4)
    x = torch.rand(4, 3, 8, 8)
    shares = torch.tensor([[0.7, 0.3, 0, 0], [0, 0, 1, 0], [0.25, 0.25, 0.25, 0.25], [0, 0, 0, 1]])
    _, y = mix(x.clone(), shares)
    torch.testing.assert_close(y.sum(1), torch.ones(4))
    smoothed = shares * 0.9 + 0.1 / 4
    lam = (y[0] - smoothed[3]) / (smoothed[0] - smoothed[3])  # row 0 is mixed with row 3 (the flipped batch)
    torch.testing.assert_close(y, lam[0] * smoothed + (1 - lam[0]) * smoothed.flip(0))


@pytest.fixture
def vote_arrays():
    """32 px noise with a class-coloured corner; targets: vote shares whose top class is the colour's."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 12)
    images = rng.integers(0, 255, (len(labels), 3, 32, 32), dtype=np.uint8)
    images[:, :, :8, :8] = (labels * 60)[:, None, None, None]
    shares = np.full((len(labels), 4), 0.1, dtype=np.float32)
    shares[np.arange(len(labels)), labels] = 0.7
    order = rng.permutation(len(labels))
    train, val = order[:36], order[36:]
    return (images[train], shares[train]), (images[val], shares[val]), ["angry", "happy", "neutral", "sad"]


@pytest.mark.parametrize(
    "extra", [{}, {"label_smoothing": 0.1, "class_weights": "balanced"}, {"mixup": 0.2, "cutmix": 1.0}]
)
def test_training_on_vote_shares_learns_with_each_option(vote_arrays, tiny_train, extra):
    train, val, classes = vote_arrays
    history, best = fit(tiny_train.model_copy(update={"epochs": 4, **extra}), train, val, classes)
    assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["val_loss"]) for h in history)
    assert 0 <= best.val_acc <= 1 and best.classes == classes
    if not extra:  # the corner's colour is easy to learn: the loss falls
        assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_training_on_vote_shares_resumes_exactly(vote_arrays, tiny_train, tmp_path, monkeypatch):
    train, val, classes = vote_arrays
    assert_resumes_exactly(
        tiny_train.model_copy(update={"epochs": 3, "mixup": 0.2}),
        train,
        val,
        classes,
        tmp_path / "state.pt",
        monkeypatch,
        interrupt_at=2,
    )


def test_a_ferplus_cache_trains_on_votes_and_scores_accuracy_and_vote_cross_entropy(tmp_path, tiny_train):
    """The train stage's and evaluate stage's calls (train_run, score_cache) on a FER+ tree."""
    from fer.data import formats
    from fer.data.cache import load_split
    from fer.evaluation.scoring import score_cache
    from fer.params import Params
    from fer.training.train import train_run

    rng = np.random.default_rng(1)
    for split in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        rows = {
            f"fer{split[7:]}{i:03d}.png": tuple(rng.multinomial(10, [0.4, 0.3, 0.1, 0.1, 0.05, 0.02, 0.02, 0.01]))
            + (0, 0)
            for i in range(40)
        }
        write_ferplus(tmp_path / "raw", rows, split)
    data = DataParams(source=str(tmp_path / "raw"), format="ferplus", ferplus_labels="distribution")
    images, _ = formats.scan(tmp_path / "raw", data)
    images["split"] = images["official"]
    from fer.data.preprocess import build

    build(images, tmp_path / "raw", tmp_path / "cache", size=32, grayscale=True, workers=1)
    meta = {"classes": class_list(images["label"])}
    params = Params(data=data, train=tiny_train.model_copy(update={"epochs": 1, "batch_size": 16}))
    train, val, test = (load_split(tmp_path / "cache", images, s) for s in ("train", "val", "test"))
    _, best, _ = train_run(params, train, val, meta)
    assert best.extra["data"]["ferplus_labels"] == "distribution" and best.classes == meta["classes"]
    best.save(tmp_path / "best.pt")
    result, _ = score_cache(tmp_path / "best.pt", *test, train[1]["target"], device="cpu")
    assert 0 <= result["accuracy"] <= 1 and result["test_images"] == len(test[1])
    # cross-entropy to the vote shares: at least their entropy, and finite
    shares = targets(test[1], meta["classes"], distribution=True)
    entropy = -(shares * np.log(np.where(shares > 0, shares, 1))).sum(1).mean()
    assert entropy <= result["vote_cross_entropy"] < 10


def test_each_rank_gets_the_vote_shares_of_its_own_share_of_the_batch(monkeypatch):
    """Under torchrun every rank takes its shard of each batch (fer.training.parallel); the
    vote shares must travel with their images, as class indices do."""
    from torch import nn

    from fer.training.train import Batches

    n = 16
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    shares = torch.rand(n, 3)
    shares /= shares.sum(1, keepdim=True)
    seen = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        batches = Batches(images, shares, 8, nn.Identity(), torch.device("cpu"), torch.Generator().manual_seed(0))
        for x, y in batches:
            assert len(x) == len(y) == 4  # half of the global batch of 8
            index = (x[:, 0, 0, 0] * 255).round().long()
            torch.testing.assert_close(y, shares[index])
            seen += index.tolist()
    assert sorted(seen) == list(range(n))  # the two ranks together cover every image once
