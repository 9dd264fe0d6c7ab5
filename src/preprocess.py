"""Stage preprocess: decode every image once into uint8 arrays per split (see fer.preprocess)."""

import argparse
from pathlib import Path

import pandas as pd

from fer import preprocess
from fer.cli import run
from fer.io import write_csv, write_json


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("raw_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("metrics", type=Path)
    args = parser.parse_args()
    manifest = pd.read_csv(args.manifest, dtype=str)
    p = params.preprocess
    failed, stats = preprocess.build(manifest, args.raw_dir, args.out_dir, p.size, p.grayscale,
                                     face_margin=p.face_margin if p.face_crop else None, no_face=p.no_face)
    write_csv(failed, args.out_dir / "skipped.csv")
    undecodable = int((failed["reason"] != preprocess.NO_FACE).sum())
    metrics = {"decoded": len(manifest) - undecodable, "undecodable": undecodable, "images": stats}
    if p.face_crop:
        faces = pd.read_csv(args.out_dir / "faces.csv")
        metrics |= {"face_found": int(faces["face_found"].sum()), "no_face": int((~faces["face_found"]).sum()),
                    "no_face_skipped": len(failed) - undecodable}
    write_json(metrics, args.metrics)
    print(f"preprocess: {len(manifest) - len(failed)} images at {p.size}px in {args.out_dir}"
          + (f"; {undecodable} undecodable, listed in {args.out_dir / 'skipped.csv'}" if undecodable else ""))
    if p.face_crop and metrics["no_face"]:
        print(f"preprocess: no face found in {metrics['no_face']} image(s), "
              f"{'skipped' if p.no_face == 'skip' else 'kept whole'} (preprocess.no_face={p.no_face}); "
              f"listed in {args.out_dir / 'faces.csv'}")
    if warning := preprocess.mismatch(stats):
        print(f"warning: {warning} (per split in {args.metrics})")


if __name__ == "__main__":
    run(main)
