"""Reading a raw dataset folder into one table of images, whatever the dataset.

Every reader returns (images, skipped): images has one row per usable image with `path`
(relative to the root; `<file>.csv#<row>` for an image stored as pixels in a CSV),
`label` (canonical class name), `subject`, `session`, `sex`, `angle` (empty where the
dataset does not say) and `official` (the split the dataset itself assigns, or empty);
`digest` (a hash of the file's bytes or the CSV row's pixels, to find repeated images);
skipped lists every other file with the reason.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd

from fer import FerError, kdef
from fer.labels import CLASSES, canonical

COLUMNS = ["path", "label", "subject", "session", "sex", "angle", "official", "digest"]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
# FER2013's file-name prefixes (and its CSV's Usage column) carry the challenge's own split.
FER2013_USAGE = {"training": "train", "publictest": "val", "privatetest": "test"}
# fer2013.csv's `emotion` column.
FER2013_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}


def scan(root: str | Path, data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read `root` as `data.format` ("kdef", "fer2013" or "folders"); see the module docstring."""
    root = Path(root)
    wanted = {canonical(c) or c.lower() for c in data.classes}
    if data.format == "kdef":
        images, skipped = kdef.scan(root)
        missing = sorted((wanted or set(CLASSES)) - set(images["label"]))
        if len(images) and missing:
            raise FerError(f"no KDEF images of {', '.join(missing)}; add them, or train on the classes present "
                           f"with data.classes")
    elif data.format == "fer2013":
        images, skipped = scan_fer2013(root)
    else:
        images, skipped = scan_folders(root, data.subject_pattern)
    if data.format != "kdef" and len(images) and not wanted and not images["label"].isin(CLASSES).any():
        names = sorted(images["label"].unique())
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise FerError(f"none of the {len(names)} class folders ({shown}) names an expression ({', '.join(CLASSES)} "
                       f"or an alias): check data.format (KDEF's own tree needs data.format=kdef), or name your "
                       f"classes in data.classes")
    if wanted:
        keep = images["label"].isin(wanted)
        dropped = images.loc[~keep, ["path", "label"]]
        reasons = pd.DataFrame({"path": dropped["path"], "reason": "class " + dropped["label"] + " not in data.classes"})
        images, skipped = images[keep], pd.concat([skipped, reasons], ignore_index=True)
    if "digest" not in images or images["digest"].isna().any():
        images["digest"] = [hashlib.sha1((root / p).read_bytes()).hexdigest() for p in images["path"]]
    images = images.reindex(columns=COLUMNS).astype(object)
    return images.where(images.notna(), "").reset_index(drop=True), skipped.reset_index(drop=True)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _split_folder(file: Path, root: Path) -> str:
    """train/val/test when a folder between root and the file is named like one, else ""."""
    for part in file.relative_to(root).parts[:-1]:
        if part.lower() in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part.lower()]
    return ""


def scan_folders(root: Path, subject_pattern: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """`<root>/[<split>/]<class>/<image>`: the class is the image's folder, through the alias table.

    A folder name outside the canonical vocabulary (CK+'s "contempt") is kept as its own
    class, lower-cased. subject_pattern: a regex whose one group, searched in the file
    name, is the subject id; a file it does not match is skipped.
    """
    pattern = re.compile(subject_pattern) if subject_pattern else None
    rows, skipped = [], []
    for file in _files(root):
        rel = file.relative_to(root).as_posix()
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((rel, "not an image file"))
            continue
        if file.parent == root:
            skipped.append((rel, "not inside a class folder"))
            continue
        row = {"path": rel, "label": canonical(file.parent.name) or file.parent.name.lower(),
               "official": _split_folder(file, root)}
        if pattern:
            m = pattern.search(file.name)
            if not m:
                skipped.append((rel, f"data.subject_pattern {subject_pattern!r} does not match the file name"))
                continue
            row["subject"] = m.group(1)
        rows.append(row)
    empty = [d for d in root.rglob("*") if d.is_dir() and canonical(d.name)
             and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.rglob("*"))]
    if empty:
        raise FerError(f"class folder {empty[0].relative_to(root)} holds no images; add some, remove the folder, "
                       "or leave the class out with data.classes")
    if pattern and not rows and skipped:
        raise FerError(f"data.subject_pattern {subject_pattern!r} matches no file name (e.g. {Path(skipped[0][0]).name})")
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(skipped, columns=["path", "reason"])


def scan_fer2013(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """FER2013 as Kaggle ships it: class folders of `Training_`/`PublicTest_`/`PrivateTest_` JPEGs,
    or the classic `fer2013.csv` (emotion, pixels, Usage). The official split comes from the
    prefix or the Usage column; without either, from train/test folders (val left empty).
    """
    csvs = [p for p in _files(root) if p.suffix.lower() == ".csv"]
    for csv in csvs:
        head = pd.read_csv(csv, nrows=0).columns.str.strip().str.lower()
        if {"emotion", "pixels"} <= set(head):
            return _scan_fer2013_csv(csv, root)
    images, skipped = scan_folders(root)
    prefix = images["path"].str.extract(r"(?:^|/)([A-Za-z]+)_[^/]*$", expand=False).str.lower().map(FER2013_USAGE)
    images["official"] = prefix.where(prefix.notna(), images["official"])
    return images, skipped


def _scan_fer2013_csv(csv: Path, root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = pd.read_csv(csv, dtype=str)
    table.columns = table.columns.str.strip().str.lower()
    rel = csv.relative_to(root).as_posix()
    rows, skipped = [], []
    for i, emotion, pixels, usage in zip(table.index, table["emotion"], table["pixels"],
                                         table.get("usage", pd.Series("", index=table.index))):
        path = f"{rel}#{i}"
        if not str(emotion).strip().isdigit() or int(emotion) >= len(FER2013_EMOTIONS):
            skipped.append((path, f"emotion {emotion!r} is not 0-6"))
        elif len(str(pixels).split()) != 48 * 48:
            skipped.append((path, f"pixels holds {len(str(pixels).split())} values, not 48x48"))
        else:
            official = FER2013_USAGE.get(str(usage).strip().lower(), "")
            rows.append({"path": path, "label": FER2013_EMOTIONS[int(emotion)], "official": official,
                         "digest": hashlib.sha1(str(pixels).encode()).hexdigest()})
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(skipped, columns=["path", "reason"])
