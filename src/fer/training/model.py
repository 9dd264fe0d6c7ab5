"""Building a timm classifier, and saving/loading checkpoints that describe themselves.

A checkpoint holds everything needed to rebuild and apply the model without the
pipeline's params: weights, timm name, class names, the data config (input size,
channels, mean/std), the params of the run, the epoch and the optimizer state.
"""

from __future__ import annotations

import difflib
import math
import pickle
from pathlib import Path

import numpy as np
import timm
import torch
from torch import nn

from fer import FerError
from fer.data.labels import canonical
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
        raise FerError(
            f"train.weights {weights!r} could not be loaded into {name} ({_reason(e)}); it must hold "
            f"that model's weights (a timm .safetensors or .pth state dict)"
        ) from None
    cfg = model.pretrained_cfg
    heads = _names(cfg.get("classifier"))  # the layers timm leaves new (all heads of distilled models)
    # Weights drawn at random; a constant start (zeros, ones) could equal a file's values.
    body = [
        k
        for k, p in model.named_parameters()
        if p.dim() > 1
        and not (fresh[k] == fresh[k].flatten()[0]).all()
        and not any(k == h or k.startswith(h + ".") for h in heads)
    ]
    left = [k for k in body if torch.equal(model.get_parameter(k).detach(), fresh[k])]
    stems = _names(cfg.get("first_conv"))
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


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """The checkpoint at `path` as data: a FerError if it is missing, is not a file torch.save
    wrote (random bytes, a truncated or failed download, an HTML error page), or holds code."""
    # weights_only: a checkpoint is data, never code to run.
    if not Path(path).is_file():
        raise FerError(f"checkpoint {path} not found" + (" (it is a folder)" if Path(path).is_dir() else ""))
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as e:
        if "allowed global" in str(e) or "allowlist" in str(e):  # a pickled object of some class: code
            raise FerError(
                f"refusing to load {path}: it holds more than weights and plain data ({_unpickle_reason(e)})"
            ) from None
        raise _unreadable(path, e) from None
    except MemoryError:
        raise
    except Exception as e:  # a broken zip, a file cut short, text (IndexError inside torch's reader), ...
        raise _unreadable(path, e) from None
    return _ours(ckpt, path)


CHECKPOINT_KEYS = ("model", "model_name", "classes", "data_config")  # what rebuilding the model reads


def _ours(ckpt, path: str | Path) -> dict:
    """`ckpt` if it is a checkpoint this pipeline wrote, else a FerError saying what it is."""
    if isinstance(ckpt, dict) and all(k in ckpt for k in CHECKPOINT_KEYS):
        return ckpt
    if isinstance(ckpt, dict) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise FerError(
            f"{path} holds weights alone ({len(ckpt)} tensors, e.g. torch.save(model.state_dict())), not "
            "a checkpoint of this pipeline: the model name, classes and data config that rebuild the "
            "model are missing. Predict with a checkpoint the train stage wrote (models/best.pt); to "
            "start a run from such weights, set train.weights to the file"
        )
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    raise FerError(
        f"{path} is not a checkpoint of this pipeline (no {', '.join(missing)}); use one the train "
        "stage wrote (models/best.pt)"
    )


def _unpickle_reason(e: Exception) -> str:
    lines = [line for line in str(e).splitlines() if "global" in line] or str(e).splitlines()
    return lines[0].strip()[:200]


