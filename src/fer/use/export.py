"""The best checkpoint as a self-contained ONNX file, checked against PyTorch, plus a model card.

The ONNX graph takes pixels as they are cached (float, 0-255, N x C x H x W) and returns
class probabilities: normalisation, the test-time augmentation, the calibration temperature
and softmax are inside it, and the class names and data config ride along as metadata, so a
runtime needs nothing else and gives the probabilities the checkpoint gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fer.checkpoint import Checkpoint, describe_init
from fer.inference import log_probs, predict, views
from fer.io import atomic_path


class Probabilities(nn.Module):
    """(model(normalise(pixels)) / temperature).softmax(), averaged with the mirror image's when
    tta is "flip": what a user of the exported file wants out."""

    def __init__(self, model: nn.Module, mean, std, tta: str = "none", temperature: float = 1.0):
        super().__init__()
        self.model, self.tta, self.temperature = model, tta, temperature
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1) * 255)

    def forward(self, pixels):
        x = (pixels - self.mean) / self.std
        return log_probs(views(self.model, x, self.tta), self.temperature).exp()


def export_onnx(
    model: nn.Module, ckpt: Checkpoint, path: str | Path, opset: int = 17, tta: str = "none", half: bool = False
) -> None:
    """Write `model` (eval mode, CPU) as ONNX with a dynamic batch axis and class metadata;
    tta "flip" puts the mirror-image averaging inside the graph (metadata `tta`), and the
    checkpoint's calibration temperature for that tta divides the logits (metadata `temperature`).
    half: store the weights as float16 (half the file), computed in float32 as the
    checkpoint's are; for weights that are float16 values already (`fer.use.pack`)."""
    import onnx

    cfg = ckpt.data_config
    t = ckpt.temperature_for(tta)
    wrapped = Probabilities(model.cpu().eval(), cfg["mean"], cfg["std"], tta, t).eval()
    example = torch.full((2, *cfg["input_size"]), 128.0)
    with atomic_path(path) as tmp:
        torch.onnx.export(
            wrapped,
            (example,),
            str(tmp),
            input_names=["pixels"],
            output_names=["probabilities"],
            dynamic_axes={"pixels": {0: "batch"}, "probabilities": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
            # folding batch norm into the convolutions would make new float32 weights, which float16 would round
            do_constant_folding=not half,
        )
        proto = onnx.load(str(tmp))
        if half:
            _float16_weights(proto.graph)
        for key, value in {
            "classes": ckpt.classes,
            "data_config": cfg,
            "model_name": ckpt.model_name,
            "epoch": ckpt.epoch,
            "tta": tta,
            "temperature": t,
        }.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))


def _float16_weights(graph) -> None:
    """Store `graph`'s float32 weights as float16, each cast back to float32 under its own name
    (onnxruntime folds the casts once, when it loads the file)."""
    from onnx import TensorProto, helper, numpy_helper

    casts = []
    for weight in graph.initializer:
        if weight.data_type == TensorProto.FLOAT:
            half = numpy_helper.from_array(numpy_helper.to_array(weight).astype(np.float16), weight.name + "_fp16")
            casts.append(helper.make_node("Cast", [half.name], [weight.name], to=TensorProto.FLOAT))
            weight.CopyFrom(half)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def parity(model: nn.Module, ckpt: Checkpoint, onnx_path: str | Path, images: np.ndarray, tta: str = "none") -> float:
    """Largest absolute difference between PyTorch's and onnxruntime's (calibrated) probabilities on `images`."""
    import onnxruntime

    torch_probs = (
        predict(model, images, ckpt.data_config, torch.device("cpu"), tta=tta, temperature=ckpt.temperature_for(tta))
        .exp()
        .numpy()
    )
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_probs = session.run(None, {"pixels": np.asarray(images, dtype=np.float32)})[0]
    return float(np.abs(torch_probs - onnx_probs).max())


