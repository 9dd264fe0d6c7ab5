"""Datasets whose file names carry the label and the person, in a convention of their own:
JAFFE's `KA.AN1.39.tiff` (person, expression code, take), RaFD's
`Rafd090_01_Caucasian_female_angry_frontal.jpg`, or fixed-width codes such as `0111b01.jpg`.

`data.label_pattern` is a regular expression whose one group, searched in the file name, is
the label as the dataset writes it; it is read through `data.class_map` (a code table) or
else the alias table, so `AN`, `FE`, `b` or `angry` all work. `data.subject_pattern` (one
group too) gives the person. A preset name (`NAME_PATTERNS`) stands for both patterns of a
well-known convention. A file name the patterns do not match is skipped with the reason; a
label that maps to no class stops the scan, listing every such value with its count.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from fer import FerError
from fer.data.images import COLUMNS, files, is_image, split_folder
from fer.data.labels import CLASSES, NAME_PATTERNS, canonical, label_key, read_class_map


def patterns(label_pattern: str, subject_pattern: str = "") -> tuple[str, str]:
    """The label and subject patterns `data.label_pattern` and `data.subject_pattern` mean: a
    preset's pair (the subject pattern given wins), or the two as written."""
    if label_pattern in NAME_PATTERNS:
        preset_label, preset_subject = NAME_PATTERNS[label_pattern]
        return preset_label, subject_pattern or preset_subject
    return label_pattern, subject_pattern


def read(root: Path, data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """data.format=filenames: `scan` of every image under `root` with data.label_pattern,
    data.subject_pattern and data.class_map; split folders on the way (train/, test/, ...)
    give the dataset's own split."""
    found = files(root)
    others = [(f.relative_to(root).as_posix(), "not an image file") for f in found if not is_image(f)]
    images, skipped = scan(
        root,
        [f for f in found if is_image(f)],
        data.label_pattern,
        data.subject_pattern,
        read_class_map(data.class_map),
    )
    images["official"] = [split_folder(root / p, root) for p in images["path"]]
    return images.reindex(columns=COLUMNS), pd.concat(
        [skipped, pd.DataFrame(others, columns=["path", "reason"])], ignore_index=True
    )


def scan(
    root: str | Path,
    image_files: list[Path],
    label_pattern: str,
    subject_pattern: str = "",
    class_map: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(images, skipped) of the `image_files` under `root`: `path`, `label`, `subject`,
    `raw_label` from each file name (see the module docstring)."""
    label_re, subject_re = (re.compile(p) if p else None for p in patterns(label_pattern, subject_pattern))
    rows, skipped = [], []
    for file in image_files:
        rel = Path(file).relative_to(root).as_posix()
        label, subject = label_re.search(file.name), subject_re.search(file.name) if subject_re else None
        if not label:
            skipped.append((rel, f"data.label_pattern {label_re.pattern!r} does not match the file name"))
        elif subject_re and not subject:
            skipped.append((rel, f"data.subject_pattern {subject_re.pattern!r} does not match the file name"))
        else:
            rows.append({"path": rel, "raw_label": label[1], "subject": subject[1] if subject else ""})
    images = pd.DataFrame(rows, columns=["path", "raw_label", "subject"])
    if images.empty and skipped:
        raise FerError(
            f"data.label_pattern {label_re.pattern!r} matches no file name (e.g. {Path(skipped[0][0]).name})"
        )
    images["label"] = images["raw_label"].map(lambda raw: _class(raw, class_map))
    unmapped = images.loc[images["label"].isna(), "raw_label"].value_counts()
    if len(unmapped):
        values = ", ".join(f"{v!r} ({n})" for v, n in unmapped.items())
        raise FerError(
            f"{len(unmapped)} label value(s) from data.label_pattern map to no class: {values}. "
            f"Map them with data.class_map (e.g. -S 'data.class_map={{{unmapped.index[0]}: happy}}'); "
            f"the classes are {', '.join(CLASSES)} and their aliases"
        )
    return images, pd.DataFrame(skipped, columns=["path", "reason"])


def _class(raw: str, class_map: dict[str, str] | None) -> str | None:
    """The class of one label as the file name writes it, or None."""
    return (class_map or {}).get(label_key(raw)) or canonical(raw)