def _unreadable(path: str | Path, e: Exception) -> FerError:
    size = Path(path).stat().st_size
    return FerError(
        f"{path} is not a readable PyTorch checkpoint: torch.load cannot read its {size:,} bytes "
        f"({type(e).__name__}). A download or copy cut short, or a file of another kind, looks like "
        "this: fetch or copy the checkpoint again"
    )


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint describes; returns (model in eval mode, checkpoint)."""
    ckpt = read_checkpoint(path, device)
    return build(ckpt, device), ckpt


def build(ckpt: dict, device: str | torch.device = "cpu") -> nn.Module:
    """The model a checkpoint (as data) describes, with its weights, on `device`, in eval mode."""
    model = create(ckpt["model_name"], len(ckpt["classes"]), ckpt["data_config"]["input_size"][0])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()


def to_input(x: torch.Tensor, cfg: dict, device: torch.device) -> torch.Tensor:
    """uint8 (B, C, H, W) batch -> normalised float batch on `device`, channels_last."""
    mean = torch.tensor(cfg["mean"], device=device).view(1, -1, 1, 1) * 255
    std = torch.tensor(cfg["std"], device=device).view(1, -1, 1, 1) * 255
    x = x.to(device, non_blocking=True)
    return ((x.float() - mean) / std).contiguous(memory_format=torch.channels_last)


def views(model: nn.Module, x: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """Logits (V, B, classes) of the views test-time augmentation scores: the batch itself,
    and with tta "flip" also its mirror image (a mirrored face shows the same expression)."""
    if tta == "flip":
        return torch.stack([model(x).float(), model(x.flip(3)).float()])
    return model(x).float()[None]


def log_probs(view_logits: torch.Tensor, temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Log class probabilities (B, classes) from `views`' logits: each view's softmax at
    `temperature` (calibration: above 1 softens over-confident answers), averaged over views."""
    logp = (view_logits / temperature).log_softmax(-1)
    return logp[0] if len(logp) == 1 else logp.logsumexp(0) - math.log(len(logp))


def temperature(ckpt: dict, tta: str) -> float:
    """The calibration temperature the train stage fitted for scoring as `tta` says (1: none)."""
    return float(ckpt.get("temperature", {}).get(tta, 1.0))


