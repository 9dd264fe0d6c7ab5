"""Reading a raw dataset folder into one table of images, whatever the dataset.

`data.format` picks the reader in `FORMATS`; each is `read(root, data)` in the module of its
format and returns (images, skipped) as `fer.data.images` describes. `scan` calls it, then
does what every format shares: the classes `data.classes` keeps, a digest per image,
`data.attributes` read off the paths, and the table's columns in order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from fer import FerError
from fer.data import ckplus, fer2013, ferplus, filenames, folders, kdef, label_csv
from fer.data.images import COLUMNS, wanted_classes
from fer.data.labels import CLASSES
from fer.params import DataParams, Format

Reader = Callable[[Path, DataParams], tuple[pd.DataFrame, pd.DataFrame]]  # (root, data) -> (images, skipped)
# data.format -> its reader: a reader for each name that params.Format accepts (tests/test_formats.py)
FORMATS: dict[Format, Reader] = {
    "kdef": kdef.read,
    "fer2013": fer2013.read,
    "folders": folders.read,
    "csv": label_csv.read,
    "ckplus": ckplus.read,
    "ferplus": ferplus.read,
    "filenames": filenames.read,
}


def scan(root: str | Path, data: DataParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(images, skipped) of `root` read as `data.format` (see the module docstring)."""
    if data.format not in FORMATS:
        raise FerError(f"data.format {data.format!r} is none of the formats read here: {', '.join(FORMATS)}")
    root = Path(root)
    images, skipped = FORMATS[data.format](root, data)
    wanted = wanted_classes(data.classes)
    if len(images) and not wanted and not images["label"].isin(CLASSES).any():
        names = sorted(images["label"].unique())
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        what = "class folders" if data.format in ("folders", "fer2013") else "labels"
        raise FerError(
            f"none of the {len(names)} {what} ({shown}) names an expression ({', '.join(CLASSES)} "
            f"or an alias): check data.format (KDEF's own tree needs data.format=kdef), or name your "
            f"classes in data.classes"
        )
    if wanted:
        keep = images["label"].isin(wanted)
        dropped = images.loc[~keep, ["path", "label"]]
        reasons = pd.DataFrame(
            {"path": dropped["path"], "reason": "class " + dropped["label"] + " not in data.classes"}
        )
        images, skipped = images[keep], pd.concat([skipped, reasons], ignore_index=True)
    if "digest" not in images or images["digest"].isna().any():
        images["digest"] = [hashlib.sha1((root / p).read_bytes()).hexdigest() for p in images["path"]]
    for name, pattern in data.attributes.items():  # e.g. RaFD's sex and ethnicity from its file names
        images[name] = images["path"].str.extract(pattern, expand=False)
    extra = [c for c in images.columns if c not in COLUMNS]  # attributes: accuracy per group in evaluate
    images = images.reindex(columns=COLUMNS + extra).astype(object)
    return images.where(images.notna(), "").reset_index(drop=True), skipped.reset_index(drop=True)


def class_map_used(images: pd.DataFrame) -> dict[str, str]:
    """The mapping a scan used, label as written -> class, codes in numeric order (for metrics/split.json)."""
    pairs = images.loc[images["raw_label"] != "", ["raw_label", "label"]].drop_duplicates()
    ordered = sorted(
        zip(pairs["raw_label"], pairs["label"]),
        key=lambda p: (not p[0].isdigit(), int(p[0]) if p[0].isdigit() else 0, p[0]),
    )
    return dict(ordered)
