"""Images named by the rows of label CSVs (data.format=csv): an image path column, a label
column and, if present, a subject column, found by their usual names or named in
`data.label_csv`."""

from __future__ import annotations

import posixpath
from pathlib import Path

import pandas as pd

from fer import FerError
from fer.data.images import COLUMNS, files, is_image, map_labels, split_folder
from fer.data.labels import read_class_map

# Column names label CSVs use, tried in this order when data.label_csv leaves one empty.
CSV_COLUMNS = {
    "path": ("path", "image", "image_path", "image_name", "file", "filename", "file_name", "img", "pth", "name"),
    "label": ("label", "emotion", "expression", "class", "category", "target", "labels"),
    "subject": ("subject", "subject_id", "person", "person_id", "identity"),
}


def read(root: Path, data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """data.format=csv: `scan` with data.label_csv and data.class_map."""
    return scan(root, data.label_csv, read_class_map(data.class_map))


def scan(root: Path, columns, class_map: dict[str, str] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Images named by the rows of label CSVs (`columns`: `data.label_csv`): image path, label
    (a class name, alias or code read through `map_labels`) and, if present, subject.

    A path is looked up beside its CSV, then under root, then by its file name anywhere
    under root (copies that list bare names of files kept in class folders). A row whose
    file is missing is skipped with its reason; so is every image no row names. Raises
    FerError if no CSV has the columns, or if no row names an image.
    """
    present = {p.relative_to(root).as_posix() for p in files(root)}
    by_name: dict[str, list[str]] = {}
    for rel in sorted(present):
        by_name.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
    rows, skipped, used = [], [], set()
    attributes = list(dict.fromkeys(columns.attributes))
    for csv, table_rows in _label_csvs(root, columns):
        base = csv.parent.relative_to(root).as_posix()
        used.add(csv.relative_to(root).as_posix())
        for i, row in table_rows.iterrows():
            where = f"{csv.relative_to(root).as_posix()} line {i + 2}"
            rel, reason = _csv_image(row["path"], base, present, by_name)
            if reason is None and not row["label"].strip():
                reason = "no label"
            if reason is None and "subject" in row and not row["subject"].strip():
                reason = "no subject"
            if reason:
                skipped.append((row["path"] or where, f"{where}: {reason}"))
                continue
            used.add(rel)
            rows.append(
                {
                    "path": rel,
                    "raw_label": row["label"].strip(),
                    "subject": row.get("subject", "").strip(),
                    "official": split_folder(root / rel, root),
                    **{a: row[a].strip() for a in attributes},
                }
            )
    if not rows:
        raise FerError(
            f"no row of the label CSV names an image under {root} (e.g. {skipped[0][1]}: "
            f"{skipped[0][0]!r}); image paths are read beside the CSV, under the source folder, "
            "or by file name"
            if skipped
            else f"the label CSVs under {root} have no rows"
        )
    images = pd.DataFrame(rows, columns=COLUMNS + attributes)
    images["label"] = images["raw_label"].map(map_labels(images["raw_label"], class_map, "label"))
    skipped += [
        (f, "no row of the label CSV names it" if is_image(f) else "not an image file") for f in sorted(present - used)
    ]
    return images, pd.DataFrame(skipped, columns=["path", "reason"])


def _csv_image(value: str, base: str, present: set[str], by_name: dict[str, list[str]]) -> tuple[str, str | None]:
    """(path under root, None) for the image a CSV row names, or ("", why not)."""
    value = value.strip().replace("\\", "/")
    if not value:
        return "", "no image path"
    for candidate in (f"{base}/{value}", value.lstrip("/")):
        rel = posixpath.normpath(candidate)
        if rel in present:
            return (rel, None) if is_image(rel) else ("", "not an image file")
    same_name = by_name.get(value.rsplit("/", 1)[-1], [])
    if len(same_name) == 1:
        return same_name[0], None
    if same_name:
        return "", f"{len(same_name)} files are named {value.rsplit('/', 1)[-1]}; give the path"
    return "", "no such file"


def _label_csvs(root: Path, columns) -> list[tuple[Path, pd.DataFrame]]:
    """Every label CSV (`columns.file`, or each .csv under root that has a path and a label
    column), as (file, rows with columns renamed to path, label[, subject], all strings, and
    the `columns.attributes` columns as they are)."""
    named = root / columns.file if columns.file else None
    if named is not None and not named.is_file():
        raise FerError(f"data.label_csv.file {columns.file!r} is not a file in {root}")
    found, seen = [], []
    for csv in [named] if named else [p for p in files(root) if p.suffix.lower() == ".csv"]:
        try:
            table = pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            if named:
                raise FerError(f"cannot read data.label_csv.file {columns.file!r}: {e}") from None
            continue
        picked = {role: _column(table.columns, getattr(columns, role), names) for role, names in CSV_COLUMNS.items()}
        seen.append(f"{csv.relative_to(root).as_posix()} ({', '.join(table.columns)})")
        if picked["path"] and picked["label"] and columns.subject and not picked["subject"]:
            raise FerError(
                f"data.label_csv.subject {columns.subject!r} is not a column of {csv.name} ({', '.join(table.columns)})"
            )
        if picked["path"] and picked["label"]:
            if missing := [a for a in columns.attributes if a not in table.columns]:
                raise FerError(
                    f"data.label_csv.attributes {', '.join(missing)}: not a column of {csv.name} "
                    f"({', '.join(table.columns)})"
                )
            keep = {c: role for role, c in picked.items() if c} | {a: a for a in columns.attributes}
            found.append((csv, table[list(keep)].rename(columns=keep)))
    if not found:
        raise FerError(
            f"no label CSV in {root}: data.format=csv needs a .csv with an image path column "
            f"({', '.join(CSV_COLUMNS['path'][:4])}, ...) and a label column "
            f"({', '.join(CSV_COLUMNS['label'][:4])}, ...); name yours with data.label_csv.file, "
            f".path, .label, .subject. Found: {'; '.join(seen) or 'no .csv file'}"
        )
    return found


def _column(present, given: str, usual: tuple[str, ...]) -> str | None:
    """The column `given` names (any case), or else the first of the `usual` names present."""
    lower = {c.strip().lower(): c for c in present}
    if given:
        return lower.get(given.strip().lower())
    return next((lower[n] for n in usual if n in lower), None)
