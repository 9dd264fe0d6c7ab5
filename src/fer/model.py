"""Building a timm classifier, and saving/loading checkpoints that describe themselves.

A checkpoint holds everything needed to rebuild and apply the model without the
pipeline's params: weights, timm name, class names, the data config (input size,
channels, mean/std), the params of the run, the epoch and the optimizer state.
"""

from __future__ import annotations

import difflib
import pickle
from pathlib import Path

import numpy as np
import timm
import torch
from torch import nn

from fer import FerError
from fer.io import atomic_path


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
        raise FerError(f"train.weights {weights!r} could not be loaded into {name} ({_reason(e)}); it must hold "
                       f"that model's weights (a timm .safetensors or .pth state dict)") from None
    cfg = model.pretrained_cfg
    heads = _names(cfg.get("classifier"))  # the layers timm leaves new (all heads of distilled models)
    # Weights drawn at random; a constant start (zeros, ones) could equal a file's values.
    body = [k for k, p in model.named_parameters()
            if p.dim() > 1 and not (fresh[k] == fresh[k].flatten()[0]).all()
            and not any(k == h or k.startswith(h + ".") for h in heads)]
    left = [k for k in body if torch.equal(model.get_parameter(k).detach(), fresh[k])]
    stems = _names(cfg.get("first_conv"))
    if left and kwargs["in_chans"] != 3 and all(k.rsplit(".", 1)[0] in stems for k in left):
        raise FerError(f"timm could not fold {name}'s first layer ({left[0]}) to {kwargs['in_chans']} channel(s), "
                       f"so it would train from random values; set preprocess.grayscale=false or use another model")
    if left:
        raise FerError(f"train.weights {weights!r} holds no weights for {len(left)} of {name}'s {len(body)} weight "
                       f"tensors (e.g. {left[0]}), which would train from random values; it must hold that "
                       f"model's weights under timm's names (a timm .safetensors or .pth state dict)")
    return model


def _names(value) -> tuple[str, ...]:
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


def save_checkpoint(ckpt: dict, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint describes; returns (model in eval mode, checkpoint)."""
    # weights_only: a checkpoint is data, never code to run.
    if not Path(path).is_file():
        raise FerError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as e:
        raise FerError(f"refusing to load {path}: it holds more than weights and plain data "
                       f"({str(e).splitlines()[0][:200]})") from None
    model = create(ckpt["model_name"], len(ckpt["classes"]), ckpt["data_config"]["input_size"][0])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt


def to_input(x: torch.Tensor, cfg: dict, device: torch.device) -> torch.Tensor:
    """uint8 (B, C, H, W) batch -> normalised float batch on `device`, channels_last."""
    mean = torch.tensor(cfg["mean"], device=device).view(1, -1, 1, 1) * 255
    std = torch.tensor(cfg["std"], device=device).view(1, -1, 1, 1) * 255
    x = x.to(device, non_blocking=True)
    return ((x.float() - mean) / std).contiguous(memory_format=torch.channels_last)


def flip_average(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class probabilities of `x` averaged with those of its mirror image (test-time
    augmentation: a mirrored face shows the same expression)."""
    return (model(x).float().softmax(1) + model(x.flip(3)).float().softmax(1)) / 2


@torch.inference_mode()
def predict(model: nn.Module, images, cfg: dict, device: torch.device, batch_size: int = 256,
            tta: str = "none") -> torch.Tensor:
    """Logits (N, classes) on the CPU for uint8 `images` (N, C, H, W: an array, a memory-mapped
    cache or a tensor already on `device`), in eval mode. tta "flip": the log of `flip_average`'s
    probabilities, which softmax, argmax and cross-entropy read as they read logits."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        x = to_input(x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x)), cfg, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out.append(flip_average(model, x).log() if tta == "flip" else model(x).float())
    model.train(was_training)
    return torch.cat(out).cpu() if out else torch.empty(0, 0)
