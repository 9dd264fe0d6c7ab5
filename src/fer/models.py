"""Building timm classifiers: by name, from ImageNet weights (the hub or a local file), and
the input size and normalisation each expects."""

from __future__ import annotations

import difflib
from pathlib import Path

import timm
import torch
from torch import nn

from fer import FerError


def check_name(name: str) -> None:
    """A FerError, with the closest names, unless `name` (optionally `name.tag`) is a timm model."""
    base = name.split(".")[0]
    if base not in timm.list_models():
        close = difflib.get_close_matches(base, timm.list_models(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see timm.list_models()"
        raise FerError(f"train.model {name!r} is not a timm model{hint}")


def create(name: str, num_classes: int, in_chans: int = 3, pretrained: bool = False, weights: str = "") -> nn.Module:
    """`timm.create_model` with errors a user can act on.

    pretrained: ImageNet weights from the Hugging Face hub (timm's own download path).
    weights: a local weights file (.pth/.safetensors) used instead of the hub.
    The classifier is always new, sized for `num_classes`; `in_chans=1` folds the
    pretrained first layer to greyscale.
    """
    check_name(name)
    kwargs = dict(num_classes=num_classes, in_chans=in_chans)
    if weights:
        return _from_file(name, weights, kwargs)
    if not pretrained:
        return timm.create_model(name, **kwargs)
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        raise FerError(
            f"could not get pretrained weights for {name} ({_reason(e)}). "
            "Without network, save the weights to a file and set train.weights=PATH, "
            "or train from scratch with train.pretrained=false."
        ) from None


def _reason(e: Exception) -> str:
    return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"


def _from_file(name: str, weights: str, kwargs: dict) -> nn.Module:
    """timm's own loading of a local weights file, checked: timm loads it non-strictly (the
    classifier is new), so a file whose keys name other layers (another architecture, a
    `model.` prefix from a training framework) would load nothing and train from random
    weights without a word. A weight left as initialised means the file did not cover it."""
    if not Path(weights).is_file():
        raise FerError(f"train.weights {weights!r} is not a file")
    rng = torch.get_rng_state()
    fresh = timm.create_model(name, **kwargs).state_dict()
    torch.set_rng_state(rng)  # the same initial weights, and the run's random stream unchanged
    try:
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(weights)), **kwargs)
    except MemoryError:
        raise
    except Exception as e:  # whatever torch.load, safetensors or load_state_dict make of a file that is not weights
        raise FerError(
            f"train.weights {weights!r} could not be loaded into {name} ({_reason(e)}); it must hold "
            f"that model's weights (a timm .safetensors or .pth state dict)"
        ) from None
    cfg = model.pretrained_cfg
    heads = layer_names(cfg.get("classifier"))  # the layers timm leaves new (all heads of distilled models)
    # Weights drawn at random; a constant start (zeros, ones) could equal a file's values.
    body = [
        k
        for k, p in model.named_parameters()
        if p.dim() > 1
        and not (fresh[k] == fresh[k].flatten()[0]).all()
        and not any(k == h or k.startswith(h + ".") for h in heads)
    ]
    left = [k for k in body if torch.equal(model.get_parameter(k).detach(), fresh[k])]
    stems = layer_names(cfg.get("first_conv"))
    if left and kwargs["in_chans"] != 3 and all(k.rsplit(".", 1)[0] in stems for k in left):
        raise FerError(
            f"timm could not fold {name}'s first layer ({left[0]}) to {kwargs['in_chans']} channel(s), "
            f"so it would train from random values; set preprocess.grayscale=false or use another model"
        )
    if left:
        raise FerError(
            f"train.weights {weights!r} holds no weights for {len(left)} of {name}'s {len(body)} weight "
            f"tensors (e.g. {left[0]}), which would train from random values; it must hold that "
            f"model's weights under timm's names (a timm .safetensors or .pth state dict)"
        )
    return model


def layer_names(value) -> tuple[str, ...]:
    """A pretrained config's layer name or names as a tuple."""
    return (value,) if isinstance(value, str) else tuple(value or ())


def data_config(model: nn.Module, size: int, channels: int) -> dict:
    """Input size and normalisation for `model`, from timm's config for it.

    The size is the cached one (every timm CNN accepts it). A greyscale model gets the
    mean of timm's per-channel mean/std.
    """
    cfg = timm.data.resolve_model_data_config(model)
    mean, std = list(cfg["mean"]), list(cfg["std"])
    if channels != len(mean):
        mean, std = [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels
    return {"input_size": [channels, size, size], "mean": mean, "std": std}
