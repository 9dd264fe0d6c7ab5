"""One class vocabulary for every dataset, so runs on different data compare."""

from __future__ import annotations

# Alphabetical, as FER2013's class folders sort; every checkpoint, metric and plot uses it.
CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

# KDEF expression codes, as in AF01ANS.JPG.
KDEF_CODES = {
    "AF": "fear", "AN": "angry", "DI": "disgust", "HA": "happy",
    "NE": "neutral", "SA": "sad", "SU": "surprise",
}
# KDEF head angles: full left, half left, straight, half right, full right.
KDEF_ANGLES = ("FL", "HL", "S", "HR", "FR")

# Names datasets use for the same class (lower case); the canonical names map to themselves.
ALIASES = {
    "angry": ("anger", "an", "mad"),
    "disgust": ("disgusted", "disgusting", "di"),
    "fear": ("afraid", "fearful", "scared", "af"),
    "happy": ("happiness", "joy", "ha", "smile"),
    "neutral": ("neutrality", "calm", "ne"),
    "sad": ("sadness", "sa"),
    "surprise": ("surprised", "su"),
}
_LOOKUP = {alias: name for name, aliases in ALIASES.items() for alias in (name, *aliases)}


def canonical(name: str) -> str | None:
    """The canonical class for a folder or code `name` (any case), or None if it is not one."""
    return _LOOKUP.get(name.strip().lower())
