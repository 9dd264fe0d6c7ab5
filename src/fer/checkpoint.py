"""The checkpoint: a trained model that describes itself.

It holds everything needed to rebuild and apply the model without the pipeline's params:
weights, timm name, class names, the data config (input size, channels, mean/std, how faces
were framed), the params of the run, the epoch, the calibration the train stage fitted, and
what the run started from. On disk it is a plain dict that `torch.load(weights_only=True)`
reads (data, never code); `Checkpoint.load` validates it once, and everything else reads
typed fields.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from fer import FerError
from fer.io import atomic_path
from fer.models import create

REQUIRED = ("model", "model_name", "classes", "data_config")  # the keys rebuilding the model reads


@dataclass
class Checkpoint:
    weights: dict[str, torch.Tensor]  # the state dict ("model" on disk)
    model_name: str  # a timm model name
    classes: list[str]
    data_config: dict  # input_size [C, H, W], mean, std; face and framing: how photos are cropped
    params: dict = field(default_factory=dict)  # the train params of the run
    extra: dict = field(default_factory=dict)  # the data and preprocess params, the fold, ...
    epoch: int = 0
    val_acc: float = math.nan
    init: dict | None = None  # what was carried in (train.weights, train.init_from): training.transfer
    temperature: dict[str, float] = field(default_factory=dict)  # per evaluate.tta; 1 where absent
    calibration: dict = field(default_factory=dict)  # how the temperatures were fitted
    optimizer: dict | None = None
    starter: dict | None = None  # the shipped starter model: the command and commit that made it

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
        """The checkpoint at `path`: a FerError if it is missing, is not a file torch.save wrote
        (random bytes, a truncated or failed download, an HTML error page), holds code, or is
        not a checkpoint of this pipeline (e.g. bare weights)."""
        if not Path(path).is_file():
            raise FerError(f"checkpoint {path} not found" + (" (it is a folder)" if Path(path).is_dir() else ""))
        try:
            data = torch.load(path, map_location=device, weights_only=True)  # data, never code to run
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
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data, origin: str | Path = "the checkpoint") -> Checkpoint:
        """A Checkpoint from the dict `to_dict` gives, checked; keys it does not know are ignored."""
        _check(data, origin)
        known = {f.name for f in fields(cls)}
        values = {("weights" if k == "model" else k): v for k, v in data.items()}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_dict(self) -> dict:
        """The plain dict saved on disk (the weights under "model")."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {("model" if k == "weights" else k): v for k, v in data.items()}

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            torch.save(self.to_dict(), tmp)

    def build(self, device: str | torch.device = "cpu") -> nn.Module:
        """The model, with its weights, on `device`, in eval mode."""
        model = create(self.model_name, len(self.classes), self.channels)
        model.load_state_dict(self.weights)
        return model.to(device).eval()

    def temperature_for(self, tta: str) -> float:
        """The calibration temperature fitted for scoring as `tta` says (1: none fitted)."""
        return float(self.temperature.get(tta, 1.0))

    @property
    def channels(self) -> int:
        return int(self.data_config["input_size"][0])

    @property
    def size(self) -> int:
        return int(self.data_config["input_size"][1])

    @property
    def face(self) -> dict | None:
        """How photos were cut to faces for training (detector, margin, alignment); None: whole images."""
        return self.data_config.get("face")

    @property
    def data(self) -> dict:
        """The data params of the run that made it (source, format, ...); {} when unknown."""
        return self.extra.get("data", {})


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Checkpoint]:
    """(the model in eval mode, its checkpoint) from the checkpoint at `path`."""
    ckpt = Checkpoint.load(path, device)
    return ckpt.build(device), ckpt


def find(path: str | Path) -> Checkpoint | None:
    """The checkpoint at `path` if it is one of this pipeline's, else None (e.g. a timm weights
    file, a .safetensors or a .pth state dict)."""
    if not path or not Path(path).is_file() or str(path).lower().endswith(".safetensors"):
        return None
    try:
        return Checkpoint.load(path)
    except FerError:  # not a torch file, not plain data, or not ours: not ours either way
        return None


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


def _check(data, origin: str | Path) -> None:
    """A FerError saying what `data` is unless it is a checkpoint this pipeline wrote."""
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        raise FerError(
            f"{origin} holds weights alone ({len(data)} tensors, e.g. torch.save(model.state_dict())), not "
            "a checkpoint of this pipeline: the model name, classes and data config that rebuild the "
            "model are missing. Predict with a checkpoint the train stage wrote (models/best.pt); to "
            "start a run from such weights, set train.weights to the file"
        )
    missing = [k for k in REQUIRED if not isinstance(data, dict) or k not in data]
    if missing:
        raise FerError(
            f"{origin} is not a checkpoint of this pipeline (no {', '.join(missing)}); use one the train "
            "stage wrote (models/best.pt)"
        )
    cfg, classes = data["data_config"], data["classes"]
    wrong = [
        name
        for name, ok in (
            (
                "model",
                isinstance(data["model"], dict) and all(isinstance(v, torch.Tensor) for v in data["model"].values()),
            ),
            ("model_name", isinstance(data["model_name"], str)),
            ("classes", isinstance(classes, list) and bool(classes) and all(isinstance(c, str) for c in classes)),
            ("data_config", isinstance(cfg, dict) and len(cfg.get("input_size") or ()) == 3),
        )
        if not ok
    ]
    if wrong:
        raise FerError(
            f"{origin} is damaged: its {', '.join(wrong)} cannot be read as a checkpoint's; use one the "
            "train stage wrote (models/best.pt)"
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
