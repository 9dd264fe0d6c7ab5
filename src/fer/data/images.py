"""The table of images every dataset reader returns, and what the readers share to build it.

A reader (`fer.data.formats.FORMATS`) returns (images, skipped): images has one row per
usable image with `path` (relative to the root; `<file>.csv#<row>` for an image stored as
pixels in a CSV), `label` (canonical class name), `subject`, `session`, `sex`, `angle`
(empty where the dataset does not say) and `official` (the split the dataset itself
assigns, or empty); `raw_label` (the label as the dataset writes it: class folder name,
label column value, code); `digest` (a hash of the file's bytes or the CSV row's pixels, to
find repeated images); `votes` (FER+: each expression's annotator votes, "angry=0
contempt=1 ..."); skipped lists every other file with the reason (`path`, `reason`).
"""

from __future__ import annotations

from pathlib import Path

from fer import FerError
from fer.data.labels import CLASS_MAPS, canonical, classes_in, label_key, near_miss, plain_name

COLUMNS = ["path", "label", "subject", "session", "sex", "angle", "official", "raw_label", "digest", "votes"]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def files(root: Path) -> list[Path]:
    """Every file under `root`, sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def is_image(file: str | Path) -> bool:
    return Path(file).suffix.lower() in IMAGE_SUFFIXES


def split_folder(file: Path, root: Path) -> str:
    """train/val/test when a folder between root and the file is named like one, else ""."""
    for part in file.relative_to(root).parts[:-1]:
        if part.lower() in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part.lower()]
    return ""


def wanted_classes(classes) -> set[str]:
    """The classes `data.classes` names, canonical where the vocabulary knows them (empty: all)."""
    return {canonical(c) or c.lower() for c in classes}


def map_labels(names, class_map: dict[str, str] | None, what: str) -> dict[str, str]:
    """The class of each label as the dataset writes it (`what`: "class folder", "label", ...).

    A name is looked up in `class_map` (from `data.class_map`, keyed by `label_key`) first, then
    read through the alias table by the expression word it contains ("1 - Happy", "03_sad");
    a name outside the vocabulary keeps its words as its class ("8 - Pain": pain).
    Raises FerError listing every name that is a number no class map maps, names two classes,
    or looks like a misspelt class.
    """
    mapping, numbers, twice, misspelt = {}, [], [], []
    for name in sorted(set(names)):
        key, found = label_key(name), classes_in(name)
        if class_map is not None and key in class_map:
            mapping[name] = class_map[key]
        elif len(found) == 1:
            mapping[name] = found.pop()
        elif found:
            twice.append(f"{name!r} ({' and '.join(sorted(found))})")
        elif key.isdigit():
            numbers.append(repr(name))
        elif near_miss(name):
            misspelt.append(f"{name!r} ({near_miss(name)}?)")
        else:
            mapping[name] = plain_name(name)
    problems = []
    if numbers and class_map is None:
        problems.append(
            f"{what}s {first_few(numbers)} are numbers: say what they mean with data.class_map, "
            f"a published class map ({', '.join(CLASS_MAPS)}; e.g. -S data.class_map=rafdb) "
            "or your own (-S 'data.class_map={1: surprise, 2: fear}')"
        )
    elif numbers:
        problems.append(f"{what}s {first_few(numbers)} are not in data.class_map (it maps {', '.join(class_map)})")
    if twice:
        problems.append(f"{what}s {first_few(twice)} name two classes: rename them or map them with data.class_map")
    if misspelt:
        problems.append(
            f"{what}s {first_few(misspelt)} look like misspelt classes: rename them or map them with data.class_map"
        )
    if problems:
        raise FerError("; ".join(problems))
    return mapping


def first_few(names: list[str], n: int = 10) -> str:
    """`names` joined for a message, the first `n` of them and how many more."""
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")
