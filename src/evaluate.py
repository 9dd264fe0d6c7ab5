"""Stage evaluate: the best checkpoint on the test split.

Faces are scored as `evaluate.tta` says (flip: averaged with their mirror image), as the
exported model and fer-predict score them. Writes the metrics JSON (flat accuracy, macro_f1, balanced_accuracy, majority_baseline;
per-class and per-angle detail nested) and one `actual,predicted` row per test image.
"""

import argparse
from pathlib import Path

from fer import evaluate
from fer.cli import run
from fer.dataset import load_split, read_manifest
from fer.io import write_csv, write_json
from fer.model import load_checkpoint, predict
from fer.train import resolve_device


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("prepared_dir", type=Path)
    parser.add_argument("manifest", type=Path, help="the split stage's manifest.csv")
    parser.add_argument("metrics", type=Path)
    parser.add_argument("confusion", type=Path)
    args = parser.parse_args()
    device = resolve_device("auto")
    model, ckpt = load_checkpoint(args.checkpoint, device)
    manifest = read_manifest(args.manifest)
    images, meta = load_split(args.prepared_dir, manifest, "test")
    _, train_meta = load_split(args.prepared_dir, manifest, "train")
    y_pred = predict(model, images, ckpt["data_config"], device, tta=params.evaluate.tta).argmax(1).numpy()
    y_true, classes = meta["target"].to_numpy(), ckpt["classes"]
    result = evaluate.metrics(y_true, y_pred, classes, train_meta["target"], meta["angle"])
    write_json(result, args.metrics)
    write_csv(evaluate.confusion_rows(y_true, y_pred, classes), args.confusion)
    print(f"evaluate: test accuracy {result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}, "
          f"majority baseline {result['majority_baseline']:.4f} ({len(y_true)} images, tta {params.evaluate.tta})")


if __name__ == "__main__":
    run(main)