def _crop(cfg: dict) -> str:
    """How the training images were cropped, and so how fer-predict cuts faces, for the model card."""
    face, framing = cfg.get("face"), cfg.get("framing")
    if face:
        kept = "kept whole" if face.get("no_face") == "keep" else "left out"
        aligned = ", aligned: eyes level and at one place (five landmarks)" if face.get("align") else ""
        return (
            f"cropped to the face ({face['detector']}, margin {face['margin']}{aligned}; images without a face {kept})"
        )
    if framing:
        n = framing["measured"]
        return (
            f"centre square of each whole image, taken as a face crop: the face box spans "
            f"{framing['box'][2]:.0%} of the side (median of {n['faces']} faces found in {n['images']} images), "
            f"and fer-predict cuts each face it finds to that framing"
        )
    return "centre square of each whole image (fer-predict crops each face it detects with the default margin)"


FLIP = "each face averaged with its mirror image (in the ONNX graph too)"
nan = float("nan")
LIMITS = """## Intended use and limits
- For research and for comparing training recipes on posed, roughly frontal, well-lit faces
  like the training data. Expressions are posed or acted in most datasets; spontaneous
  expressions, other cultures, ages, poses and lighting may be read worse.
- It labels a face's visible expression, not a person's feelings, and must not be used to
  make decisions about people (hiring, policing, health, education).
- Accuracy differs by class (see the table); check it on data like yours before relying on it.
"""


def model_card(
    ckpt: Checkpoint,
    metrics: dict,
    split: dict,
    max_diff: float,
    onnx_name: str,
    tta: str = "none",
    plots: str = "../plots",
) -> str:
    """Markdown describing the run: data and protocol, params, test metrics, intended use and limits.
    plots: the folder of the PNGs, relative to the card."""
    data, pre = ckpt.data, ckpt.extra.get("preprocess", {})
    p = ckpt.params
    rows = "\n".join(
        f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
        for c, m in metrics["per_class"].items()
    )
    cfg, honesty = ckpt.data_config, _honesty(split)
    schedule, init = _schedule(p), describe_init(ckpt.init)
    start = "fine-tuned from a previous run" if init else _start(p)
    init_line = f"\n- Initialised from: {init}." if init else ""
    return f"""# Model card: {ckpt.model_name} facial expression classifier

## Model
- Architecture: timm `{ckpt.model_name}`, {start};
  input {"x".join(str(v) for v in ckpt.data_config["input_size"])} (channels x height x width),
  {"greyscale" if cfg["input_size"][0] == 1 else "RGB"}; classes: {", ".join(ckpt.classes)}.{init_line}
- Checkpoint: epoch {ckpt.epoch} of {p.get("epochs")} (best validation accuracy {ckpt.val_acc:.4f}).
- ONNX: `{onnx_name}` (pixels 0-255 in, probabilities out; largest difference from PyTorch on
  {metrics["test_images"]} test images: {max_diff:.2e}).
- Test-time augmentation: {FLIP if tta == "flip" else "none"}.

## Data
- Source: `{data.get("source", "?")}` (format `{data.get("format", "?")}`), cached at {pre.get("size", "?")} px,
  {_crop(cfg)}.
- Split protocol: **{split.get("protocol", "?")}**; {split.get("train_images")} train / {split.get("val_images")}
  val / {split.get("test_images")} test images. {honesty}

## Training
AdamW lr {p.get("lr")}, weight decay {p.get("weight_decay")}, batch {p.get("batch_size")}, {p.get("epochs")} epochs,
{schedule}, label smoothing {p.get("label_smoothing", 0)}, early stopping
{p.get("early_stopping") or "off"}, class weights {p.get("class_weights", "none")}, seed {p.get("seed")}.{_finetune(p)}

## Test results
| accuracy | macro-F1 | balanced accuracy | majority-class baseline |
|---|---|---|---|
| {" | ".join(f"{metrics[k]:.4f}" for k in ("accuracy", "macro_f1", "balanced_accuracy", "majority_baseline"))} |

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

![Confusion matrix]({plots}/confusion.png)
{_calibration(metrics, plots)}{_where_worse(metrics)}
{LIMITS}"""


