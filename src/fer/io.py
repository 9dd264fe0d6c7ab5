"""Writing outputs so that a crash never leaves a half-written file a later stage trusts."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from fer import FerError


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to `path`; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(obj, path: str | Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def write_metrics(report: dict, headline, metrics: str | Path, details: str | Path) -> None:
    """A stage's figures in two files: all of `report` in `details`, and the keys of `headline` that
    it holds in `metrics`, the file DVC compares across runs (`dvc metrics show`, `dvc exp show`,
    `dvc metrics diff`). Those print every metrics file's keys in one table, a column per key, so a
    headline is a few flat keys and everything else waits in the details."""
    write_json(report, details)
    write_json({k: report[k] for k in headline if k in report}, metrics)


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def check_writable(path: str | Path, flag: str, folder: bool = False, parents: bool = False) -> None:
    """A FerError naming `flag` unless `path` can be written (a file, or with `folder` a folder,
    made later if missing; with `parents` the folders a file lies in are made too): checked
    before any work, so that no result is computed only to be lost."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise FerError(f"{flag} {path} is a file, not a folder: name a folder to write into")
    if not folder and path.is_dir():
        raise FerError(f"{flag} {path} is a folder: name a file to write in it, e.g. {path / 'predictions'}")
    if not folder and not parents and not path.parent.is_dir():
        raise FerError(
            f"{flag} {path}: the folder {path.parent} does not exist; make it first (mkdir -p {path.parent})"
        )
    target = path if folder and path.is_dir() else next(p for p in path.parents if p.exists())
    if not target.is_dir() and target != path:
        raise FerError(f"{flag} {path}: {target} is a file, so no folder can be made there")
    if not folder and path.exists():
        target = path
    if (
        not os.access(target, os.W_OK)
        or not target.is_dir()
        and folder
        or not _can_create_in(target if target.is_dir() else target.parent)
    ):
        raise FerError(f"{flag} {path}: {target} cannot be written to; choose a place you can write to")


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be made in `folder`: the way writes go (atomically, beside the target),
    tried; permissions alone miss read-only and special file systems (/proc, a read-only mount)."""
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True
