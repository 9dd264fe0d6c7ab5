"""Cross-validation over the cached images: each fold trained and tested as the single split is.

Preprocess caches every image once; a fold is a choice of rows (data/split/folds.csv). Each
fold trains and is calibrated on its val images as the train stage does
(`fer.training.train.train_run`, `fer.training.calibrate.calibrate`) and is tested as the
evaluate stage tests (`fer.evaluation.scoring.score_cache`), so a fold's numbers mean what
metrics/metrics.json means. A finished fold's result is kept in the state folder until the
whole run ends: a killed run resumes at the first unfinished fold, and inside it at the
last completed epoch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from fer.data import cache
from fer.data.cache import SPLITS
from fer.evaluation.scoring import score_cache
from fer.io import write_json
from fer.params import Params
from fer.training.calibrate import calibrate
from fer.training.train import train_run


def cache_in_memory(prepared_dir: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Every cached image (N, C, H, W) read into memory, and its facts (`cache.load_cache` maps
    the file instead): every fold trains and tests on rows of it."""
    images, meta = cache.load_cache(prepared_dir)
    return np.asarray(images), meta


def fold_rows(folds: pd.DataFrame, meta: pd.DataFrame, fold: int) -> dict[str, np.ndarray]:
    """Positions in `meta` of fold `fold`'s train, val and test images (`folds`: the split
    stage's fold, path, split rows); images preprocess could not decode are left out."""
    rows = folds[folds["fold"] == fold]
    return {s: cache.split_rows(meta, rows, s) for s in SPLITS}


def fingerprint(params: Params, cache_meta: dict, meta: pd.DataFrame, rows: dict[str, np.ndarray]) -> str:
    """What a fold's result depends on: the train params, the cache and the fold's images."""
    what = {
        "params": params.train.model_dump(),
        "tta": params.evaluate.tta,
        "calibrate": params.evaluate.calibrate,
        "cache": cache_meta,
        "images": {s: meta["path"].iloc[idx].tolist() for s, idx in rows.items()},
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def run_fold(
    params: Params,
    images: np.ndarray,
    meta: pd.DataFrame,
    rows: dict[str, np.ndarray],
    fold: int,
    cache_meta: dict,
    state_dir: Path,
) -> dict:
    """Train and test one fold as the train and evaluate stages do (`train_run`, `score_cache`);
    returns its metrics, its test predictions and its training summary. The state folder
    holds the fold's resume point while it trains and its result once done; a result left
    by other params or other folds is not reused."""
    key = fingerprint(params, cache_meta, meta, rows)
    done = state_dir / f"fold-{fold}.json"
    if done.is_file() and (kept := json.loads(done.read_text())).get("fingerprint") == key:
        print(f"cv: fold {fold} was finished before; kept")
        return kept
    train_state = state_dir / f"fold-{fold}-train.pt"
    history, best, seconds = train_run(
        params,
        *((images[rows[s]], meta.iloc[rows[s]]) for s in ("train", "val")),
        cache_meta,
        state_path=train_state,
        fold=fold,
    )
    checkpoint = state_dir / f"fold-{fold}-best.pt"
    calibrate(best, images[rows["val"]], meta.iloc[rows["val"]], params.evaluate.calibrate, params.train.device).save(
        checkpoint
    )
    metrics, confusion = score_cache(
        checkpoint,
        images[rows["test"]],
        meta.iloc[rows["test"]],
        meta["target"].iloc[rows["train"]],
        params.evaluate.tta,
        params.train.device,
    )
    result = {
        "fingerprint": key,
        "fold": fold,
        "metrics": metrics,
        "predictions": confusion[["path", "actual", "predicted", "confidence", "confidence_uncalibrated"]].to_dict(
            "list"
        ),
        "best_epoch": best.epoch,
        "best_val_acc": best.val_acc,
        "epochs_run": len(history),
        "train_seconds": round(seconds, 1),
    }
    write_json(result, done)
    checkpoint.unlink()
    train_state.unlink(missing_ok=True)
    return result
