"""The starter model: a model for real faces that ships in the repository's `starter/` folder.

`make starter` trains it on FER2013 and packs it there (`fer.use.pack`): a checkpoint and its
ONNX export (weights stored as float16), a model card and the files' SHA-256 hashes. It is
what `fer-predict` and `fer-video` answer with before a model of the user's own exists, and
the name `starter` is accepted wherever a checkpoint is (`train.init_from=starter`,
`fer-predict --checkpoint starter`, `fer-crossdataset starter ...`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fer import FerError

NAME = "starter"  # how params and commands name it
DIR = Path(__file__).resolve().parents[2] / "starter"  # beside src/ in the repository
CHECKPOINT = DIR / "starter.pt"
ONNX = DIR / "starter.onnx"
CARD = DIR / "MODEL_CARD.md"
HASHES = DIR / "SHA256SUMS"  # `sha256sum -c` reads it too


def resolve(checkpoint: str | Path) -> str:
    """The path a checkpoint name stands for: `starter` is the shipped starter's checkpoint,
    anything else is a path as given."""
    if str(checkpoint) != NAME:
        return str(checkpoint)
    if not CHECKPOINT.is_file():
        raise FerError(
            f"the starter model is missing from {DIR}; `git checkout -- {DIR.name}` restores it, "
            f"`make starter` trains it again"
        )
    return str(CHECKPOINT)


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def recorded_hashes(folder: str | Path = DIR) -> dict[str, str]:
    """File name -> SHA-256 as `SHA256SUMS` in `folder` records them."""
    lines = (Path(folder) / HASHES.name).read_text().splitlines()
    return {name.strip().lstrip("*"): digest for digest, name in (line.split(maxsplit=1) for line in lines if line)}


def verify(folder: str | Path = DIR) -> None:
    """A FerError naming the file unless every file `SHA256SUMS` lists hashes as recorded."""
    for name, digest in recorded_hashes(folder).items():
        path = Path(folder) / name
        if not path.is_file() or sha256(path) != digest:
            raise FerError(
                f"{path} is not the starter model that was packed (its SHA-256 differs from "
                f"{HASHES.name}); `git checkout -- {Path(folder).name}` restores it"
            )
