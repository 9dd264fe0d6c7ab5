"""Reading a raw dataset folder into one table of images, whatever the dataset.

Every reader returns (images, skipped): images has one row per usable image with `path`
(relative to the root; `<file>.csv#<row>` for an image stored as pixels in a CSV),
`label` (canonical class name), `subject`, `session`, `sex`, `angle` (empty where the
dataset does not say) and `official` (the split the dataset itself assigns, or empty);
`raw_label` (the label as the dataset writes it: class folder name, label column value,
code); `digest` (a hash of the file's bytes or the CSV row's pixels, to find repeated
images); `votes` (FER+: each expression's annotator votes, "angry=0 contempt=1 ..."); skipped
lists every other file with the reason.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from pathlib import Path

import pandas as pd

from fer import FerError
from fer.data import ferplus, filenames, kdef
from fer.data.labels import (
    BASIC,
    CLASS_MAPS,
    CLASSES,
    FER2013_EMOTIONS,
    canonical,
    classes_in,
    label_key,
    near_miss,
    plain_name,
    read_class_map,
)

COLUMNS = ["path", "label", "subject", "session", "sex", "angle", "official", "raw_label", "digest", "votes"]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
# FER2013's file-name prefixes (and its CSV's Usage column) carry the challenge's own split.
FER2013_USAGE = {"training": "train", "publictest": "val", "privatetest": "test"}
SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def scan(root: str | Path, data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read `root` as `data.format` (kdef, fer2013, folders, csv, ckplus, ferplus or filenames);
    see the module docstring."""
    root = Path(root)
    wanted = {canonical(c) or c.lower() for c in data.classes}
    images, skipped = _read(root, data)
    if data.format == "kdef":
        missing = sorted((wanted or set(BASIC)) - set(images["label"]))
        if len(images) and missing:
            raise FerError(
                f"no KDEF images of {', '.join(missing)}; add them, or train on the classes present with data.classes"
            )
    if data.format != "kdef" and len(images) and not wanted and not images["label"].isin(CLASSES).any():
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


def _read(root: Path, data) -> tuple[pd.DataFrame, pd.DataFrame]:
    class_map = read_class_map(data.class_map)
    if data.format == "kdef":
        images, skipped = kdef.scan(root)
        images["raw_label"] = [kdef.NAME.fullmatch(Path(p).name)["code"].upper() for p in images["path"]]
        return images, skipped
    if data.format == "fer2013":
        return scan_fer2013(root)
    if data.format == "csv":
        return scan_csv(root, data.label_csv, class_map)
    if data.format == "ckplus":
        return scan_ckplus(root, class_map or CLASS_MAPS["ckplus"], data.ckplus_frames, data.ckplus_neutral)
    if data.format == "ferplus":
        return ferplus.scan(root)
    if data.format == "filenames":
        return scan_filenames(root, data.label_pattern, data.subject_pattern, class_map)
    return scan_folders(root, data.subject_pattern, class_map)


def scan_filenames(
    root: Path, label_pattern: str, subject_pattern: str, class_map: dict[str, str] | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Label and person from each image's file name (`fer.data.filenames`); split folders
    (train/, test/, ...) on the way give the dataset's own split."""
    files = _files(root)
    others = [
        (f.relative_to(root).as_posix(), "not an image file") for f in files if f.suffix.lower() not in IMAGE_SUFFIXES
    ]
    found, skipped = filenames.scan(
        root, [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES], label_pattern, subject_pattern, class_map
    )
    found["official"] = [_split_folder(root / p, root) for p in found["path"]]
    return found.reindex(columns=COLUMNS), pd.concat(
        [skipped, pd.DataFrame(others, columns=["path", "reason"])], ignore_index=True
    )


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
            f"{what}s {_some(numbers)} are numbers: say what they mean with data.class_map, "
            f"a published class map ({', '.join(CLASS_MAPS)}; e.g. -S data.class_map=rafdb) "
            "or your own (-S 'data.class_map={1: surprise, 2: fear}')"
        )
    elif numbers:
        problems.append(f"{what}s {_some(numbers)} are not in data.class_map (it maps {', '.join(class_map)})")
    if twice:
        problems.append(f"{what}s {_some(twice)} name two classes: rename them or map them with data.class_map")
    if misspelt:
        problems.append(
            f"{what}s {_some(misspelt)} look like misspelt classes: rename them or map them with data.class_map"
        )
    if problems:
        raise FerError("; ".join(problems))
    return mapping


