"""Cross-validation over the cached images: each fold trained and tested as the single split is.

Preprocess caches every image once; a fold is a choice of rows (data/split/folds.csv). Each
fold trains with `fer.train.fit` and is tested with the evaluate stage's own calls
(`load_checkpoint`, `predict`, `evaluate.metrics`), so a fold's numbers mean what
metrics/metrics.json means. A finished fold's result is kept in the state folder until the
whole run ends: a killed run resumes at the first unfinished fold, and inside it at the
last completed epoch.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fer import dataset, evaluate
from fer.io import write_json
from fer.model import load_checkpoint, predict, save_checkpoint
from fer.params import Params
from fer.split import SPLITS
from fer.train import fit, resolve_device


def load_cache(prepared_dir: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Every cached image (N, C, H, W) in memory and its facts."""
    images, meta = dataset.load_cache(prepared_dir)
    return np.asarray(images), meta


def fold_rows(folds: pd.DataFrame, meta: pd.DataFrame, fold: int) -> dict[str, np.ndarray]:
    """Positions in `meta` of fold `fold`'s train, val and test images (`folds`: the split
    stage's fold, path, split rows); images preprocess could not decode are left out."""
    rows = folds[folds["fold"] == fold]
    return {s: dataset.split_rows(meta, rows, s) for s in SPLITS}


def fingerprint(params: Params, cache_meta: dict, meta: pd.DataFrame, rows: dict[str, np.ndarray]) -> str:
    """What a fold's result depends on: the train params, the cache and the fold's images."""
    what = {"params": params.train.model_dump(), "tta": params.evaluate.tta, "cache": cache_meta,
            "images": {s: meta["path"].iloc[idx].tolist() for s, idx in rows.items()}}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def run_fold(params: Params, images: np.ndarray, meta: pd.DataFrame, rows: dict[str, np.ndarray], fold: int,
             cache_meta: dict, state_dir: Path) -> dict:
    """Train and test one fold; returns its metrics, its test predictions and its training
    summary. The state folder holds the fold's resume point while it trains and its result
    once done; a result left by other params or other folds is not reused."""
    key = fingerprint(params, cache_meta, meta, rows)
    done = state_dir / f"fold-{fold}.json"
    if done.is_file() and (kept := json.loads(done.read_text())).get("fingerprint") == key:
        print(f"crossval: fold {fold} was finished before; kept")
        return kept
    classes, target = cache_meta["classes"], meta["target"].to_numpy()
    start = time.perf_counter()
    history, best = fit(
        params.train, (images[rows["train"]], target[rows["train"]]), (images[rows["val"]], target[rows["val"]]),
        classes, extra={"preprocess": params.preprocess.model_dump(), "data": params.data.model_dump(), "fold": fold},
        state_path=state_dir / f"fold-{fold}-train.pt",
    )
    seconds = time.perf_counter() - start
    checkpoint = state_dir / f"fold-{fold}-best.pt"
    save_checkpoint(best, checkpoint)
    result = {"fingerprint": key, "fold": fold, **_test(checkpoint, images, meta, rows, params.evaluate.tta),
              "best_epoch": best["epoch"], "best_val_acc": best["val_acc"], "epochs_run": len(history),
              "train_seconds": round(seconds, 1)}
    write_json(result, done)
    checkpoint.unlink()
    (state_dir / f"fold-{fold}-train.pt").unlink(missing_ok=True)
    return result


def _test(checkpoint: Path, images: np.ndarray, meta: pd.DataFrame, rows: dict[str, np.ndarray],
          tta: str = "none") -> dict:
    """The evaluate stage's metrics of `checkpoint` on the fold's test images (scored as
    evaluate.tta says), and each prediction."""
    device = resolve_device("auto")
    model, ckpt = load_checkpoint(checkpoint, device)
    test = meta.iloc[rows["test"]]
    y_pred = predict(model, images[rows["test"]], ckpt["data_config"], device, tta=tta).argmax(1).numpy()
    y_true, classes = test["target"].to_numpy(), ckpt["classes"]
    metrics = evaluate.metrics(y_true, y_pred, classes, meta["target"].iloc[rows["train"]], test["angle"])
    names = np.asarray(classes)
    return {"metrics": metrics, "predictions": {"path": test["path"].tolist(), "actual": names[y_true].tolist(),
                                                "predicted": names[y_pred].tolist()}}
