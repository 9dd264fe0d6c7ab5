"""Stage cv_report: the folds' spread (metrics/cv.json), the pooled confusion matrix and the per-fold plot.

Writes CV_METRICS (mean, std, min, max and t-interval over folds of accuracy, macro-F1 and
balanced accuracy; pooled metrics; per-fold values), and in PLOTS_DIR confusion.csv (every
test prediction of every fold, for `dvc plots`), folds.csv (fold, metric, value) and their
PNGs. With split.folds 0, cv.json says `"folds": 0` and the figures say there were no folds.
"""

import argparse
import json
from pathlib import Path

import pandas as pd

from fer import cvstats, plots
from fer.cli import run
from fer.io import write_csv, write_json


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folds_json", type=Path, help="the crossval stage's per-fold results")
    parser.add_argument("predictions", type=Path, help="the crossval stage's test predictions")
    parser.add_argument("meta", type=Path, help="the preprocess stage's meta.json (class order)")
    parser.add_argument("split_metrics", type=Path, help="the split stage's summary (the folds' protocol)")
    parser.add_argument("cv_metrics", type=Path)
    parser.add_argument("plots_dir", type=Path)
    args = parser.parse_args()
    classes = json.loads(args.meta.read_text())["classes"]
    folds = json.loads(args.folds_json.read_text())
    predictions = pd.read_csv(args.predictions)
    split = json.loads(args.split_metrics.read_text()).get("cv", {})
    cv = cvstats.summarize(folds["folds"], predictions, classes, split, folds["folds_digest"])
    write_json(cv, args.cv_metrics)
    table = cvstats.fold_table(cv) if cv["folds"] else pd.DataFrame(columns=["fold", "metric", "value"])
    write_csv(predictions[["actual", "predicted"]], args.plots_dir / "confusion.csv")
    write_csv(table, args.plots_dir / "folds.csv")
    plots.confusion_png(predictions, classes, args.plots_dir / "confusion.png",
                        f"Pooled confusion matrix of {cv['folds']} folds" if cv["folds"] else "No folds (split.folds is 0)")
    plots.folds_png(table, args.plots_dir / "folds.png")
    if cv["folds"]:
        a = cv["accuracy"]
        print(f"cv_report: accuracy {a['mean']:.4f} +- {a['std']:.4f} over {cv['folds']} folds "
              f"(95% interval {a['ci95_low']:.4f}-{a['ci95_high']:.4f}, pooled {cv['pooled']['accuracy']:.4f}); "
              f"{args.cv_metrics}, {args.plots_dir}")


if __name__ == "__main__":
    run(main)
