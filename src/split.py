"""Stage split: read every file name, assign train/val/test, write the manifest.

Outputs (in OUT_DIR): manifest.csv (one row per image: path, split, label, subject,
session, sex, angle) and skipped.csv (every file not used, with the reason); the summary
(protocol, sizes, subject overlap, skipped count) goes to METRICS.
"""

import argparse
from pathlib import Path

from fer import FerError, kdef
from fer.cli import run
from fer.io import write_csv, write_json
from fer.split import assign, summary


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("raw_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("metrics", type=Path)
    args = parser.parse_args()
    images, skipped = kdef.scan(args.raw_dir)
    if images.empty:
        raise FerError(f"no KDEF images found in {args.raw_dir} ({len(skipped)} other files; see why below)\n"
                       + skipped.head(10).to_string(index=False))
    p = params.split
    images["split"] = assign(images, p.val, p.test, p.seed, p.group_by)
    write_csv(images, args.out_dir / "manifest.csv")
    write_csv(skipped, args.out_dir / "skipped.csv")
    stats = {**summary(images, images["split"], p.group_by), "images": len(images), "skipped": len(skipped)}
    write_json(stats, args.metrics)
    print("split: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    if len(skipped):
        print(f"split: {len(skipped)} files skipped, listed with reasons in {args.out_dir / 'skipped.csv'}")


if __name__ == "__main__":
    run(main)
