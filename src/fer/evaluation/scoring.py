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

from fer.data.cache import targets
from fer.device import resolve_device
from fer.evaluation import metrics
from fer.training.model import load_checkpoint, predict


def score(y_true, y_pred, classes: list[str], train_targets, angles=None, scored=None, paths=None
          ) -> tuple[dict, pd.DataFrame]:
    """(`metrics.compute`'s metrics, confusion rows with class names and, given `paths`, each image's path).
    y_pred may hold `metrics.NO_ANSWER` (no face found: wrong for every class)."""
    result = metrics.compute(y_true, y_pred, classes, train_targets, angles, scored)
    rows = metrics.confusion_rows(y_true, y_pred, classes)
    if paths is not None:
        rows["path"] = np.asarray(paths)  # which image: to look at what failed
    return result, rows


def score_cache(checkpoint: str | Path, images: np.ndarray, facts: pd.DataFrame, train_targets, tta: str = "flip",
                device: str = "auto") -> tuple[dict, pd.DataFrame]:
    """`score` of `checkpoint` on cached uint8 `images` (N, C, H, W) whose `facts` (the
    cache's rows: target, angle, path) give the truth; each face scored as evaluate.tta says
    (flip: averaged with its mirror image), as the exported model and fer-predict score it.
    train_targets: the train split's class indices, for the majority baseline. Where the
    facts hold annotators' votes (FER+), also `vote_cross_entropy`: how far the predicted
    probabilities are from the vote shares (cross-entropy in nats; lower is closer)."""
    device = resolve_device(device)
    model, ckpt = load_checkpoint(checkpoint, device)
    logits = predict(model, images, ckpt["data_config"], device, tta=tta)
    result, rows = score(facts["target"].to_numpy(), logits.argmax(1).numpy(), ckpt["classes"], train_targets,
                         facts["angle"], paths=facts["path"])
    if "votes" in facts and len(facts) and (facts["votes"] != "").all():
        shares = torch.from_numpy(targets(facts, ckpt["classes"], distribution=True))
        result["vote_cross_entropy"] = float(-(shares * logits.log_softmax(1)).sum(1).mean())
    return result, rows
