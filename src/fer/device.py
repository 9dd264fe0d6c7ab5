"""Which device a stage runs on: one rule for training, evaluation and prediction."""

from __future__ import annotations

import torch

from fer import FerError


def resolve_device(name: str) -> torch.device:
    """ "auto": CUDA when a GPU is visible, else the CPU; "cuda" without a GPU is a FerError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FerError("train.device is cuda but no CUDA GPU is visible; use train.device=auto or cpu")
    return torch.device(name)
