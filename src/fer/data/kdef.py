"""Reading KDEF: what each file name says about the photo.

KDEF names every photo by a 7-8 character code, `AF01ANS.JPG`: session (A/B), sex (F/M),
subject number (01-35), expression (AF AN DI HA NE SA SU) and head angle
(FL HL S HR FR). The code is the ground truth; folders only organise the files.
The design is complete: 2 sessions x 70 people x 7 expressions x 5 angles, 4,900 photos,
so `missing()` can name every photo a copy lacks.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from fer import FerError
from fer.data.images import wanted_classes
from fer.data.labels import BASIC, KDEF_ANGLES, KDEF_CODES, canonical

NAME = re.compile(
    r"(?P<session>[AB])(?P<sex>[FM])(?P<number>\d{2})"
    rf"(?P<code>{'|'.join(KDEF_CODES)})(?P<angle>{'|'.join(KDEF_ANGLES)})\.jpe?g",
    re.IGNORECASE,
)
COLUMNS = ["path", "label", "subject", "session", "sex", "angle"]
MISSING_COLUMNS = ["code", "subject", "session", "label", "angle"]
SESSIONS = ("A", "B")


def parse_name(name: str) -> dict | None:
    """Fields of a KDEF file name, or None if `name` is not one.

    `subject` joins sex and number (F01 and M01 are different people).
    """
    m = NAME.fullmatch(name)
    if not m:
        return None
    g = {k: v.upper() for k, v in m.groupdict().items()}
    return {
        "label": KDEF_CODES[g["code"]],
        "subject": g["sex"] + g["number"],
        "session": g["session"],
        "sex": g["sex"],
        "angle": g["angle"],
    }


def scan(root: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every file under `root`, in any folder layout, sorted into (images, skipped).

    images: one row per photo, COLUMNS, `path` relative to root (POSIX).
    skipped: `path`, `reason` for every file that is not used, so nothing vanishes
    silently: names that do not parse, a class folder that contradicts the code, and
    second copies of the same photo.
    """
    root = Path(root)
    rows, skipped, seen = [], [], {}
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        fields = parse_name(file.name)
        if fields is None:
            skipped.append((rel, "file name is not a KDEF code like AF01ANS.JPG"))
            continue
        folder_label = canonical(file.parent.name) if file.parent != root else None
        if folder_label and folder_label != fields["label"]:
            skipped.append((rel, f"folder says {folder_label}, file name says {fields['label']}"))
            continue
        key = file.name.upper()
        if key in seen:
            skipped.append((rel, f"another copy of {seen[key]}"))
            continue
        seen[key] = rel
        rows.append({"path": rel, **fields})
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(skipped, columns=["path", "reason"])


def read(root: Path, data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """data.format=kdef: `scan`, with each photo's expression code as `raw_label`. Raises
    FerError if a class the run trains on (data.classes, else the basic seven) has no photo."""
    images, skipped = scan(root)
    images["raw_label"] = [NAME.fullmatch(Path(p).name)["code"].upper() for p in images["path"]]
    absent = sorted((wanted_classes(data.classes) or set(BASIC)) - set(images["label"]))
    if len(images) and absent:
        raise FerError(
            f"no KDEF images of {', '.join(absent)}; add them, or train on the classes present with data.classes"
        )
    return images, skipped


def missing(images: pd.DataFrame, skipped: pd.DataFrame | None = None) -> tuple[pd.DataFrame, int]:
    """The photos KDEF's design expects of this copy that no file in it carries: (missing, expected).

    The design is every person in `images` x the sessions x the expressions x the angles
    that the copy holds at all: a copy of straight photos only (a common subset, and the
    demo's default of three angles) is a choice, not a loss. A KDEF name among `skipped`
    (e.g. a file whose class folder contradicts its code) counts as present: it is listed
    there with its reason.

    images: a scan's table (subject, session, label, angle); skipped: its `path` column.
    missing: MISSING_COLUMNS, one row per absent photo (`code` as in AF01SUFR), sorted by code.
    expected: how many photos the design holds.
    """
    fields = ["subject", "session", "label", "angle"]
    named = [parse_name(Path(p).name) for p in (skipped["path"] if skipped is not None else [])]
    found = pd.concat([images[fields], pd.DataFrame([f for f in named if f], columns=fields)])
    present = set(found.itertuples(index=False, name=None))
    subjects = sorted(set(found["subject"]))
    sessions = [s for s in SESSIONS if s in set(found["session"])]
    labels = [label for label in KDEF_CODES.values() if label in set(found["label"])]
    angles = [a for a in KDEF_ANGLES if a in set(found["angle"])]
    code = {label: c for c, label in KDEF_CODES.items()}
    rows = [
        (f"{session}{subject}{code[label]}{angle}", subject, session, label, angle)
        for subject in subjects
        for session in sessions
        for label in labels
        for angle in angles
        if (subject, session, label, angle) not in present
    ]
    expected = len(subjects) * len(sessions) * len(labels) * len(angles)
    return pd.DataFrame(sorted(rows), columns=MISSING_COLUMNS), expected
