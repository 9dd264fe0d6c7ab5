"""Stage export: the best checkpoint as ONNX, checked against PyTorch on test images, and a model card.

Fails if onnxruntime's probabilities differ from PyTorch's by more than 1e-4 on the test split.
"""

import argparse
import json
from pathlib import Path

from fer import FerError
from fer.checkpoint import load_model
from fer.cli import run
from fer.data.cache import load_split
from fer.io import write_json, write_text
from fer.use.export import export_onnx, model_card, parity

TOLERANCE = 1e-4


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("prepared_dir", type=Path)
    parser.add_argument("manifest", type=Path, help="the split stage's manifest.csv")
    parser.add_argument("test_details", type=Path, help="the evaluate stage's details: every test figure")
    parser.add_argument("split_details", type=Path, help="the split stage's details: protocol, sizes, overlap")
    parser.add_argument("onnx", type=Path)
    parser.add_argument("card", type=Path)
    parser.add_argument("details", type=Path, help="how far ONNX is from PyTorch, and its size")
    args = parser.parse_args()
    model, ckpt = load_model(args.checkpoint)
    tta = params.evaluate.tta
    export_onnx(model, ckpt, args.onnx, tta=tta)
    images, _ = load_split(args.prepared_dir, args.manifest, "test")
    max_diff = parity(model, ckpt, args.onnx, images, tta)
    if max_diff > TOLERANCE:
        raise FerError(f"ONNX and PyTorch disagree on the test split by {max_diff:.2e} (> {TOLERANCE:g})")
    metrics = json.loads(args.test_details.read_text())
    split = json.loads(args.split_details.read_text())
    write_text(model_card(ckpt, metrics, split, max_diff, args.onnx.name, tta), args.card)
    write_json({"onnx_max_abs_diff": max_diff, "onnx_bytes": args.onnx.stat().st_size}, args.details)
    print(
        f"export: {args.onnx} ({args.onnx.stat().st_size / 1e6:.1f} MB), max |ONNX - PyTorch| = {max_diff:.2e} "
        f"on {len(images)} test images; model card {args.card}"
    )


if __name__ == "__main__":
    run(main)
