"""FER+ (Barsoum et al., 2016): FER2013's faces relabelled by ten annotators each.

The layout FER+ users have after Microsoft's `generate_training_data.py`: `FER2013Train/`,
`FER2013Valid/` and `FER2013Test/`, each with the PNGs and a headerless `label.csv` whose
rows are the image name, the face box and ten vote counts in `VOTES` order. The three
folders are FER2013's own split (train, val, test). Each face's label is its most voted
class; a face whose top vote is unknown or not-a-face, or is shared by two classes, has no
label and is skipped with the reason. `votes` keeps the eight expressions' counts, for
training on the vote distribution (`data.ferplus_labels: distribution`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer import FerError
from fer.data.labels import canonical

# label.csv's vote columns, in order; the last two are not expressions.
VOTES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
EXPRESSIONS = tuple(canonical(v) for v in VOTES[:8])
SPLITS = {"fer2013train": "train", "fer2013valid": "val", "fer2013test": "test"}


def read(root: Path, data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """data.format=ferplus: `scan` (FER+ has its own vote columns: `data` adds nothing)."""
    return scan(root)


def scan(root: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(images, skipped) of a FER+ tree under `root` (see the module docstring): `path`,
    `label`, `official`, `raw_label` (the top vote's column name) and `votes` ("angry=0 ... "
    over the eight expressions)."""
    root = Path(root)
    csvs = sorted(p for p in root.rglob("label.csv") if p.parent.name.lower() in SPLITS)
    if not csvs:
        raise FerError(
            f"no FER+ label.csv under {root} in FER2013Train/, FER2013Valid/ or FER2013Test/: the "
            "layout Microsoft's generate_training_data.py writes (data.format=ferplus)"
        )
    images, skipped = [], []
    for csv in csvs:
        found, left = _read_labels(csv, root)
        images.append(found)
        skipped.append(left)
    listed = set(pd.concat(images)["path"]) | set(pd.concat(skipped)["path"])
    others = [
        (p.relative_to(root).as_posix(), "not listed in a FER+ label.csv")
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "label.csv" and p.relative_to(root).as_posix() not in listed
    ]
    return pd.concat(images, ignore_index=True), pd.concat(
        [*skipped, pd.DataFrame(others, columns=["path", "reason"])], ignore_index=True
    )


def _read_labels(csv: Path, root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = pd.read_csv(csv, header=None, dtype={0: str}, skipinitialspace=True)
    if table.shape[1] != 2 + len(VOTES):
        raise FerError(
            f"{csv} has {table.shape[1]} columns; a FER+ label.csv has {2 + len(VOTES)}: image name, "
            f"face box, and the votes for {', '.join(VOTES)}"
        )
    folder = csv.parent.relative_to(root).as_posix()
    paths = (folder + "/" + table[0].str.strip()).str.lstrip("./")
    votes = table.iloc[:, 2:].to_numpy(dtype=int)
    top = votes.max(1)
    winners = (votes == top[:, None]).sum(1)
    best = votes.argmax(1)
    exists = np.array([(root / p).is_file() for p in paths])
    reason = np.select(
        [~exists, top == 0, winners > 1, best >= len(EXPRESSIONS)],
        [
            "listed in label.csv but no image (FER+ dropped the face)",
            "no votes",
            "tie: two classes share the top vote",
            "top vote: " + pd.Series(VOTES)[np.minimum(best, 9)].to_numpy(),
        ],
        "",
    )
    keep = reason == ""
    shares = [" ".join(f"{c}={n}" for c, n in zip(EXPRESSIONS, row[:8])) for row in votes[keep]]
    images = pd.DataFrame(
        {
            "path": paths[keep].to_numpy(),
            "label": [EXPRESSIONS[i] for i in best[keep]],
            "official": SPLITS[csv.parent.name.lower()],
            "raw_label": [VOTES[i] for i in best[keep]],
            "votes": shares,
        }
    )
    return images, pd.DataFrame({"path": paths[~keep].to_numpy(), "reason": reason[~keep]})
