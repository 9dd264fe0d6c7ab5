"""Stage crossval: train and test every fold of data/split/folds.csv (split.folds; nothing when 0).

Outputs: PREDICTIONS (fold, path, actual, predicted: every test image of every fold) and
FOLDS_JSON (the folds' digest and, per fold, the evaluate stage's metrics and the training
summary). STATE_DIR holds the fold in progress (resumed at the last epoch) and the folds
already done (kept, not re-trained) while the run is unfinished, and is removed at the end.
"""

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd

from fer.cli import run
from fer.io import write_csv, write_json


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("prepared_dir", type=Path)
    parser.add_argument("folds", type=Path, help="the split stage's folds.csv")
    parser.add_argument("predictions", type=Path)
    parser.add_argument("folds_json", type=Path)
    parser.add_argument("state_dir", type=Path)
    args = parser.parse_args()
    folds = pd.read_csv(args.folds, dtype={"path": str, "split": str})
    results = []
    if len(folds):  # torch and timm are loaded only when there are folds to train
        from fer import crossval

        images, meta = crossval.load_cache(args.prepared_dir)
        cache_meta = json.loads((args.prepared_dir / "meta.json").read_text())
        args.state_dir.mkdir(parents=True, exist_ok=True)
        for fold in sorted(folds["fold"].unique()):
            rows = crossval.fold_rows(folds, meta, fold)
            print(f"crossval: fold {fold} (of {folds['fold'].nunique()}): "
                  + ", ".join(f"{s} {len(i)}" for s, i in rows.items()))
            results.append(crossval.run_fold(params, images, meta, rows, int(fold), cache_meta, args.state_dir))
    predictions = pd.DataFrame(
        [(r["fold"], *row) for r in results for row in zip(*r["predictions"].values())],
        columns=["fold", "path", "actual", "predicted"])
    write_csv(predictions, args.predictions)
    digest = hashlib.sha256(args.folds.read_bytes()).hexdigest()[:16]  # short: dvc exp show prints it
    write_json({"folds_digest": digest, "folds": [{k: v for k, v in r.items() if k not in ("predictions", "fingerprint")}
                                                  for r in results]}, args.folds_json)
    shutil.rmtree(args.state_dir, ignore_errors=True)  # finished: nothing left to resume
    if results:
        accuracy = [r["metrics"]["accuracy"] for r in results]
        print(f"crossval: {len(results)} folds, test accuracy " + " ".join(f"{a:.3f}" for a in accuracy))


if __name__ == "__main__":
    run(main)
