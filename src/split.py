"""Stage split: read the raw dataset (data.format), assign train/val/test, write the manifest.

Outputs (in OUT_DIR): manifest.csv (one row per image: path, split, label, subject,
session, sex, angle, official, raw_label), skipped.csv (every file not used, with the reason) and
duplicates.csv (repeated images; dropped unless the dataset's own split keeps them); the
summary (protocol, sizes, subject overlap, skipped and repeated counts, and `class_map`: each
label as the dataset writes it -> the class it was read as) goes to METRICS.
"""

import argparse
from pathlib import Path

import pandas as pd

from fer import FerError, formats
from fer.cli import run
from fer.io import write_csv, write_json
from fer.split import assign, drop_repeats, locate_repeats, summary


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("raw_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("metrics", type=Path)
    args = parser.parse_args()
    images, skipped = formats.scan(args.raw_dir, params.data)
    if images.empty:
        raise FerError(f"no {params.data.format} images found in {args.raw_dir} ({len(skipped)} other files; "
                       "check data.format)\n" + skipped.head(10).to_string(index=False))
    p = params.split
    images, repeats = drop_repeats(images)
    skipped = pd.concat([skipped, repeats.loc[repeats["dropped"], ["path", "reason"]]], ignore_index=True)
    images["split"], protocol = assign(images, p.val, p.test, p.seed, p.group_by)
    repeats = locate_repeats(repeats, images)
    write_csv(images, args.out_dir / "manifest.csv")
    write_csv(skipped, args.out_dir / "skipped.csv")
    write_csv(repeats, args.out_dir / "duplicates.csv")
    stats = {**summary(images, images["split"], protocol, repeats), "images": len(images), "skipped": len(skipped)}
    mapping = formats.label_mapping(images)
    write_json({**stats, "class_map": mapping}, args.metrics)
    print("split: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    print("split: classes read as " + ", ".join(f"{k!r} -> {v}" for k, v in mapping.items()))
    if len(skipped):
        print(f"split: {len(skipped)} files skipped, listed with reasons in {args.out_dir / 'skipped.csv'}")


if __name__ == "__main__":
    run(main)
