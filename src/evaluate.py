"""Stage evaluate: the best checkpoint on the test split.

Faces are scored as `evaluate.tta` says (flip: averaged with their mirror image) with the
checkpoint's calibration, as the exported model and fer-predict score them, on `train.device`.
Writes METRICS, the headline DVC compares across runs (accuracy, macro_f1, ece, nll:
`metrics.HEADLINE`), and DETAILS, every figure (those, balanced_accuracy, majority_baseline,
test_images, brier; nested: per class, per angle, calibration before and after, selective prediction,
accuracy per group), and one `actual,predicted,path,confidence` row per test image; in
PLOTS_DIR, the reliability diagram's bins before and after calibration, the accuracy-coverage
curve and every group's accuracy.
"""

import argparse
from pathlib import Path

from fer.cli import run
from fer.data.cache import load_facts, load_split, read_manifest
from fer.evaluation import calibration, groups, metrics
from fer.evaluation.scoring import score_cache
from fer.io import write_csv, write_metrics


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("prepared_dir", type=Path)
    parser.add_argument("manifest", type=Path, help="the split stage's manifest.csv")
    parser.add_argument("metrics", type=Path, help="the headline figures, for DVC to compare")
    parser.add_argument("details", type=Path, help="every figure")
    parser.add_argument("confusion", type=Path)
    parser.add_argument("plots_dir", type=Path, help="reliability/, coverage.csv and groups.csv go here")
    args = parser.parse_args()
    manifest = read_manifest(args.manifest)
    images, facts = load_split(args.prepared_dir, manifest, "test")
    train_facts = load_facts(args.prepared_dir, manifest, "train")
    result, confusion = score_cache(
        args.checkpoint, images, facts, train_facts["target"], params.evaluate.tta, params.train.device
    )
    write_metrics(result, metrics.HEADLINE, args.metrics, args.details)
    write_csv(confusion, args.confusion)
    for kind, bins in calibration.reliability_by_kind(confusion).items():
        write_csv(bins, args.plots_dir / "reliability" / f"{kind}.csv")
    correct = confusion["actual"] == confusion["predicted"]
    write_csv(calibration.coverage_curve(confusion["confidence"], correct), args.plots_dir / "coverage.csv")
    write_csv(groups.table(correct, groups.attributes(facts)), args.plots_dir / "groups.csv")
    cal = result["calibration"]
    print(
        f"evaluate: test accuracy {result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}, "
        f"majority baseline {result['majority_baseline']:.4f} ({result['test_images']} images, "
        f"tta {params.evaluate.tta}); ECE {cal['uncalibrated']['ece']:.4f} -> {cal['calibrated']['ece']:.4f} "
        f"(temperature {cal['temperature']:.3f})"
    )


if __name__ == "__main__":
    run(main)