@torch.inference_mode()
def view_logits(
    model: nn.Module, images, cfg: dict, device: torch.device, batch_size: int = 256, tta: str = "none"
) -> torch.Tensor:
    """`views`' logits (V, N, classes) on the CPU for uint8 `images` (N, C, H, W: an array, a
    memory-mapped cache or a tensor already on `device`), in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size]
        x = to_input(x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x)), cfg, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out.append(views(model, x, tta))
    model.train(was_training)
    return torch.cat(out, 1).cpu() if out else torch.empty(1 + (tta == "flip"), 0, 0)


def predict(
    model: nn.Module,
    images,
    cfg: dict,
    device: torch.device,
    batch_size: int = 256,
    tta: str = "none",
    temperature: float = 1.0,
) -> torch.Tensor:
    """Log class probabilities (N, classes) of `images` (see `view_logits`), each face scored as
    `tta` says and softened by `temperature`; softmax, argmax and cross-entropy read them as
    they read logits."""
    return log_probs(view_logits(model, images, cfg, device, batch_size, tta), temperature)


def pipeline_checkpoint(path: str | Path) -> dict | None:
    """The checkpoint at `path` if it is one of this pipeline's (weights, model name, classes,
    data config), else None (e.g. a timm weights file, a .safetensors or a .pth state dict)."""
    if not path or not Path(path).is_file() or str(path).lower().endswith(".safetensors"):
        return None
    try:
        return read_checkpoint(path)
    except FerError:  # not a torch file, not plain data, or not ours: not ours either way
        return None


def check_architecture(ckpt: dict, name: str, origin: str) -> None:
    """A FerError naming both unless the checkpoint holds a `name` (weights carry over only
    between the same architecture; classes, channels and input size may differ)."""
    if ckpt["model_name"].split(".")[0] != name.split(".")[0]:
        raise FerError(
            f"{origin} holds a {ckpt['model_name']}, but this run trains a {name}: weights carry over "
            f"only within one architecture; set train.model={ckpt['model_name']}, or start from a "
            f"checkpoint of a {name}"
        )


def preprocessing_gaps(ckpt: dict, size: int, grayscale: bool, face_crop: bool, align: bool) -> list[str]:
    """How the faces a run caches differ from those the checkpoint `ckpt` was trained on (size,
    channels, framing, alignment), each in words; [] when they match. `carry` bridges each
    (channels are adapted, a CNN takes any size), so these are facts to know, not errors."""
    cfg, gaps = ckpt["data_config"], []
    channels, old_size = cfg["input_size"][0], cfg["input_size"][1]
    if old_size != size:
        gaps.append(f"it saw {old_size} px faces, this run caches {size} px")
    if (channels == 1) != grayscale:
        gaps.append(
            f"it is {'greyscale' if channels == 1 else 'RGB'} and this run "
            f"{'greyscale' if grayscale else 'RGB'}: its first layer is adapted"
        )
    face = cfg.get("face")
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


def carry(model: nn.Module, name: str, classes: list[str], ckpt: dict, origin: str) -> dict:
    """Load a pipeline checkpoint of the same architecture into `model`, whatever its classes,
    channels or input size (convolutional models take any size).

    The backbone is copied as is, its first convolution summed to greyscale or repeated to
    RGB as timm does for `in_chans`; of the classifier, the rows of the classes both share
    (canonical names) are copied and the rows of classes new to `model` keep their fresh
    initialisation. Returns what was carried, for the checkpoint and the model card.
    origin: the checkpoint's path as the user gave it (e.g. models/fer2013.pt), for messages and the record.
    """
    check_architecture(ckpt, name, origin)
    old = [canonical(c) or c for c in ckpt["classes"]]
    rows = {i: old.index(canonical(c) or c) for i, c in enumerate(classes) if (canonical(c) or c) in old}
    source, target = ckpt["model"], model.state_dict()
    if set(source) != set(target):
        odd = sorted(set(source) ^ set(target))
        raise FerError(
            f"{origin} does not fit this run's {name}: {len(odd)} tensor(s) are in one and not the "
            f"other (e.g. {odd[0]}); it was saved by another version of timm or the model"
        )
    heads = _head_keys(model)
    stems = {f"{n}.weight" for n in _names(model.pretrained_cfg.get("first_conv"))}
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
    channels = ckpt["data_config"]["input_size"][0]
    new_channels = next((target[k].shape[1] for k in stems if k in target), channels)
    return _report(ckpt, origin, classes, rows, [channels, new_channels])


def _report(ckpt: dict, origin: str, classes: list[str], rows: dict[int, int], channels: list[int]) -> dict:
    """What `carry` did, as plain data (it travels in the checkpoint)."""
    ours = {canonical(c) or c for c in classes}
    return {
        "from": origin,
        "model_name": ckpt["model_name"],
        "data_source": ckpt.get("extra", {}).get("data", {}).get("source", ""),
        "input_size": list(ckpt["data_config"]["input_size"]),
        "channels": channels,
        "rows_carried": len(rows),
        "rows": len(classes),
        "carried": [classes[i] for i in rows],
        "new": [c for i, c in enumerate(classes) if i not in rows],
        "dropped": [c for c in ckpt["classes"] if (canonical(c) or c) not in ours],
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


def describe_init(init: dict | None) -> str:
    """One line for the log and the model card: where the weights came from, what was new."""
    if not init:
        return ""
    trained_on = f", trained on {init['data_source']}" if init.get("data_source") else ""
    text = (
        f"backbone from {init['from']} ({init['model_name']}{trained_on}), {init['rows_carried']} of "
        f"{init['rows']} classifier rows carried"
    )
    if init["new"]:
        text += f"; new: {', '.join(init['new'])}"
    if init["dropped"]:
        text += f"; left behind: {', '.join(init['dropped'])}"
    if init["channels"][0] != init["channels"][1]:
        text += f"; first layer adapted from {init['channels'][0]} to {init['channels'][1]} channel(s)"
    return text
