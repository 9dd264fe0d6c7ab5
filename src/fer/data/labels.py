"""One class vocabulary for every dataset, so runs on different data compare."""

from __future__ import annotations

import difflib
import re

# The seven basic expressions that KDEF, FER2013 and most datasets label.
BASIC = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
# The vocabulary: the basic seven and contempt (FER+, CK+, AffectNet, RaFD), alphabetical, as
# FER2013's class folders sort. A run's classes are those of its data in this order.
CLASSES = ("angry", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise")

# KDEF expression codes, as in AF01ANS.JPG.
KDEF_CODES = {
    "AF": "fear",
    "AN": "angry",
    "DI": "disgust",
    "HA": "happy",
    "NE": "neutral",
    "SA": "sad",
    "SU": "surprise",
}
# KDEF head angles: full left, half left, straight, half right, full right.
KDEF_ANGLES = ("FL", "HL", "S", "HR", "FR")

# Names datasets use for the same class (lower case); the canonical names map to themselves.
# "suprise" is a misspelling that circulating copies of FER2013 and CK+ use as a folder name.
ALIASES = {
    "angry": ("anger", "an", "mad"),
    "contempt": ("contemptuous",),
    "disgust": ("disgusted", "disgusting", "di"),
    "fear": ("afraid", "fearful", "scared", "af", "fe"),  # af: KDEF's code, fe: JAFFE's
    "happy": ("happiness", "joy", "ha", "smile"),
    "neutral": ("neutrality", "calm", "ne"),
    "sad": ("sadness", "sa"),
    "surprise": ("surprised", "suprise", "su"),
}
_LOOKUP = {alias: name for name, aliases in ALIASES.items() for alias in (name, *aliases)}

# fer2013.csv's `emotion` column.
FER2013_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# The published class maps (label code -> class) of datasets that label by number (folder names or a label
# column).
CLASS_MAPS = {
    "rafdb": dict(enumerate(("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral"), start=1)),
    "affectnet": dict(enumerate(("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt"))),
    "fer2013": dict(enumerate(FER2013_EMOTIONS)),
    "ckplus": dict(enumerate(("neutral", "angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"))),
}
CLASS_MAPS = {name: {str(code): label for code, label in table.items()} for name, table in CLASS_MAPS.items()}

# Conventions of datasets that write the label and the person in each file name, for
# data.format filenames: preset name -> (data.label_pattern, data.subject_pattern).
NAME_PATTERNS = {
    "jaffe": (r"^[A-Za-z]{2}\.([A-Za-z]{2})\d*\.", r"^([A-Za-z]{2})\."),  # KA.AN1.39.tiff: person KA, AN (angry)
    "rafd": (
        r"^Rafd\d+_\d+_[A-Za-z]+_[A-Za-z]+_([a-z]+)_",
        r"^Rafd\d+_(\d+)_",
    ),  # ..._01_Caucasian_female_angry_frontal
}


def canonical(name: str) -> str | None:
    """The canonical class for a folder or code `name` (any case), or None if it is not one."""
    return _LOOKUP.get(name.strip().lower())


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]


def classes_in(name: str) -> set[str]:
    """Every class a folder name or label names: the whole name, or any whole word of it,
    through the alias table, case-insensitively.

    Words are split at anything but letters and digits, so "1 - Happy", "03_sad" and
    "Happy (2)" each name one class; a word may carry a number ("happy2") only when its
    letters are a word of 3 or more, so short codes count alone ("SA" does, "AF01" and the
    "ha" inside "chair" do not).
    """
    whole = canonical(name)
    if whole:
        return {whole}
    found = set()
    for token in _tokens(name):
        core = token.strip("0123456789")
        label = canonical(token) or (canonical(core) if len(core) >= 3 else None)
        if label:
            found.add(label)
    return found


def plain_name(name: str) -> str:
    """A class name for a folder or label outside the vocabulary: its words, lower case,
    without numbering ("8 - Contempt" -> "contempt")."""
    return " ".join(t for t in _tokens(name) if not t.isdigit()) or name.strip().lower()


def near_miss(name: str) -> str | None:
    """The class that a word of `name` looks like a misspelling of ("Hapy" -> happy), else None."""
    long_aliases = [a for a in _LOOKUP if len(a) >= 4]
    for token in _tokens(name):
        close = difflib.get_close_matches(token, long_aliases, n=1, cutoff=0.8) if len(token) >= 4 else []
        if close:
            return _LOOKUP[close[0]]
    return None


def label_key(value) -> str:
    """A label as a lookup key: trimmed, lower case, and a number as its integer
    ("01", 1, "3.0000000e+00" -> "1", "1", "3")."""
    text = str(value).strip().lower()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def read_class_map(class_map: str | dict) -> dict[str, str] | None:
    """The class map that `data.class_map` names, keyed by `label_key`: a CLASS_MAPS preset, or
    the user's own mapping with each class through the alias table; None for "" (none)."""
    if not class_map:
        return None
    if isinstance(class_map, str):
        return CLASS_MAPS[class_map]
    return {label_key(k): canonical(str(v)) or plain_name(str(v)) for k, v in class_map.items()}
