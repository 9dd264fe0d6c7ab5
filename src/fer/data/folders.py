"""Class-folder datasets: `<root>/[<split>/]<class>/<image>`, the class is the image's folder."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from fer import FerError
from fer.data.images import COLUMNS, files, first_few, is_image, map_labels, split_folder
from fer.data.labels import classes_in, read_class_map


def read(root: Path, data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """data.format=folders: `scan` with data.subject_pattern and data.class_map."""
    return scan(root, data.subject_pattern, read_class_map(data.class_map))


def scan(
    root: Path, subject_pattern: str = "", class_map: dict[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(images, skipped) of a class-folder tree: the class is the image's folder, through
    `map_labels`; a split folder on the way (train/, test/, ...) gives the dataset's own split.

    class_map: `data.class_map` as read, for numeric folders. subject_pattern: a regex whose
    one group, searched in the file name, is the subject id; a file it does not match is
    skipped.
    """
    pattern = re.compile(subject_pattern) if subject_pattern else None
    rows, skipped = [], []
    for file in files(root):
        rel = file.relative_to(root).as_posix()
        if not is_image(file):
            skipped.append((rel, "not an image file"))
            continue
        if file.parent == root:
            skipped.append((rel, "not inside a class folder"))
            continue
        row = {"path": rel, "raw_label": file.parent.name, "official": split_folder(file, root)}
        if pattern:
            m = pattern.search(file.name)
            if not m:
                skipped.append((rel, f"data.subject_pattern {subject_pattern!r} does not match the file name"))
                continue
            row["subject"] = m.group(1)
        rows.append(row)
    _check(root, rows, skipped, subject_pattern)
    images = pd.DataFrame(rows, columns=COLUMNS)
    images["label"] = images["raw_label"].map(map_labels(images["raw_label"], class_map, "class folder"))
    return images, pd.DataFrame(skipped, columns=["path", "reason"])


def _check(root: Path, rows: list[dict], skipped: list[tuple[str, str]], subject_pattern: str) -> None:
    """Stop on a tree that is not what data.format=folders reads, saying what it looks like instead."""
    empty = [
        d
        for d in root.rglob("*")
        if d.is_dir() and len(classes_in(d.name)) == 1 and not any(is_image(p) for p in d.rglob("*"))
    ]
    if empty:
        raise FerError(
            f"class folder {empty[0].relative_to(root)} holds no images; add some, remove the folder, "
            "or leave the class out with data.classes"
        )
    if subject_pattern and not rows and skipped:
        raise FerError(
            f"data.subject_pattern {subject_pattern!r} matches no file name (e.g. {Path(skipped[0][0]).name})"
        )
    csvs = [f for f, _ in skipped if f.lower().endswith(".csv")]
    if not rows and csvs:
        raise FerError(
            f"no image is inside a class folder, and {first_few(csvs, 3)} may hold the labels: "
            "set data.format=csv to read them (data.format=fer2013 for FER2013's fer2013.csv)"
        )
