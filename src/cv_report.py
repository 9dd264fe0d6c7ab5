"""Stage cv_report: the folds' spread, the pooled confusion matrix and the per-fold plot.

Reads the cv stage's outputs only, so it runs when they change. Writes CV_DETAILS (mean,
std, min, max and t-interval over folds of accuracy, macro-F1 and balanced accuracy; pooled
metrics and calibration; per-fold values), CV_METRICS (its headline for DVC to compare: folds,
mean accuracy and its 95% interval, mean macro-F1; `fold_stats.headline`), and
in PLOTS_DIR confusion.csv (every test prediction of every fold, for `dvc plots`), folds.csv
(fold, metric, value) and, with folds, their PNGs and the pooled reliability diagram
(reliability.png; the details' `calibration` holds its figures). With split.folds 0 the
details say `"folds": 0`, CV_METRICS is `{}`, the CSVs hold their header alone (DVC draws
nothing for them) and no picture is drawn.
"""

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from fer.cli import run
from fer.evaluation import calibration, fold_stats, plots
from fer.io import write_csv, write_json


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folds_json", type=Path, help="the cv stage's per-fold results")
    parser.add_argument("predictions", type=Path, help="the cv stage's test predictions")
    parser.add_argument("cv_metrics", type=Path, help="the headline, for DVC to compare")
    parser.add_argument("cv_details", type=Path, help="every figure")
    parser.add_argument("plots_dir", type=Path)
    args = parser.parse_args()
    folds = json.loads(args.folds_json.read_text())
    predictions = pd.read_csv(args.predictions)
    cv = fold_stats.summarize(folds["folds"], predictions, folds["classes"], folds["split"], folds["folds_digest"])
    write_json(cv, args.cv_details)
    write_json(fold_stats.headline(cv), args.cv_metrics)
    table = fold_stats.fold_table(cv) if cv["folds"] else pd.DataFrame(columns=["fold", "metric", "value"])
    shutil.rmtree(args.plots_dir, ignore_errors=True)  # no picture of an earlier run's folds stays behind
    write_csv(predictions[["actual", "predicted"]], args.plots_dir / "confusion.csv")
    write_csv(table, args.plots_dir / "folds.csv")
    if not cv["folds"]:
        print("cv_report: no cross-validation (split.folds is 0)")
        return
    plots.confusion_png(
        predictions,
        folds["classes"],
        args.plots_dir / "confusion.png",
        f"Pooled confusion matrix of {cv['folds']} folds",
    )
    plots.folds_png(table, args.plots_dir / "folds.png")
    plots.reliability_png(
        calibration.reliability_by_kind(predictions),
        {kind: cv["calibration"][kind]["ece"] for kind in calibration.CONFIDENCE},
        args.plots_dir / "reliability.png",
    )
    a = cv["accuracy"]
    print(
        f"cv_report: accuracy {a['mean']:.4f} +- {a['std']:.4f} over {cv['folds']} folds "
        f"(95% interval {a['ci95_low']:.4f}-{a['ci95_high']:.4f}, pooled {cv['pooled']['accuracy']:.4f}); "
        f"{args.cv_details}, {args.plots_dir}"
    )


if __name__ == "__main__":
    run(main)
