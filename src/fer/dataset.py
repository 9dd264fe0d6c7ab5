"""Where the preprocess stage's cache lives and how to read it (numpy and pandas only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def split_files(prepared_dir: str | Path, split: str) -> tuple[Path, Path]:
    """Where a split's images (.npy) and facts (.csv) live in the cache."""
    prepared_dir = Path(prepared_dir)
    return prepared_dir / f"{split}.npy", prepared_dir / f"{split}.csv"


def load_split(prepared_dir: str | Path, split: str) -> tuple[np.ndarray, pd.DataFrame]:
    """The cached (N, C, H, W) uint8 images (memory-mapped) and their facts for `split`."""
    npy, csv = split_files(prepared_dir, split)
    images = np.load(npy, mmap_mode="r")
    meta = pd.read_csv(csv, dtype={"subject": str, "session": str, "angle": str})
    return images, meta
