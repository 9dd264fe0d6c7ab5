"""Stage split: read the raw dataset (data.format), assign train/val/test, write the manifest.

Outputs (in OUT_DIR): images.csv (every image to use, whatever the split params: what the
preprocess stage decodes, so a change of split.* decodes nothing again), manifest.csv (one
row per image of the split: path, split, label, subject, session, sex, angle, official,
raw_label), folds.csv (with split.folds: a row per fold and
image: fold, path, split; empty otherwise), skipped.csv (every file not used, with the
reason), duplicates.csv (repeated images; dropped unless the dataset's own split keeps
them) and missing.csv (with data.format kdef, each photo KDEF's design expects that no
file carries: code, subject, session, label, angle; empty otherwise); the summary
(protocol, sizes, subject overlap, skipped, repeated and, for KDEF, missing counts, the
folds' under `cv`, and `class_map`: each label as the dataset writes it -> the class it was
read as) goes to DETAILS, and its subject overlap to METRICS, for DVC to compare. The one
train/val/test split is written with or without folds: it trains the model that ships.
"""

import argparse
from pathlib import Path

import pandas as pd

from fer import FerError
from fer.cli import run
from fer.data import formats, kdef
from fer.data.split import (
    HEADLINE,
    assign,
    assign_folds,
    counts,
    drop_repeats,
    fold_counts,
    locate_repeats,
    select_angles,
)
from fer.io import write_csv, write_metrics


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("raw_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("metrics", type=Path, help="the subject overlap, for DVC to compare")
    parser.add_argument("details", type=Path, help="the split's whole summary")
    args = parser.parse_args()
    images, skipped = formats.scan(args.raw_dir, params.data)
    if images.empty:
        raise FerError(
            f"no {params.data.format} images found in {args.raw_dir} ({len(skipped)} other files; "
            "check data.format)\n" + skipped.head(10).to_string(index=False)
        )
    is_kdef = params.data.format == "kdef"
    missing, expected = kdef.missing(images, skipped) if is_kdef else (pd.DataFrame(columns=kdef.MISSING_COLUMNS), 0)
    p = params.split
    images, repeats = drop_repeats(images)
    skipped = pd.concat([skipped, repeats.loc[repeats["dropped"], ["path", "reason"]]], ignore_index=True)
    write_csv(images, args.out_dir / "images.csv")  # before any split param is read
    images = select_angles(images, p.angles)
    images["split"], protocol = assign(images, p.val, p.test, p.seed, p.group_by)
    repeats = locate_repeats(repeats, images)
    folds, cv = pd.DataFrame(columns=["fold", "path", "split"]), {}
    if p.folds:
        folds, cv_protocol = assign_folds(images, p.folds, p.val, p.seed, p.group_by)
        cv = {"cv": fold_counts(images, folds, cv_protocol)}
        folds = folds.assign(path=images["path"].to_numpy()[folds["image"]])[["fold", "path", "split"]]
    write_csv(images, args.out_dir / "manifest.csv")
    write_csv(folds, args.out_dir / "folds.csv")
    write_csv(skipped, args.out_dir / "skipped.csv")
    write_csv(repeats, args.out_dir / "duplicates.csv")
    write_csv(missing, args.out_dir / "missing.csv")
    stats = {
        **counts(images, images["split"], protocol, repeats),
        "images": len(images),
        "skipped": len(skipped),
        **({"missing": len(missing)} if is_kdef else {}),
        "angles": " ".join(p.angles) or "all",
        **cv,
    }
    mapping = formats.class_map_used(images)
    write_metrics({**stats, "class_map": mapping}, HEADLINE, args.metrics, args.details)
    print("split: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    print("split: classes read as " + ", ".join(f"{k!r} -> {v}" for k, v in mapping.items()))
    if len(skipped):
        print(f"split: {len(skipped)} files skipped, listed with reasons in {args.out_dir / 'skipped.csv'}")
    if len(missing):
        codes = ", ".join(missing["code"][:10]) + (", ..." if len(missing) > 10 else "")
        print(
            f"split: {len(missing)} of {expected:,} photos KDEF's design expects are missing ({codes}), "
            f"listed in {args.out_dir / 'missing.csv'}"
        )


if __name__ == "__main__":
    run(main)
