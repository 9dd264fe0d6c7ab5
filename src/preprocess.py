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
    failed, stats = preprocess.build(manifest, args.raw_dir, args.out_dir, p.size, p.grayscale)
    write_csv(failed, args.out_dir / "skipped.csv")
    write_json({"decoded": len(manifest) - len(failed), "undecodable": len(failed), "images": stats}, args.metrics)
    print(f"preprocess: {len(manifest) - len(failed)} images at {p.size}px in {args.out_dir}"
          + (f"; {len(failed)} undecodable, listed in {args.out_dir / 'skipped.csv'}" if len(failed) else ""))
    if warning := preprocess.mismatch(stats):
        print(f"warning: {warning} (per split in {args.metrics})")


if __name__ == "__main__":
    run(main)
