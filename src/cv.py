"""Stage cv: train and test every fold of data/split/folds.csv (split.folds; nothing when 0).

It runs when the cv_plan stage's plan changes, and only then: the plan holds what the folds
depend on (never changing while split.folds is 0). Outputs: PREDICTIONS (fold, path, actual,
predicted: every test image of every fold) and FOLDS_JSON (the folds' digest, the classes,
the split's summary of the folds and, per fold, the evaluate stage's metrics and the
training summary). STATE_DIR holds the fold in progress (resumed at the last epoch) and the
folds already done (kept, not re-trained) while the run is unfinished, and is removed at the end.
"""

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from fer import FerError
from fer.cli import run
from fer.io import write_csv, write_json


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("plan", type=Path, help="the cv_plan stage's plan")
    parser.add_argument("prepared_dir", type=Path)
    parser.add_argument("folds", type=Path, help="the split stage's folds.csv")
    parser.add_argument("predictions", type=Path)
    parser.add_argument("folds_json", type=Path)
    parser.add_argument("state_dir", type=Path)
    args = parser.parse_args()
    plan = json.loads(args.plan.read_text())
    results = []
    if plan["folds"]:  # torch and timm are loaded only when there are folds to train
        results = run_folds(params, plan, args)
    predictions = pd.DataFrame(
        [(r["fold"], *row) for r in results for row in zip(*r["predictions"].values())],
        columns=["fold", "path", "actual", "predicted", "confidence", "confidence_uncalibrated"],
    )
    write_csv(predictions, args.predictions)
    write_json(
        {
            "folds_digest": plan.get("folds_digest", ""),
            "split": plan.get("split", {}),
            "classes": json.loads((args.prepared_dir / "meta.json").read_text())["classes"] if results else [],
            "folds": [{k: v for k, v in r.items() if k not in ("predictions", "fingerprint")} for r in results],
        },
        args.folds_json,
    )
    shutil.rmtree(args.state_dir, ignore_errors=True)  # finished: nothing left to resume
    if results:
        accuracy = [r["metrics"]["accuracy"] for r in results]
        print(f"cv: {len(results)} folds, test accuracy " + " ".join(f"{a:.3f}" for a in accuracy))


def run_folds(params, plan: dict, args) -> list[dict]:
    """Every fold trained and tested (`fer.evaluation.folds.run_fold`), in order."""
    from fer.evaluation import folds as cv

    if plan["params"] != {s: getattr(params, s).model_dump(mode="json") for s in plan["params"]}:
        raise FerError(
            f"params.yaml changed after {args.plan} was written: run `dvc repro` (or `dvc exp run`), "
            "which writes the plan first"
        )
    folds = pd.read_csv(args.folds, dtype={"path": str, "split": str})
    images, meta = cv.cache_in_memory(args.prepared_dir)
    cache_meta = json.loads((args.prepared_dir / "meta.json").read_text())
    args.state_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for fold in sorted(folds["fold"].unique()):
        rows = cv.fold_rows(folds, meta, fold)
        print(f"cv: fold {fold} (of {folds['fold'].nunique()}): " + ", ".join(f"{s} {len(i)}" for s, i in rows.items()))
        results.append(cv.run_fold(params, images, meta, rows, int(fold), cache_meta, args.state_dir))
    return results


if __name__ == "__main__":
    run(main)
