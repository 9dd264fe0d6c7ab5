"""Stage preprocess: decode every image of the split stage's images.csv once into one uint8 cache
(see fer.data.preprocess).

The cache does not depend on the split: a change of split.* chooses other rows from it.
DETAILS counts what was decoded and left out, and holds the images' contrast and sharpness and
how their faces are framed: figures to read, not to compare across runs, so none is a DVC metric.
"""

import argparse
import json
from pathlib import Path

import pandas as pd

from fer.cli import run
from fer.data import preprocess
from fer.io import write_csv, write_json


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "images", type=Path, help="the split stage's images.csv: every usable image, whatever the split"
    )
    parser.add_argument("raw_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("details", type=Path)
    args = parser.parse_args()
    images = pd.read_csv(args.images, dtype=str, keep_default_na=False)
    p = params.preprocess
    failed, stats = preprocess.build(
        images,
        args.raw_dir,
        args.out_dir,
        p.size,
        p.grayscale,
        face_margin=p.face_margin if p.face_crop else None,
        no_face=p.no_face,
        align=p.align,
    )
    write_csv(failed, args.out_dir / "skipped.csv")
    undecodable = int(failed["reason"].str.startswith("cannot decode").sum())
    no_picture = int(failed["reason"].str.startswith("no picture").sum())
    summary = {
        "decoded": len(images) - undecodable,
        "undecodable": undecodable,
        "no_picture": no_picture,
        "images": stats,
    }
    if p.face_crop:
        faces = pd.read_csv(args.out_dir / "faces.csv")
        summary |= {
            "face_found": int(faces["face_found"].sum()),
            "no_face": int((~faces["face_found"]).sum()),
            "no_face_skipped": int((failed["reason"] == preprocess.NO_FACE).sum()),
        }
    meta = json.loads((args.out_dir / "meta.json").read_text())
    if "framing" in meta:  # whole images: how their faces are framed, for predict to frame photos alike
        summary["framing"] = meta["framing"]
    write_json(summary, args.details)
    report(len(images), failed, summary, meta, stats, p, args.out_dir, args.details)


def report(
    images: int, failed: pd.DataFrame, summary: dict, meta: dict, stats: dict, p, out_dir: Path, details: Path
) -> None:
    """What preprocess did and left out, and what is odd about the images, for the log."""
    undecodable = summary["undecodable"]
    no_picture = summary["no_picture"]
    print(
        f"preprocess: {images - len(failed)} images at {p.size}px in {out_dir}"
        + (f"; {undecodable} undecodable, listed in {out_dir / 'skipped.csv'}" if undecodable else "")
    )
    if no_picture:
        shown = ", ".join(failed.loc[failed["reason"].str.startswith("no picture"), "path"][:10])
        print(
            f"preprocess: {no_picture} file(s) hold no picture (near-constant pixels), left out and listed in "
            f"{out_dir / 'skipped.csv'}: {shown}{', ...' if no_picture > 10 else ''}"
        )
    if p.face_crop and summary["no_face"]:
        print(
            f"preprocess: no face found in {summary['no_face']} image(s), "
            f"{'skipped' if p.no_face == 'skip' else 'kept whole'} (preprocess.no_face={p.no_face}); "
            f"listed in {out_dir / 'faces.csv'}"
        )
    if not p.face_crop and "framing" not in meta:
        print(
            "preprocess: no faces found in the images to measure how they are framed; fer-predict will crop "
            "each face it finds with the default margin (set preprocess.face_crop=true to train on such crops)"
        )
    if warning := preprocess.mismatch(stats):
        print(f"warning: {warning} (per official split in {details})")


if __name__ == "__main__":
    run(main)
