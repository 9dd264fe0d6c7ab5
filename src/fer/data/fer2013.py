"""FER2013 as Kaggle ships it: class folders of `Training_`/`PublicTest_`/`PrivateTest_` JPEGs,
or the classic `fer2013.csv` (emotion, pixels, Usage), 48x48 greyscale faces."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from fer.data import folders
from fer.data.images import COLUMNS, files
from fer.data.labels import FER2013_EMOTIONS

# FER2013's file-name prefixes (and its CSV's Usage column) carry the challenge's own split.
USAGE = {"training": "train", "publictest": "val", "privatetest": "test"}


def read(root: Path, data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """data.format=fer2013: (images, skipped) of either layout, whichever `root` holds. The
    official split comes from the prefix or the Usage column; without either, from
    train/test folders (val left empty). FER2013 has its own codes: `data` adds nothing.
    """
    for csv in (p for p in files(root) if p.suffix.lower() == ".csv"):
        head = pd.read_csv(csv, nrows=0).columns.str.strip().str.lower()
        if {"emotion", "pixels"} <= set(head):
            return _read_csv(csv, root)
    images, skipped = folders.scan(root)
    prefix = images["path"].str.extract(r"(?:^|/)([A-Za-z]+)_[^/]*$", expand=False).str.lower().map(USAGE)
    images["official"] = prefix.where(prefix.notna(), images["official"])
    return images, skipped


def _read_csv(csv: Path, root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = pd.read_csv(csv, dtype=str)
    table.columns = table.columns.str.strip().str.lower()
    rel = csv.relative_to(root).as_posix()
    rows, skipped = [], []
    for i, emotion, pixels, usage in zip(
        table.index, table["emotion"], table["pixels"], table.get("usage", pd.Series("", index=table.index))
    ):
        path = f"{rel}#{i}"
        if not str(emotion).strip().isdigit() or int(emotion) >= len(FER2013_EMOTIONS):
            skipped.append((path, f"emotion {emotion!r} is not 0-6"))
        elif len(str(pixels).split()) != 48 * 48:
            skipped.append((path, f"pixels holds {len(str(pixels).split())} values, not 48x48"))
        else:
            rows.append(
                {
                    "path": path,
                    "label": FER2013_EMOTIONS[int(emotion)],
                    "official": USAGE.get(str(usage).strip().lower(), ""),
                    "raw_label": str(int(emotion)),
                    "digest": hashlib.sha1(str(pixels).encode()).hexdigest(),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(skipped, columns=["path", "reason"])
