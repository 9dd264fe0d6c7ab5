"""Stage split: read the raw dataset (data.format), assign train/val/test, write the manifest.

Outputs (in OUT_DIR): manifest.csv (one row per image: path, split, label, subject,
session, sex, angle, official) and skipped.csv (every file not used, with the reason); the summary
(protocol, sizes, subject overlap, skipped count) goes to METRICS.
"""

import argparse
from pathlib import Path

import pandas as pd

from fer import FerError, formats
from fer.cli import run
from fer.io import write_csv, write_json
from fer.split import assign, duplicates, summary


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
    repeats = duplicates(images)
    keep_official = (images["official"] != "").all()
    if not keep_official:
        # A second copy could land in another split than the first: use each image once.
        images = images[~images["path"].isin(repeats["path"])].reset_index(drop=True)
        reasons = pd.DataFrame({"path": repeats["path"], "reason": "same content as " + repeats["same_as"]})
        skipped = pd.concat([skipped, reasons], ignore_index=True)
    images["split"], protocol = assign(images, p.val, p.test, p.seed, p.group_by)
    write_csv(images, args.out_dir / "manifest.csv")
    write_csv(skipped, args.out_dir / "skipped.csv")
    stats = {**summary(images, images["split"], protocol), "images": len(images), "skipped": len(skipped),
             "duplicates": len(repeats)}
    if keep_official:
        # The dataset's own split is the protocol others report; keep it, but say where it repeats itself.
        where = images.set_index("path")["split"]
        repeats = repeats.assign(split=repeats["path"].map(where), same_as_split=repeats["same_as"].map(where))
        stats["duplicates_across_splits"] = int((repeats["split"] != repeats["same_as_split"]).sum())
        write_csv(repeats, args.out_dir / "duplicates.csv")
        print(f"split: {len(repeats)} repeated images kept as the official split has them, "
              f"{stats['duplicates_across_splits']} across splits; listed in {args.out_dir / 'duplicates.csv'}")
    write_json(stats, args.metrics)
    print("split: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    if len(skipped):
        print(f"split: {len(skipped)} files skipped, listed with reasons in {args.out_dir / 'skipped.csv'}")


if __name__ == "__main__":
    run(main)