def _some(names: list[str], n: int = 10) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def class_map_used(images: pd.DataFrame) -> dict[str, str]:
    """The mapping a scan used, label as written -> class, codes in numeric order (for metrics/split.json)."""
    pairs = images.loc[images["raw_label"] != "", ["raw_label", "label"]].drop_duplicates()
    ordered = sorted(
        zip(pairs["raw_label"], pairs["label"]),
        key=lambda p: (not p[0].isdigit(), int(p[0]) if p[0].isdigit() else 0, p[0]),
    )
    return dict(ordered)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _split_folder(file: Path, root: Path) -> str:
    """train/val/test when a folder between root and the file is named like one, else ""."""
    for part in file.relative_to(root).parts[:-1]:
        if part.lower() in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part.lower()]
    return ""


def scan_folders(
    root: Path, subject_pattern: str = "", class_map: dict[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`<root>/[<split>/]<class>/<image>`: the class is the image's folder, through `map_labels`.

    class_map: `data.class_map` as read, for numeric folders. subject_pattern: a regex whose
    one group, searched in the file name, is the subject id; a file it does not match is
    skipped.
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
        row = {"path": rel, "raw_label": file.parent.name, "official": _split_folder(file, root)}
        if pattern:
            m = pattern.search(file.name)
            if not m:
                skipped.append((rel, f"data.subject_pattern {subject_pattern!r} does not match the file name"))
                continue
            row["subject"] = m.group(1)
        rows.append(row)
    empty = [
        d
        for d in root.rglob("*")
        if d.is_dir()
        and len(classes_in(d.name)) == 1
        and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.rglob("*"))
    ]
    if empty:
        raise FerError(
            f"class folder {empty[0].relative_to(root)} holds no images; add some, remove the folder, "
            "or leave the class out with data.classes"
        )
    if pattern and not rows and skipped:
        raise FerError(
            f"data.subject_pattern {subject_pattern!r} matches no file name (e.g. {Path(skipped[0][0]).name})"
        )
    csvs = [f for f, _ in skipped if f.lower().endswith(".csv")]
    if not rows and csvs:
        raise FerError(
            f"no image is inside a class folder, and {_some(csvs, 3)} may hold the labels: "
            "set data.format=csv to read them (data.format=fer2013 for FER2013's fer2013.csv)"
        )
    images = pd.DataFrame(rows, columns=COLUMNS)
    images["label"] = images["raw_label"].map(map_labels(images["raw_label"], class_map, "class folder"))
    return images, pd.DataFrame(skipped, columns=["path", "reason"])


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
    for i, emotion, pixels, usage in zip(
        table.index, table["emotion"], table["pixels"], table.get("usage", pd.Series("", index=table.index))
    ):
        path = f"{rel}#{i}"
        if not str(emotion).strip().isdigit() or int(emotion) >= len(FER2013_EMOTIONS):
            skipped.append((path, f"emotion {emotion!r} is not 0-6"))
        elif len(str(pixels).split()) != 48 * 48:
            skipped.append((path, f"pixels holds {len(str(pixels).split())} values, not 48x48"))
        else:
            official = FER2013_USAGE.get(str(usage).strip().lower(), "")
            rows.append(
                {
                    "path": path,
                    "label": FER2013_EMOTIONS[int(emotion)],
                    "official": official,
                    "raw_label": str(int(emotion)),
                    "digest": hashlib.sha1(str(pixels).encode()).hexdigest(),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(skipped, columns=["path", "reason"])


# Column names label CSVs use, tried in this order when data.label_csv leaves one empty.
CSV_COLUMNS = {
    "path": ("path", "image", "image_path", "image_name", "file", "filename", "file_name", "img", "pth", "name"),
    "label": ("label", "emotion", "expression", "class", "category", "target", "labels"),
    "subject": ("subject", "subject_id", "person", "person_id", "identity"),
}


def scan_csv(root: Path, columns, class_map: dict[str, str] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Images named by the rows of label CSVs (`data.label_csv`): image path, label (a class
    name, alias or code read through `map_labels`) and, if present, subject.

    A path is looked up beside its CSV, then under root, then by its file name anywhere
    under root (copies that list bare names of files kept in class folders). A row whose
    file is missing is skipped with its reason; so is every image no row names. Raises
    FerError if no CSV has the columns, or if no row names an image.
    """
    files = {p.relative_to(root).as_posix() for p in _files(root)}
    by_name: dict[str, list[str]] = {}
    for rel in sorted(files):
        by_name.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
    rows, skipped, used = [], [], set()
    attributes = list(dict.fromkeys(columns.attributes))
    for csv, table_rows in _label_csvs(root, columns):
        base = csv.parent.relative_to(root).as_posix()
        used.add(csv.relative_to(root).as_posix())
        for i, row in table_rows.iterrows():
            where = f"{csv.relative_to(root).as_posix()} line {i + 2}"
            rel, reason = _csv_image(row["path"], base, files, by_name)
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
                    "official": _split_folder(root / rel, root),
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
        (f, "not an image file" if Path(f).suffix.lower() not in IMAGE_SUFFIXES else "no row of the label CSV names it")
        for f in sorted(files - used)
    ]
    return images, pd.DataFrame(skipped, columns=["path", "reason"])


def _csv_image(value: str, base: str, files: set[str], by_name: dict[str, list[str]]) -> tuple[str, str | None]:
    """(path under root, None) for the image a CSV row names, or ("", why not)."""
    value = value.strip().replace("\\", "/")
    if not value:
        return "", "no image path"
    for candidate in (f"{base}/{value}", value.lstrip("/")):
        rel = posixpath.normpath(candidate)
        if rel in files:
            return (rel, None) if Path(rel).suffix.lower() in IMAGE_SUFFIXES else ("", "not an image file")
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
    for csv in [named] if named else [p for p in _files(root) if p.suffix.lower() == ".csv"]:
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


# The original CK+ release: cohn-kanade-images/S005/001/S005_001_00000011.png, and for the
# labelled sequences Emotion/S005/001/S005_001_00000011_emotion.txt holding one code.
CKPLUS_FRAME = re.compile(r"(?:^|/)(S\d+)/(\d+)/[^/]+$", re.IGNORECASE)
CKPLUS_EMOTION = re.compile(r"(?:^|/)(S\d+)/(\d+)/[^/]*_emotion\.txt$", re.IGNORECASE)


def scan_ckplus(
    root: Path, class_map: dict[str, str], last: int, first_neutral: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The CK+ release: the `last` frames of each labelled sequence as its expression (by
    `class_map`, CK+'s Emotion codes unless data.class_map says otherwise) and, if
    `first_neutral`, its first frame as neutral; the subject is the S### folder.

    skipped lists each sequence without an Emotion file (once, with its frame count), label
    files that cannot be read or have no frames, and images outside S###/###/; the frames
    between the first and the last ones are not used, and CK+'s landmark and FACS text
    files are ignored.
    """
    frames, codes, skipped = _ckplus_files(root)
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


def _ckplus_files(root: Path) -> tuple[dict, dict, list]:
    """(frames, codes, skipped): the image files of each (subject, sequence), its Emotion
    code as (label file, label_key), and the files that are neither."""
    frames: dict[tuple[str, str], list[str]] = {}
    codes: dict[tuple[str, str], tuple[str, str]] = {}
    skipped = []
    for file in _files(root):
        rel = file.relative_to(root).as_posix()
        if m := CKPLUS_EMOTION.search(rel):
            text = file.read_text(errors="replace").strip()
            try:
                codes[(m[1].upper(), m[2])] = (rel, label_key(float(text.split()[0])))
            except (ValueError, IndexError):
                skipped.append((rel, f"not a CK+ Emotion code: {text[:40]!r}"))
        elif file.suffix.lower() == ".txt":
            continue  # CK+'s landmarks and FACS codes
        elif file.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((rel, "not an image file"))
        elif m := CKPLUS_FRAME.search(rel):
            frames.setdefault((m[1].upper(), m[2]), []).append(rel)
        else:
            skipped.append((rel, "not a CK+ frame (cohn-kanade-images/S###/###/<image>)"))
    return frames, codes, skipped
