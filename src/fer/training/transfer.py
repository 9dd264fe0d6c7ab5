"""Starting a run from another run's checkpoint (`train.init_from`): the backbone carried as
is, the classifier rows of shared classes kept, the first layer adapted to the run's channels,
and the ways the run's faces differ from the ones the checkpoint learned on, in words."""

from __future__ import annotations

import torch
from torch import nn

from fer import FerError
from fer.checkpoint import Checkpoint
from fer.data.labels import canonical
from fer.models import layer_names


def check_architecture(ckpt: Checkpoint, name: str, origin: str) -> None:
    """A FerError naming both unless the checkpoint holds a `name` (weights carry over only
    between the same architecture; classes, channels and input size may differ)."""
    if ckpt.model_name.split(".")[0] != name.split(".")[0]:
        raise FerError(
            f"{origin} holds a {ckpt.model_name}, but this run trains a {name}: weights carry over "
            f"only within one architecture; set train.model={ckpt.model_name}, or start from a "
            f"checkpoint of a {name}"
        )


def preprocessing_gaps(ckpt: Checkpoint, size: int, grayscale: bool, face_crop: bool, align: bool) -> list[str]:
    """How the faces a run caches differ from those the checkpoint `ckpt` was trained on (size,
    channels, framing, alignment), each in words; [] when they match. `carry` bridges each
    (channels are adapted, a CNN takes any size), so these are facts to know, not errors."""
    gaps, channels, old_size, face = [], ckpt.channels, ckpt.size, ckpt.face
    if old_size != size:
        gaps.append(f"it saw {old_size} px faces, this run caches {size} px")
    if (channels == 1) != grayscale:
        gaps.append(
            f"it is {'greyscale' if channels == 1 else 'RGB'} and this run "
            f"{'greyscale' if grayscale else 'RGB'}: its first layer is adapted"
        )
    if bool(face) != face_crop:
        gaps.append(
            "its faces were "
            + ("cut from photos by the detector" if face else "whole face crops")
            + ", this run's "
            + ("are cut by the detector" if face_crop else "are whole images")
        )
    if bool(face and face.get("align")) != align:
        gaps.append(
            f"its faces were {'' if face and face.get('align') else 'not '}aligned, this run's "
            f"{'are' if align else 'are not'}"
        )
    return gaps


def carry(model: nn.Module, name: str, classes: list[str], ckpt: Checkpoint, origin: str) -> dict:
    """Load a pipeline checkpoint of the same architecture into `model`, whatever its classes,
    channels or input size (convolutional models take any size).

    The backbone is copied as is, its first convolution summed to greyscale or repeated to
    RGB as timm does for `in_chans`; of the classifier, the rows of the classes both share
    (canonical names) are copied and the rows of classes new to `model` keep their fresh
    initialisation. Returns what was carried, for the checkpoint and the model card.
    origin: the checkpoint's path as the user gave it (e.g. models/fer2013.pt), for messages and the record.
    """
    check_architecture(ckpt, name, origin)
    old = [canonical(c) or c for c in ckpt.classes]
    rows = {i: old.index(canonical(c) or c) for i, c in enumerate(classes) if (canonical(c) or c) in old}
    source, target = ckpt.weights, model.state_dict()
    if set(source) != set(target):
        odd = sorted(set(source) ^ set(target))
        raise FerError(
            f"{origin} does not fit this run's {name}: {len(odd)} tensor(s) are in one and not the "
            f"other (e.g. {odd[0]}); it was saved by another version of timm or the model"
        )
    heads = _head_keys(model)
    stems = {f"{n}.weight" for n in layer_names(model.pretrained_cfg.get("first_conv"))}
    loaded = {}
    for key, value in target.items():
        src = source[key]
        if key in heads and src.shape[1:] == value.shape[1:]:
            src = _rows(value, src, rows)
        elif key in stems and src.dim() == 4 and src.shape[1] != value.shape[1]:
            src = _adapt_channels(src, value.shape[1])
        if src.shape != value.shape:
            raise FerError(
                f"{origin} does not fit this run's {name}: {key} has shape {tuple(src.shape)} there and "
                f"{tuple(value.shape)} here"
            )
        loaded[key] = src.to(value.dtype)
    model.load_state_dict(loaded)
    new_channels = next((target[k].shape[1] for k in stems if k in target), ckpt.channels)
    return _report(ckpt, origin, classes, rows, [ckpt.channels, new_channels])


def _report(ckpt: Checkpoint, origin: str, classes: list[str], rows: dict[int, int], channels: list[int]) -> dict:
    """What `carry` did, as plain data (it travels in the checkpoint)."""
    ours = {canonical(c) or c for c in classes}
    return {
        "from": origin,
        "model_name": ckpt.model_name,
        "data_source": ckpt.data.get("source", ""),
        "input_size": list(ckpt.data_config["input_size"]),
        "channels": channels,
        "rows_carried": len(rows),
        "rows": len(classes),
        "carried": [classes[i] for i in rows],
        "new": [c for i, c in enumerate(classes) if i not in rows],
        "dropped": [c for c in ckpt.classes if (canonical(c) or c) not in ours],
    }


def _head_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the classifier(s) timm's `get_classifier()` names (two for distilled models)."""
    heads = model.get_classifier()
    heads = heads if isinstance(heads, (tuple, list)) else (heads,)
    names = {n for n, m in model.named_modules() if any(m is h for h in heads)}
    return {k for k in model.state_dict() if k.rsplit(".", 1)[0] in names}


def head_parameters(model: nn.Module) -> set[nn.Parameter]:
    """The parameters of the classifier(s): what the new task trains first."""
    keys = _head_keys(model)
    return {p for k, p in model.named_parameters() if k in keys}


def _rows(fresh: torch.Tensor, old: torch.Tensor, rows: dict[int, int]) -> torch.Tensor:
    """`fresh` with row i replaced by `old`'s row rows[i] (a classifier's weight or bias)."""
    out = fresh.clone()
    if rows:
        out[torch.tensor(list(rows))] = old[torch.tensor(list(rows.values()))].to(out.dtype)
    return out


def _adapt_channels(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """A first convolution's weight for `in_chans` input channels, as timm adapts pretrained
    weights: RGB summed to greyscale (`timm.models.adapt_input_conv`); greyscale repeated to
    every channel and scaled so that a grey image gives the same response."""
    from timm.models import adapt_input_conv

    if weight.shape[1] == 1:
        return weight.repeat(1, in_chans, 1, 1) / in_chans
    try:
        return adapt_input_conv(in_chans, weight.float()).to(weight.dtype)
    except NotImplementedError:
        raise FerError(f"timm cannot adapt a first layer of {weight.shape[1]} channels to {in_chans}") from None
