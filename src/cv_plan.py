"""Stage cv_plan: what cross-validation depends on, in one small file the cv stage depends on alone.

With split.folds 0 the plan is `{"folds": 0}` whatever the data and params, so a change of
data, preprocess, train or evaluate params re-runs this stage (a second) and neither `cv`
nor `cv_report`. With folds, the plan holds everything a fold's result depends on: the
folds (a digest of folds.csv), the cache (digests of its files), the params of the data,
preprocess, train and evaluate sections, and the split stage's summary of the folds.
"""

import argparse
import hashlib
import json
from pathlib import Path

import pandas as pd

from fer.cli import run
from fer.io import write_json


def digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:16]  # short: dvc exp show prints it


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folds", type=Path, help="the split stage's folds.csv")
    parser.add_argument("prepared_dir", type=Path, help="the preprocess stage's cache")
    parser.add_argument("split_details", type=Path, help="the split stage's details (the folds' protocol)")
    parser.add_argument("plan", type=Path)
    args = parser.parse_args()
    folds = pd.read_csv(args.folds, usecols=["fold"])["fold"].nunique()
    plan = {"folds": folds}
    if folds:
        plan |= {
            "folds_digest": digest(args.folds),
            "cache": {f.name: digest(f) for f in sorted(args.prepared_dir.iterdir()) if f.is_file()},
            "params": {
                s: getattr(params, s).model_dump(mode="json") for s in ("data", "preprocess", "train", "evaluate")
            },
            "split": json.loads(args.split_details.read_text()).get("cv", {}),
        }
    write_json(plan, args.plan)
    print(f"cv_plan: {folds} folds" if folds else "cv_plan: no cross-validation (split.folds is 0)")


if __name__ == "__main__":
    run(main)
