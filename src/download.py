"""Stage download: fetch the raw images named by `data.source` into OUT_DIR, unchanged."""

import argparse
import shutil
from pathlib import Path

from fer.cli import run
from fer.data import sources


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    # Fill a scratch folder and swap it in only when complete: a failed download never
    # leaves a half-filled folder behind for the split stage to trust.
    tmp = args.out_dir.with_name(args.out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    sources.fetch(params.data, tmp, warn=lambda line: print(f"download: {line}"))
    shutil.rmtree(args.out_dir, ignore_errors=True)
    tmp.rename(args.out_dir)
    n = sum(1 for p in args.out_dir.rglob("*") if p.is_file())
    print(f"download: {n} files from {params.data.source} in {args.out_dir}")


if __name__ == "__main__":
    run(main)
