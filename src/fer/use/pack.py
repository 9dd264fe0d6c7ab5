"""Packing a trained run as the starter model that ships in `starter/` (`fer.starter`).

    python -m fer.use.pack models/best.pt --test-details metrics/details/evaluate.json \
        --split-details metrics/details/split.json --plots plots --crossdataset metrics/starter/*.json \
        --command "make starter FER2013=..."

The checkpoint keeps what prediction and fine-tuning read (no optimizer state) with its
weights as float16, and the ONNX export stores the same float16 values, so both files
together stay small enough for git and give the same probabilities. The model card is the
export stage's plus where the model came from, its terms and its scores on other datasets.
The files' SHA-256 hashes go to `SHA256SUMS`, which the tests check.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from fer import starter
from fer.checkpoint import Checkpoint
from fer.cli import user_errors
from fer.io import write_text

TERMS = {
    "fer2013": "FER2013 was released for the ICML 2013 workshop challenge *Challenges in Representation Learning: "
    "Facial Expression Recognition* (Goodfellow et al., 2013) for research; its faces were collected "
    "from the web by image search and their copyright stays with their owners. Check those terms "
    "before any commercial use: this model inherits them.",
    "ferplus": "FER+ (Barsoum et al., 2016) relabels FER2013's faces; its labels are under the MIT licence, the "
    "faces keep FER2013's terms (research use; copyright with their owners). This model inherits them.",
}


def shrink(ckpt: Checkpoint) -> Checkpoint:
    """`ckpt` without the optimizer state (fine-tuning and prediction never read it), its
    floating-point weights as float16: half the bytes, and a 48 px face's probabilities move
    by under 1e-3."""
    weights = {k: v.half() if v.is_floating_point() else v for k, v in ckpt.weights.items()}
    return dataclasses.replace(ckpt, weights=weights, optimizer=None)


def pack(
    checkpoint: str | Path,
    out: str | Path,
    test_details: dict,
    split: dict,
    crossdataset: list[dict],
    command: str,
    plots: str | Path | None = None,
    tta: str = "flip",
) -> dict[str, str]:
    """Write the starter's checkpoint, ONNX file, model card and SHA256SUMS to `out`; returns
    the hashes. test_details, split: the evaluate and split stages' details (every figure, as the
    export stage's model card reads them); crossdataset: `fer-crossdataset`'s results on other
    datasets (its --out files, or the crossdataset stage's details); tta: as the run's
    evaluate.tta (the ONNX graph does it)."""
    from fer.use.export import export_onnx, model_card, parity

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = shrink(Checkpoint.load(checkpoint))
    ckpt.starter = {"command": command, "commit": _commit()}
    ckpt.save(out / starter.CHECKPOINT.name)
    model = ckpt.build()
    export_onnx(model, ckpt, out / starter.ONNX.name, tta=tta, half=True)
    faces = np.random.default_rng(0).integers(0, 256, (64, *ckpt.data_config["input_size"])).astype(np.uint8)
    max_diff = parity(model, ckpt, out / starter.ONNX.name, faces, tta)
    for name in ("confusion.png", "reliability.png"):
        if plots and (Path(plots) / name).is_file():
            shutil.copyfile(Path(plots) / name, out / name)
    card = model_card(ckpt, test_details, split, max_diff, starter.ONNX.name, tta, plots=".")
    write_text(provenance(ckpt, crossdataset) + card.split("\n", 1)[1], out / starter.CARD.name)
    hashes = {p.name: starter.sha256(p) for p in sorted(out.iterdir()) if p.name != starter.HASHES.name}
    write_text("".join(f"{digest}  {name}\n" for name, digest in hashes.items()), out / starter.HASHES.name)
    return hashes


def _commit() -> str:
    """The commit the packing ran at (+ "-dirty" with uncommitted changes), or "" outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head.stdout.strip() + ("-dirty" if dirty else "")


def provenance(ckpt: Checkpoint, crossdataset: list[dict]) -> str:
    """The card's head: what the starter is, how it was made, its terms and its scores elsewhere."""
    data, made = ckpt.data, ckpt.starter
    return f"""# Model card: the starter model (`starter/`)

A facial expression model for real faces that ships with the project, so that `fer-predict`
and `fer-video` answer on a photo before any training, and small datasets fine-tune from it
(`train.init_from=starter`).

## How it was made
- Command: `{made["command"]}`, at commit `{made["commit"] or "unknown"}`.
- Weights stored as float16 in `{starter.CHECKPOINT.name}` and `{starter.ONNX.name}` (computed in float32);
  their SHA-256 hashes are in `{starter.HASHES.name}` (`sha256sum -c {starter.HASHES.name}`).
- Training data: `{data.get("source", "?")}` (format `{data.get("format", "?")}`).
  {TERMS.get(data.get("format"), "See the training data for its terms of use.")}
{other_datasets(crossdataset)}
## Known failure cases
- Faces turned far aside (profiles) are read worse, and the detector misses some of them.
- Disgust and fear are the least reliable classes (see the per-class table); neutral and
  sad are often confused.
- It has never seen contempt: CK+'s contempt faces are given another class.
- Small, blurred or heavily occluded faces; children and the elderly are rare in FER2013.
"""


def other_datasets(results: list[dict]) -> str:
    """The card's table of scores on datasets the starter never trained on."""
    if not results:
        return ""
    rows = []
    for r in results:
        ece = f"{r['ece']:.3f}" if "ece" in r else ""
        worst = "; ".join(
            f"{a}: worst {g['worst']} {g['worst_accuracy']:.1%}, best {g['best']} {g['best_accuracy']:.1%}"
            for a, g in r.get("groups", {}).items()
        )
        rows.append(
            f"| {Path(str(r['dataset'])).name} ({r['protocol']}{'; ' + r['faces'] if 'faces' in r else ''}) | "
            f"{r['test_images']} | {r['accuracy']:.1%} | "
            f"{r['macro_f1']:.3f} | {ece} | {r['no_face']} | {worst} |"
        )
    return (
        "\n## On other datasets (never trained on; `fer-crossdataset`, fer-predict's path)\n"
        "| set | images | accuracy | macro-F1 | ECE | no face found | per group |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer.use.pack", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="the run's models/best.pt")
    parser.add_argument("--out", type=Path, default=starter.DIR, help="(default: the repository's starter/)")
    parser.add_argument("--test-details", type=Path, default=Path("metrics/details/evaluate.json"))
    parser.add_argument("--split-details", type=Path, default=Path("metrics/details/split.json"))
    parser.add_argument("--plots", type=Path, default=Path("plots"))
    parser.add_argument(
        "--crossdataset", type=Path, nargs="*", default=[], help="fer-crossdataset --out files (every figure)"
    )
    parser.add_argument("--tta", default="flip", choices=["flip", "none"], help="as the run's evaluate.tta")
    parser.add_argument("--command", required=True, help="the command that trained the checkpoint, for the card")
    args = parser.parse_args(argv)
    with user_errors(FileNotFoundError, json.JSONDecodeError):
        hashes = pack(
            args.checkpoint,
            args.out,
            json.loads(args.test_details.read_text()),
            json.loads(args.split_details.read_text()),
            [json.loads(p.read_text()) for p in args.crossdataset],
            args.command,
            args.plots,
            args.tta,
        )
    size = sum((args.out / name).stat().st_size for name in hashes)
    print(f"starter: {len(hashes)} files in {args.out} ({size / 1e6:.1f} MB), hashes in {starter.HASHES.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
