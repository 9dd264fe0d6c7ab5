"""Stage plots: PNG confusion matrix, accuracy and loss curves, reliability diagram and
accuracy-coverage curve (DVC renders their data too)."""

import argparse
import json
from pathlib import Path

import pandas as pd

from fer.cli import run
from fer.evaluation import plots


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("live_dir", type=Path, help="the train stage's dvclive folder")
    parser.add_argument("confusion", type=Path)
    parser.add_argument("meta", type=Path, help="the preprocess stage's meta.json (class order)")
    parser.add_argument("reliability", type=Path, help="the evaluate stage's reliability bins (a CSV per calibration)")
    parser.add_argument("coverage", type=Path, help="the evaluate stage's accuracy-coverage curve")
    parser.add_argument("details", type=Path, help="the evaluate stage's details (the ECE of each reliability curve)")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    classes = json.loads(args.meta.read_text())["classes"]
    history = plots.live_history(args.live_dir)
    plots.confusion_png(pd.read_csv(args.confusion), classes, args.out_dir / "confusion.png")
    plots.curve_png(history, "acc", args.out_dir / "accuracy.png")
    plots.curve_png(history, "loss", args.out_dir / "loss.png")
    measured = json.loads(args.details.read_text())["calibration"]
    plots.reliability_png(
        {kind: pd.read_csv(args.reliability / f"{kind}.csv") for kind in ("uncalibrated", "calibrated")},
        {kind: measured[kind]["ece"] for kind in ("uncalibrated", "calibrated")},
        args.out_dir / "reliability.png",
    )
    plots.coverage_png(pd.read_csv(args.coverage), args.out_dir / "coverage.png")
    names = ("confusion.png", "accuracy.png", "loss.png", "reliability.png", "coverage.png")
    print(f"plots: {', '.join(str(args.out_dir / n) for n in names)}")


if __name__ == "__main__":
    run(main)
