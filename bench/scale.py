"""Wall time of a queued 4-point lr sweep on the demo at `dvc queue start -j 1` and `-j 2`,
and of the demo's training on 1 process against 2 processes (DDP, gloo), with accuracy.

    python bench/scale.py [--lrs 1e-3,2e-3,4e-3,5e-3] [--epochs N] [--skip sweep|ddp]

It clones this repository's last commit into a temporary folder, runs the demo there once
(`make demo`'s params: the baseline, whose data stages every queued run then takes from the
cache), and copies that clone once per sweep, so each sweep starts from the same cache and
no run is answered from another's run cache. `-j 1` runs with the default threads (a run
alone takes all cores); `-j 2` with `OMP_NUM_THREADS=cores/2` on `dvc queue start`, which
every queued run inherits.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from fer.training.parallel import cpu_cores

REPO = Path(__file__).resolve().parents[1]


def sh(cwd: Path, *cmd: str, env: dict | None = None) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p.stdout


def demo_params() -> list[str]:
    """`make demo`'s -S overrides, read from the Makefile (one place)."""
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    return re.search(r"^DEMO_PARAMS := (.*)$", text, re.M).group(1).split()


def baseline(root: Path, overrides: list[str]) -> Path:
    repo = root / "base"
    sh(root, "git", "clone", "-q", str(REPO), str(repo))
    sh(repo, "dvc", "exp", "run", *demo_params(), *overrides)
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "demo baseline")
    return repo


def sweep(base: Path, lrs: str, jobs: int) -> float:
    """Queue one run per lr, start `jobs` workers, return the wall time until the queue is empty."""
    repo = base.parent / f"sweep-j{jobs}"
    shutil.copytree(base, repo, symlinks=True)
    sh(repo, "dvc", "exp", "run", "--queue", "-S", f"train.lr={lrs}")
    env = {"OMP_NUM_THREADS": str(max(1, cpu_cores() // jobs))} if jobs > 1 else {}
    start = time.perf_counter()
    sh(repo, "dvc", "queue", "start", "-j", str(jobs), env=env)
    while re.search(r"\b(Queued|Running)\b", sh(repo, "dvc", "queue", "status")):
        time.sleep(2)
    seconds = time.perf_counter() - start
    status = sh(repo, "dvc", "queue", "status")
    threads = f" ({env['OMP_NUM_THREADS']} threads a run)" if env else ""
    print(
        f"sweep of {len(lrs.split(','))} lrs at -j {jobs}{threads}: {seconds:.0f} s wall (load average after: "
        f"{os.getloadavg()[0]:.1f})" + ("" if "Failed" not in status else f" (FAILED runs:\n{status})"),
        flush=True,
    )
    print(
        sh(repo, "dvc", "exp", "show", "--drop", ".*", "--keep", r"Experiment|train\.lr$|^accuracy$|train_seconds"),
        flush=True,
    )
    return seconds


def ddp(base: Path) -> None:
    """The baseline's single-process training against the same run on 2 processes."""
    repo = base.parent / "ddp"
    shutil.copytree(base, repo, symlinks=True)
    start = time.perf_counter()
    sh(repo, "dvc", "exp", "run", "-S", "train.devices=2")
    wall = time.perf_counter() - start
    for name, path in (("1 process ", base), ("2 processes", repo)):
        t = json.loads((path / "metrics/details/train.json").read_text())
        m = json.loads((path / "metrics/metrics.json").read_text())
        print(
            f"{name}: train {t['train_seconds']} s ({t['train_images_per_second']} img/s), best val acc "
            f"{t['best_val_acc']:.4f} at epoch {t['best_epoch']}, test accuracy {m['accuracy']:.4f}",
            flush=True,
        )
    print(f"(the 2-process dvc exp run took {wall:.0f} s wall, all stages after preprocess)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lrs", default="1e-3,2e-3,4e-3,5e-3")  # not the demo's 3e-3: DVC's run cache would answer it
    parser.add_argument("--epochs", type=int, help="instead of the demo's 30, for a shorter benchmark")
    parser.add_argument("--skip", choices=["sweep", "ddp"])
    args = parser.parse_args()
    overrides = ["-S", f"train.epochs={args.epochs}"] if args.epochs else []
    print(
        f"# {datetime.date.today()}, {platform.machine()}, {cpu_cores()} cores, torch {torch.__version__}, "
        f"demo: {' '.join(demo_params() + overrides)}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="fer-scale-") as tmp:
        start = time.perf_counter()
        base = baseline(Path(tmp), overrides)
        print(f"baseline demo run (all stages): {time.perf_counter() - start:.0f} s", flush=True)
        if args.skip != "sweep":
            sweep(base, args.lrs, 1)
            sweep(base, args.lrs, 2)
        if args.skip != "ddp":
            ddp(base)


if __name__ == "__main__":
    main()
