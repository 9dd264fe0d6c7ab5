"""The original CK+ release: `cohn-kanade-images/S005/001/S005_001_00000011.png`, and for the
labelled sequences `Emotion/S005/001/S005_001_00000011_emotion.txt` holding one code."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import pandas as pd

from fer import FerError
from fer.data.images import COLUMNS, files, is_image, map_labels
from fer.data.labels import CLASS_MAPS, label_key, read_class_map

FRAME = re.compile(r"(?:^|/)(S\d+)/(\d+)/[^/]+$", re.IGNORECASE)
EMOTION = re.compile(r"(?:^|/)(S\d+)/(\d+)/[^/]*_emotion\.txt$", re.IGNORECASE)


def read(root: Path, data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """data.format=ckplus: `scan` with data.class_map (CK+'s own codes without one),
    data.ckplus_frames and data.ckplus_neutral."""
    class_map = read_class_map(data.class_map) or CLASS_MAPS["ckplus"]
    return scan(root, class_map, data.ckplus_frames, data.ckplus_neutral)


def scan(root: Path, class_map: dict[str, str], last: int, first_neutral: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `last` frames of each labelled sequence as its expression (by `class_map`) and, if
    `first_neutral`, its first frame as neutral; the subject is the S### folder.

    skipped lists each sequence without an Emotion file (once, with its frame count), label
    files that cannot be read or have no frames, and images outside S###/###/; the frames
    between the first and the last ones are not used, and CK+'s landmark and FACS text
    files are ignored.
    """
    frames, codes, skipped = _sequences(root)
    if not codes:
        raise FerError(
            f"no CK+ Emotion labels (Emotion/S###/###/*_emotion.txt) under {root}: the release ships "
            "them apart from the images (Emotion_labels.zip); put them beside cohn-kanade-images"
        )
    rows = []
    for key, sequence in sorted(frames.items()):
        if key not in codes:
            skipped.append(
                (posixpath.dirname(sequence[0]), f"sequence without an Emotion label ({len(sequence)} frames)")
            )
            continue
        picked = sorted(sequence)
        rows += [{"path": p, "raw_label": codes[key][1], "subject": key[0]} for p in picked[-last:]]
        if first_neutral and len(picked) > last:
            rows.append({"path": picked[0], "raw_label": "first frame", "subject": key[0]})
    skipped += [
        (file, "no frames of this sequence under cohn-kanade-images")
        for key, (file, _) in codes.items()
        if key not in frames
    ]
    images = pd.DataFrame(rows, columns=COLUMNS)
    expressions = images["raw_label"][images["raw_label"] != "first frame"]
    mapping = {**map_labels(expressions, class_map, "CK+ Emotion code"), "first frame": "neutral"}
    images["label"] = images["raw_label"].map(mapping)
    return images, pd.DataFrame(skipped, columns=["path", "reason"])


def _sequences(root: Path) -> tuple[dict, dict, list]:
    """(frames, codes, skipped): the image files of each (subject, sequence), its Emotion
    code as (label file, label_key), and the files that are neither."""
    frames: dict[tuple[str, str], list[str]] = {}
    codes: dict[tuple[str, str], tuple[str, str]] = {}
    skipped = []
    for file in files(root):
        rel = file.relative_to(root).as_posix()
        if m := EMOTION.search(rel):
            text = file.read_text(errors="replace").strip()
            try:
                codes[(m[1].upper(), m[2])] = (rel, label_key(float(text.split()[0])))
            except (ValueError, IndexError):
                skipped.append((rel, f"not a CK+ Emotion code: {text[:40]!r}"))
        elif file.suffix.lower() == ".txt":
            continue  # CK+'s landmarks and FACS codes
        elif not is_image(file):
            skipped.append((rel, "not an image file"))
        elif m := FRAME.search(rel):
            frames.setdefault((m[1].upper(), m[2]), []).append(rel)
        else:
            skipped.append((rel, "not a CK+ frame (cohn-kanade-images/S###/###/<image>)"))
    return frames, codes, skipped
