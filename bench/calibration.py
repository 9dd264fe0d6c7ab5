"""Calibration of a trained checkpoint on its run's test split, before and after temperature scaling.

    python bench/calibration.py models/best.pt data/prepared data/split/manifest.csv --out calibrated.pt

Fits the temperatures on the val split exactly as the train stage does
(`fer.training.calibrate.calibrate`, on a copy: the checkpoint given is left as it is) and
scores the test split as the evaluate stage does (`fer.evaluation.scoring.score_cache`), once
per test-time augmentation. Prints accuracy, ECE, NLL and Brier score before and after, and
the selective-prediction points. For checkpoints trained before calibration was part of
the train stage; `--out` keeps the calibrated copy (for fer-predict or fer-crossdataset).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from fer.checkpoint import Checkpoint
from fer.data.cache import load_facts, load_split, read_manifest
from fer.evaluation.scoring import score_cache
from fer.training.calibrate import TTAS, calibrate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("prepared_dir", type=Path)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, help="keep the calibrated copy of the checkpoint here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    manifest = read_manifest(args.manifest)
    val, test = (load_split(args.prepared_dir, manifest, s) for s in ("val", "test"))
    train_targets = load_facts(args.prepared_dir, manifest, "train")["target"]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "calibrated.pt"
        calibrate(Checkpoint.load(args.checkpoint), *val, "temperature", args.device).save(copy)
        figures = {tta: score_cache(copy, *test, train_targets, tta, args.device)[0] for tta in TTAS}
        if args.out:
            shutil.copyfile(copy, args.out)
    print(f"{args.checkpoint}: val {len(val[1])} images (fits T), test {len(test[1])} images")
    print(
        "tta   T      accuracy before -> after  ECE before -> after  NLL before -> after  Brier before -> after  "
        "acc@90%  acc@80%"
    )
    for tta, m in figures.items():
        c, s = m["calibration"], m["selective"]["at_coverage"]
        before, after = c["uncalibrated"], c["calibrated"]
        print(
            f"{tta:5} {c['temperature']:.3f}  {before['accuracy']:.4f} -> {after['accuracy']:.4f}         "
            f"{before['ece']:.4f} -> {after['ece']:.4f}      "
            f"{before['nll']:.4f} -> {after['nll']:.4f}      {before['brier']:.4f} -> {after['brier']:.4f}        "
            f"{s['90%']['accuracy']:.4f}   {s['80%']['accuracy']:.4f}"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
