"""Turning a model into probabilities, as every path does alike: the train stage's val scores,
evaluate, cross-validation, cross-dataset scoring, fer-predict and fer-video.

Faces arrive as uint8 tensors (N, C, H, W) and are normalised as the checkpoint's data config
says; test-time augmentation (`tta` "flip") averages each face with its mirror image, and the
calibration temperature the train stage fitted softens over-confident answers.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def to_input(x: torch.Tensor, cfg: dict, device: torch.device) -> torch.Tensor:
    """uint8 (B, C, H, W) batch -> normalised float batch on `device`, channels_last."""
    mean = torch.tensor(cfg["mean"], device=device).view(1, -1, 1, 1) * 255
    std = torch.tensor(cfg["std"], device=device).view(1, -1, 1, 1) * 255
    x = x.to(device, non_blocking=True)
    return ((x.float() - mean) / std).contiguous(memory_format=torch.channels_last)


def views(model: nn.Module, x: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """Logits (V, B, classes) of the views test-time augmentation scores: the batch itself,
    and with tta "flip" also its mirror image (a mirrored face shows the same expression)."""
    if tta == "flip":
        return torch.stack([model(x).float(), model(x.flip(3)).float()])
    return model(x).float()[None]


def log_probs(view_logits: torch.Tensor, temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Log class probabilities (B, classes) from `views`' logits: each view's softmax at
    `temperature` (calibration: above 1 softens over-confident answers), averaged over views."""
    logp = (view_logits / temperature).log_softmax(-1)
    return logp[0] if len(logp) == 1 else logp.logsumexp(0) - math.log(len(logp))


@torch.inference_mode()
def view_logits(
    model: nn.Module, images, cfg: dict, device: torch.device, batch_size: int = 256, tta: str = "none"
) -> torch.Tensor:
    """`views`' logits (V, N, classes) on the CPU for uint8 `images` (N, C, H, W: an array, a
    memory-mapped cache or a tensor already on `device`), in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size]
        x = to_input(x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x)), cfg, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out.append(views(model, x, tta))
    model.train(was_training)
    return torch.cat(out, 1).cpu() if out else torch.empty(1 + (tta == "flip"), 0, 0)


def predict(
    model: nn.Module,
    images,
    cfg: dict,
    device: torch.device,
    batch_size: int = 256,
    tta: str = "none",
    temperature: float = 1.0,
) -> torch.Tensor:
    """Log class probabilities (N, classes) of `images` (see `view_logits`), each face scored as
    `tta` says and softened by `temperature`; softmax, argmax and cross-entropy read them as
    they read logits."""
    return log_probs(view_logits(model, images, cfg, device, batch_size, tta), temperature)
