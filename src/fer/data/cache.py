"""Where the preprocess stage's cache lives and how to read it (numpy and pandas only).

The cache holds every usable image once (`images.npy`, N x C x H x W uint8, and its facts in
`images.csv`), whatever the split: a split, or a cross-validation fold, is a choice of rows
by path. Changing `split.*` therefore never decodes an image again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer import FerError

SPLITS = ("train", "val", "test")  # the split stage's names, which the manifest's `split` column holds


def cache_files(prepared_dir: str | Path) -> tuple[Path, Path]:
    """Where the cached images (.npy) and their facts (.csv) live."""
    prepared_dir = Path(prepared_dir)
    return prepared_dir / "images.npy", prepared_dir / "images.csv"


def load_cache(prepared_dir: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Every cached (N, C, H, W) uint8 image (memory-mapped) and its facts."""
    npy, csv = cache_files(prepared_dir)
    return np.load(npy, mmap_mode="r"), _read_facts(csv)


def _read_facts(csv: Path) -> pd.DataFrame:
    facts = pd.read_csv(csv, dtype={"path": str, "subject": str, "session": str, "angle": str, "votes": str})
    if "votes" in facts:
        facts["votes"] = facts["votes"].fillna("")
    return facts


def split_rows(meta: pd.DataFrame, manifest: pd.DataFrame, split: str) -> np.ndarray:
    """Positions in the cache's `meta` of the images `manifest` (path, split) puts in `split`,
    in cache order. Images the cache lacks (left out by preprocess) are left out."""
    chosen = set(manifest.loc[manifest["split"] == split, "path"])
    return np.flatnonzero(meta["path"].isin(chosen).to_numpy())


def read_manifest(path: str | Path) -> pd.DataFrame:
    """The split stage's manifest.csv: one row per image with its `path` and `split`."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def load_split(
    prepared_dir: str | Path, manifest: str | Path | pd.DataFrame, split: str
) -> tuple[np.ndarray, pd.DataFrame]:
    """The cached images (in memory) and facts of `split` ("train", "val" or "test") as the
    split stage's `manifest` (a path or its table) assigns it."""
    if not isinstance(manifest, pd.DataFrame):
        manifest = read_manifest(manifest)
    images, meta = load_cache(prepared_dir)
    rows = split_rows(meta, manifest, split)
    return np.asarray(images[rows]), _known(meta.iloc[rows], manifest)


def load_facts(prepared_dir: str | Path, manifest: str | Path | pd.DataFrame, split: str) -> pd.DataFrame:
    """The facts of `split`'s cached images, as `load_split` gives them, without reading any pixels."""
    if not isinstance(manifest, pd.DataFrame):
        manifest = read_manifest(manifest)
    meta = _read_facts(cache_files(prepared_dir)[1])
    return _known(meta.iloc[split_rows(meta, manifest, split)], manifest)


def _known(facts: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """`facts` with what else the manifest knows of each image (e.g. KDEF's sex), in their order."""
    extra = [c for c in manifest.columns if c not in facts.columns and c != "split"]
    return facts.reset_index(drop=True).merge(manifest[["path", *extra]].drop_duplicates("path"), on="path", how="left")


def targets(facts: pd.DataFrame, classes: list[str], distribution: bool = False) -> np.ndarray:
    """What training aims at for each cached image: its class index (N,), or with
    `distribution` (data.ferplus_labels) the shares of its annotators' votes over `classes`
    (N, C float32; votes for classes the run leaves out are dropped)."""
    if not distribution:
        return facts["target"].to_numpy()
    if "votes" not in facts or (facts["votes"] == "").any():
        raise FerError("data.ferplus_labels=distribution needs each image's votes, which data.format=ferplus reads")
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(facts), len(classes)), dtype=np.float32)
    for row, text in enumerate(facts["votes"]):
        for name, n in (pair.split("=") for pair in text.split()):
            if name in index:
                counts[row, index[name]] = float(n)
    return counts / counts.sum(1, keepdims=True)
