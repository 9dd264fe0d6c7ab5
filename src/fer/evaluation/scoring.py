"""The one path from a model's answers to the numbers a user compares.

`score` turns predicted and true class indices into the metrics of metrics/metrics.json and
one `actual,predicted[,path]` row per image; `score_cache` first runs a checkpoint on
cached images. The evaluate stage, every cross-validation fold, cross-dataset scoring and
the benchmark of the `fer` package all go through `score`, so their numbers mean the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fer.checkpoint import load_model
from fer.data.cache import targets
from fer.device import resolve_device
from fer.evaluation import calibration, groups, metrics
from fer.inference import log_probs, view_logits


def score(
    y_true,
    y_pred,
    classes: list[str],
    train_targets,
    angles=None,
    scored=None,
    paths=None,
    probs=None,
    attributes: pd.DataFrame | None = None,
) -> tuple[dict, pd.DataFrame]:
    """(`metrics.compute`'s metrics, confusion rows with class names and, given `paths`, each image's path).
    y_pred may hold `metrics.NO_ANSWER` (no face found: wrong for every class). probs: the
    probabilities (N, classes) the answers came from, for calibration and selective-prediction
    figures and a `confidence` per row; attributes: what is known of each image (subject,
    sex, ...), for accuracy per group (`groups.by_group`)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    result = metrics.compute(y_true, y_pred, classes, train_targets, angles, scored)
    rows = metrics.confusion_rows(y_true, y_pred, classes)
    if paths is not None:
        rows["path"] = np.asarray(paths)  # which image: to look at what failed
    if probs is not None:
        rows["confidence"] = probs.max(1)
        result.update(calibration.measure(probs, y_true))
        result["selective"] = calibration.selective(rows["confidence"], y_true == y_pred)
    if attributes is not None:
        result["groups"] = groups.by_group(y_true == y_pred, attributes)
    return result, rows


def score_cache(
    checkpoint: str | Path,
    images: np.ndarray,
    facts: pd.DataFrame,
    train_targets,
    tta: str = "flip",
    device: str = "auto",
) -> tuple[dict, pd.DataFrame]:
    """`score` of `checkpoint` on cached uint8 `images` (N, C, H, W) whose `facts` (the
    cache's rows: target, angle, path, and whatever else is known of each image) give the
    truth; each face scored as evaluate.tta says (flip: averaged with its mirror image) with
    the checkpoint's calibration, as the exported model and fer-predict score it.
    train_targets: the train split's class indices, for the majority baseline.

    Adds `calibration`: the temperature and ECE, NLL, Brier score and accuracy before and after it
    (the flat `ece`, `nll`, `brier` are after: what a user sees); `selective`; `groups`; rows
    get `confidence` and `confidence_uncalibrated`. Where the facts hold annotators' votes
    (FER+), also `vote_cross_entropy`: how far the predicted probabilities are from the vote
    shares (cross-entropy in nats; lower is closer)."""
    device = resolve_device(device)
    model, ckpt = load_model(checkpoint, device)
    logits = view_logits(model, images, ckpt.data_config, device, tta=tta)
    t = ckpt.temperature_for(tta)
    raw, calibrated = log_probs(logits), log_probs(logits, t)
    y_true = facts["target"].to_numpy()
    result, rows = score(
        y_true,
        calibrated.argmax(1).numpy(),
        ckpt.classes,
        train_targets,
        facts["angle"],
        paths=facts["path"],
        probs=calibrated.exp().numpy(),
        attributes=groups.attributes(facts),
    )
    rows["confidence_uncalibrated"] = raw.exp().max(1).values.numpy()
    result["calibration"] = {
        "method": ckpt.calibration.get("method", "none"),
        "temperature": t,
        "bins": calibration.BINS,
        "uncalibrated": {
            **calibration.measure(raw.exp().numpy(), y_true),
            "accuracy": float((raw.argmax(1).numpy() == y_true).mean()) if len(y_true) else None,
        },
        "calibrated": {**{k: result[k] for k in ("ece", "nll", "brier")}, "accuracy": result["accuracy"]},
    }
    if "votes" in facts and len(facts) and (facts["votes"] != "").all():
        shares = torch.from_numpy(targets(facts, ckpt.classes, distribution=True))
        result["vote_cross_entropy"] = float(-(shares * calibrated).sum(1).mean())
    return result, rows