def _schedule(p: dict) -> str:
    if p.get("schedule") == "onecycle":
        return "OneCycleLR (warm-up, then annealing to ~0)"
    return f"ReduceLROnPlateau (patience {p.get('lr_patience')}, factor {p.get('lr_factor')})"


def _start(p: dict) -> str:
    return "ImageNet-pretrained" if p.get("pretrained") else "trained from scratch"


def _calibration(metrics: dict, plots: str) -> str:
    """The card's sections on how far the probabilities can be trusted and on abstaining."""
    cal, sel = metrics.get("calibration"), metrics.get("selective")
    if not cal or not sel:
        return ""
    before, after = cal["uncalibrated"], cal["calibrated"]
    applied = (
        f"temperature scaling, T = {cal['temperature']:.3f}, fitted on the val split (never on test); the "
        "checkpoint, the ONNX graph and fer-predict all apply it"
        if cal["method"] == "temperature"
        else "none (evaluate.calibrate=none): the probabilities are the network's own"
    )
    rows = "\n".join(
        f"| {p} | {v['coverage']:.1%} | {v['accuracy']:.1%} |"
        for p, v in sel["at_confidence"].items()
        if v["coverage"] > 0
    )
    return f"""
## How far the probabilities can be trusted
Calibration: {applied}. On the test split ({cal["bins"]} confidence bins):

| | ECE | NLL | Brier |
|---|---|---|---|
| uncalibrated | {before["ece"]:.4f} | {before["nll"]:.4f} | {before["brier"]:.4f} |
| as delivered | {after["ece"]:.4f} | {after["nll"]:.4f} | {after["brier"]:.4f} |

ECE is the average gap between how sure the model says it is and how often it is right.
![Reliability diagram]({plots}/reliability.png)

**Abstaining.** `fer-predict --min-confidence P` labels a face `uncertain` when its highest
probability is under P. On the test split:

| P | faces answered (coverage) | accuracy of the answered |
|---|---|---|
{rows}
"""


def _where_worse(metrics: dict) -> str:
    """The card's section on the groups of people and photos the model does worst on."""
    groups = metrics.get("groups")
    if not groups:
        return ""
    lines = []
    for attribute, g in groups.items():
        if attribute == "subject":
            lines.append(
                f"- Per person ({g['people']} people in test, a median of {g['images_per_person']:g} images "
                f"each): worst {g['worst']} {g['worst_accuracy']:.1%}, median {g['median_accuracy']:.1%}, "
                f"best {g['best']} {g['best_accuracy']:.1%}."
            )
        else:
            parts = ", ".join(f"{k} {v['accuracy']:.1%} (n={v['count']})" for k, v in g["groups"].items())
            lines.append(
                f"- By {attribute}: {parts}; gap {100 * g['gap']:.1f} points between {g['worst']} and {g['best']}."
            )
    return (
        "\n## Where it does worse\nAccuracy per group on the test split, worst first (all groups: "
        "`plots/groups.csv`):\n" + "\n".join(lines) + "\n"
    )


def _honesty(split: dict) -> str:
    """What the split stage's summary says about people seen in training and in test."""
    if split.get("subject_overlap") == 0:
        return "No person appears in two splits (subject overlap 0): the test numbers are on unseen people."
    if split.get("protocol") != "official split":
        return "Subjects are unknown or shared between splits: the test numbers may be optimistic for new people."
    return "The dataset's official split was used; it does not identify people, so some may appear in two splits."


def _finetune(p: dict) -> str:
    """The fine-tuning schedule in words, or '' when it is the default (one lr, nothing frozen)."""
    parts = []
    if p.get("freeze_epochs"):
        parts.append(f"only the classifier trained for the first {p['freeze_epochs']} epoch(s)")
    if p.get("backbone_lr_scale", 1) != 1:
        parts.append(f"backbone lr {p['backbone_lr_scale']} x lr")
    return (" Fine-tuning: " + "; ".join(parts) + ".") if parts else ""
