"""The state a killed training run resumes from, defined in one place.

`Progress` is what the epoch loop carries from one epoch to the next; the objects with a
`state_dict` (model, optimizer, scheduler) and the random number generators are the rest.
`save` writes all of it after every epoch and `restore` reads it back, so a resumed run
ends, on CPU, exactly as an uninterrupted one would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fer.io import atomic_path


@dataclass
class Progress:
    """The epoch loop's own state: one history row per epoch, the best checkpoint so far
    and its val accuracy, epochs since it, and whether early stopping has ended the run."""

    history: list[dict] = field(default_factory=list)
    best: dict | None = None
    best_acc: float = -1.0
    since_best: int = 0
    stopped: bool = False


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return the generator that orders the batches."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def save(path: str | Path, fingerprint: dict, progress: Progress, stateful: dict, generator: torch.Generator) -> None:
    """Write the whole training state to `path`. stateful: name -> object with `state_dict()`
    (the model, the optimizer, the scheduler); fingerprint: what the run is (params, data
    shapes), so that another run never resumes from it."""
    with atomic_path(path) as tmp:
        torch.save(
            {
                "fingerprint": fingerprint,
                "progress": {f.name: getattr(progress, f.name) for f in fields(progress)},
                **{name: obj.state_dict() for name, obj in stateful.items()},
                "rng": _rng_state(generator),
            },
            tmp,
        )


def restore(path: str | Path | None, fingerprint: dict, stateful: dict, generator: torch.Generator) -> Progress | None:
    """Load the state `save` wrote into `stateful` and the generators and return its
    progress, if `path` holds the state of this very run (same fingerprint); else None."""
    if not path or not Path(path).is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a state file that cannot be read is not worth stopping for
        tqdm.write(f"not resuming: cannot read {path} ({type(e).__name__}); starting from epoch 1")
        return None
    if saved.get("fingerprint") != fingerprint or "progress" not in saved:
        tqdm.write(f"not resuming from {path}: it belongs to other params or data; starting from epoch 1")
        return None
    for name, obj in stateful.items():
        obj.load_state_dict(saved[name])
    _set_rng_state(saved["rng"], generator)
    return Progress(**saved["progress"])


def _rng_state(generator: torch.Generator) -> dict:
    return {
        "torch": torch.get_rng_state(),
        "numpy": _np_state(np.random.get_state()),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        "generator": generator.get_state(),
    }


def _set_rng_state(rng: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(rng["torch"])
    np.random.set_state(_np_state(rng["numpy"]))
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    generator.set_state(rng["generator"])


def _np_state(state: tuple) -> tuple:
    """NumPy's global RNG state (timm's Mixup draws from it) in a form a weights-only
    checkpoint holds (a tensor instead of an array), and back."""
    name, keys, pos, has_gauss, cached = state
    keys = keys.numpy().astype(np.uint32) if isinstance(keys, torch.Tensor) else torch.from_numpy(keys.astype(np.int64))
    return name, keys, int(pos), int(has_gauss), float(cached)
