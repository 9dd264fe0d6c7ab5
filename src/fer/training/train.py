"""Fine-tuning a timm model on the cached uint8 images.

`fit()` is the whole training run as a function: it takes validated params and arrays,
returns the per-epoch history and the best checkpoint, and writes nothing, so tests call
it directly and the train stage only adds I/O around it.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import kornia.augmentation as K
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight
from timm.data import Mixup
from torch import nn
from tqdm import tqdm

from fer import FerError, starter
from fer.checkpoint import Checkpoint, describe_init, find
from fer.data.cache import targets
from fer.device import resolve_device
from fer.inference import predict
from fer.models import create, data_config
from fer.params import AugmentParams, Params, TrainParams
from fer.progress import progress
from fer.training import parallel
from fer.training.state import Progress, restore, save, seed_everything
from fer.training.transfer import carry, head_parameters

# What the train stage's metrics file holds once the run ends, for DVC to compare (the rest of
# the run's summary goes to the details file): where the best epoch fell and the wall time.
HEADLINE = ("best_epoch", "train_seconds")


def augmentation(aug: AugmentParams, cfg: dict) -> nn.Sequential:
    """Per-image random flips, small affine moves and colour jitter for a whole float batch
    (0-1) on its device, then the model's normalisation (timm's mean/std)."""
    steps = []
    if aug.flip:  # a mirrored face shows the same expression
        steps.append(K.RandomHorizontalFlip())
    if aug.rotation or aug.scale or aug.translate:
        steps.append(
            K.RandomAffine(
                degrees=aug.rotation,
                translate=(aug.translate, aug.translate) if aug.translate else None,
                scale=(1 - aug.scale, 1 + aug.scale) if aug.scale else None,
                p=1.0,
            )
        )
    if aug.color_jitter:
        j = aug.color_jitter
        steps.append(K.ColorJitter(brightness=j, contrast=j, saturation=j if cfg["input_size"][0] == 3 else 0, p=1.0))
    steps.append(K.Normalize(mean=torch.tensor(cfg["mean"]), std=torch.tensor(cfg["std"])))
    if aug.erasing:  # after normalising, as timm does: the blanked rectangle is the mean face's value, 0
        steps.append(K.RandomErasing(p=aug.erasing))
    return nn.Sequential(*steps)


class VoteMixup(Mixup):
    """timm's Mixup (per batch), which also takes targets that are distributions already
    (annotators' vote shares, N x C): those are smoothed and blended as they are."""

    def __call__(self, x: torch.Tensor, target: torch.Tensor):
        if target.dim() == 1:
            return super().__call__(x, target)
        assert len(x) % 2 == 0, "Batch size should be even when using this"
        lam = self._mix_batch(x)
        y = target * (1 - self.label_smoothing) + self.label_smoothing / self.num_classes
        return x, y * lam + y.flip(0) * (1 - lam)


def mixing(params: TrainParams, num_classes: int) -> VoteMixup | None:
    """timm's Mixup (mixup and/or cutmix, per batch) when either alpha is set, else None. It
    returns soft targets with the label smoothing folded in."""
    if not (params.mixup or params.cutmix):
        return None
    return VoteMixup(
        mixup_alpha=params.mixup,
        cutmix_alpha=params.cutmix,
        label_smoothing=params.label_smoothing,
        num_classes=num_classes,
    )


def on_device(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """A whole split as one uint8 tensor: in GPU memory when it takes under a quarter of
    what is free (KDEF at 224 px is 0.75 GB, FER2013 at 48 px 83 MB), else in host memory
    (pinned on the way to the GPU, batch by batch)."""
    x = torch.from_numpy(np.array(images))  # reads a memory-mapped cache into memory, once
    if device.type == "cuda" and x.nbytes < torch.cuda.mem_get_info(device)[0] / 4:
        return x.to(device)
    return x


class Batches:
    """Shuffled, augmented, normalised float batches from a split held as one uint8 tensor.

    Every step is a few tensor operations on the whole batch, on the model's device: no
    image decoding, no per-image Python, no worker processes. The order comes from
    `generator`, the augmentation from torch's global RNG, so a seeded run repeats exactly.
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        augment: nn.Module,
        device: torch.device,
        generator: torch.Generator,
        drop_last: bool = True,
    ):
        self.images, self.targets = images, targets.to(images.device)
        self.batch_size, self.augment, self.device, self.generator = batch_size, augment.to(device), device, generator
        n = len(targets)
        self.stop = n - n % batch_size if drop_last and n > batch_size else n

    def __len__(self) -> int:
        return -(-self.stop // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.targets), generator=self.generator).to(self.images.device)
        for i in range(0, self.stop, self.batch_size):
            idx = parallel.shard(order[i : i + self.batch_size])  # distributed: this rank's share
            x, y = self.images[idx], self.targets[idx]
            if x.device != self.device:  # a split too big for the GPU: copy each batch over
                x, y = x.pin_memory().to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            yield self.augment(x.float().div_(255)).contiguous(memory_format=torch.channels_last), y


def adamw(model: nn.Module, lr: float, weight_decay: float = 0.01, backbone_lr_scale: float = 1.0) -> torch.optim.AdamW:
    """AdamW with the fused kernel: one update for all tensors, on GPUs and CPUs alike (+4% here).
    backbone_lr_scale < 1: two parameter groups, the classifier (timm's `get_classifier()`)
    first at `lr`, then the backbone at `lr * backbone_lr_scale` (fine-tuning a carried
    backbone gently while the new head learns fast)."""
    groups = model.parameters()
    if backbone_lr_scale != 1:
        head = head_parameters(model)
        groups = [
            {"params": [p for p in model.parameters() if p in head], "lr": lr},
            {"params": [p for p in model.parameters() if p not in head], "lr": lr * backbone_lr_scale},
        ]
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, fused=True)


def freeze_backbone(model: nn.Module, frozen: bool) -> None:
    """Train only the classifier (frozen) or everything. Frozen weights get no gradient, so
    AdamW leaves them and their weight decay alone; batch-norm statistics still follow the
    new data, as the model runs in train mode."""
    head = head_parameters(model)
    for p in model.parameters():
        p.requires_grad_(not frozen or p in head)


def start_model(params: TrainParams, classes: list[str], channels: int) -> tuple[nn.Module, dict | None]:
    """The model a run starts from, and what was carried into it (None for a fresh start).

    train.weights may be a timm weights file (its classifier is left new) or one of this
    pipeline's checkpoints; train.init_from is a pipeline checkpoint, loaded last. A pipeline
    checkpoint of other classes, channels or input size is carried over by `carry`.
    """
    weights = find(params.weights) if params.weights else None
    # A checkpoint replaces every tensor: no download of hub weights it would overwrite.
    model = create(
        params.model,
        len(classes),
        channels,
        params.pretrained and not weights and not params.init_from,
        "" if weights else params.weights,
    )
    init = carry(model, params.model, classes, weights, params.weights) if weights else None
    if params.init_from:
        ckpt = Checkpoint.load(starter.resolve(params.init_from))
        init = carry(model, params.model, classes, ckpt, params.init_from)
    if init:
        tqdm.write(f"initialised: {describe_init(init)}")
    return model, init


def train_epoch(
    model: nn.Module,
    batches: Batches,
    optimizer: torch.optim.Optimizer,
    weight: torch.Tensor | None = None,
    desc: str = "",
    scheduler=None,
    label_smoothing: float = 0.0,
    mix=None,
) -> tuple[float, float, int]:
    """One pass over `batches`; returns (mean loss, accuracy, images seen).
    scheduler: stepped after every batch (a per-step schedule such as OneCycleLR).
    mix: `mixing()`'s Mixup, which blends each batch and softens its targets (the accuracy
    is then counted against each image's own label). Targets are class indices (B,) or,
    for training on annotators' votes, distributions (B, C); accuracy counts the top class.

    Loss and hits are summed on the device and read once at the end: reading a value per
    step would stall a GPU.
    """
    model.train()
    device = batches.device
    loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
    for x, y in progress(batches, desc, unit="batches", leave=False):
        # bf16 autocast pays on GPUs only; on CPU it is many times slower than fp32.
        target = y
        if mix is not None:
            x, target = mix(x, y)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x)
            loss = F.cross_entropy(logits, target, weight=weight, label_smoothing=0.0 if mix else label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == (y.argmax(1) if y.dim() == 2 else y)).sum()
        seen += len(y)
    return loss_sum.item() / max(seen, 1), correct.item() / max(seen, 1), seen


def fit(
    params: TrainParams,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    classes: list[str],
    extra: dict | None = None,
    state_path: str | Path | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> tuple[list[dict], Checkpoint]:
    """Train `params.model` on `train`, keep the weights with the best val accuracy.

    train, val: (images uint8 (N, C, H, W), targets: class indices (N,) or, to train on
    annotators' votes, each image's vote shares (N, C)).
    extra: stored in the checkpoint as is (e.g. the params of the other stages).
    state_path: after every epoch the whole training state (`fer.training.state`) is saved
    there; a run with the same params and data that finds it resumes after the last
    completed epoch and, on CPU, ends exactly as an uninterrupted run would.
    on_epoch: called with each epoch's history row as it ends (after a resume, first with
    every row restored), e.g. to log it live.
    Returns (history: one dict per epoch, checkpoint of the best epoch). With
    `early_stopping` > 0, stops after that many epochs without a better val accuracy.
    Under torchrun every process calls fit() alike and trains on its share of each batch
    (fer.training.parallel); all return the same history, and only rank 0 writes `state_path`.
    """
    training = _setup(params, train, val, classes, extra or {})
    fingerprint = {
        "params": params.model_dump(),
        "classes": list(classes),
        "train": list(train[0].shape),
        "val": list(val[0].shape),
        "targets": _digest(train[1], val[1]),
    }
    so_far = restore(state_path, fingerprint, training.stateful(), training.generator) or Progress()
    if so_far.history:
        tqdm.write(f"resuming after epoch {len(so_far.history)} from {state_path}")
        for row in so_far.history if on_epoch else ():  # a resumed run reports the whole run, not its tail
            on_epoch(row)
    for epoch in range(len(so_far.history) + 1, 0 if so_far.stopped else params.epochs + 1):
        row = _epoch(training, epoch, len(so_far.history), state_path)
        so_far.history.append(row)
        tqdm.write(" ".join(f"{k} {v:.4g}" for k, v in row.items()))
        if on_epoch:
            on_epoch(row)
        _keep_best(training, so_far, epoch)
        if state_path and parallel.is_main():
            save(state_path, fingerprint, so_far, training.stateful(), training.generator)
        if so_far.stopped:
            tqdm.write(
                f"early stop: no better val accuracy for {so_far.since_best} epochs; "
                f"keeping epoch {so_far.best['epoch']}"
            )
            break
    return so_far.history, Checkpoint.from_dict(so_far.best)


def _digest(*arrays: np.ndarray) -> str:
    """A short hash of the targets: a run on other labels (votes, not majorities) resumes nothing."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


@dataclass
class Training:
    """What one training run is made of, built once by `_setup` and stepped by `_epoch`."""

    params: TrainParams
    classes: list[str]
    extra: dict
    device: torch.device
    model: nn.Module
    step_model: nn.Module  # the model as a training step calls it: DDP-wrapped and compiled when asked
    cfg: dict  # timm's data config: input size, mean, std
    init: dict | None  # what was carried into the model (train.weights, train.init_from)
    optimizer: torch.optim.Optimizer
    scheduler: object
    per_step: object  # the scheduler when it steps per batch (onecycle), else None
    batches: Batches
    val: tuple[torch.Tensor, torch.Tensor]
    weight: torch.Tensor | None  # per-class loss weights (class_weights: balanced)
    mix: object  # timm's Mixup, or None
    generator: torch.Generator

    def stateful(self) -> dict:
        """The objects whose `state_dict` a resumed run needs (`fer.training.state.save`)."""
        return {"model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler}


def _setup(params: TrainParams, train: tuple, val: tuple, classes: list[str], extra: dict) -> Training:
    """The model, optimizer, schedule and batches of a run, seeded and on its device."""
    device = parallel.setup(resolve_device(params.device))
    parallel.set_threads(params.threads)
    generator = seed_everything(params.seed)
    channels, size = train[0].shape[1], train[0].shape[2]
    if params.batch_size > len(train[1]):
        raise FerError(f"train.batch_size {params.batch_size} is larger than the train split ({len(train[1])} images)")
    model, init = start_model(params, classes, channels)
    cfg = data_config(model, size, channels)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels
    # channels_last: faster convolutions on GPUs and, with oneDNN, on CPUs too (1.1-1.5x here)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = adamw(model, params.lr, params.weight_decay, params.backbone_lr_scale)
    batches = Batches(
        on_device(train[0], device),
        torch.tensor(train[1]),
        params.batch_size,
        augmentation(params.augment, cfg),
        device,
        generator,
    )
    scheduler, per_step = _scheduler(params, optimizer, len(batches))
    # Compiled for training only (evaluation sees other batch sizes); the weights are shared.
    step_model = parallel.wrap(model)
    step_model = torch.compile(step_model) if params.compile else step_model
    return Training(
        params,
        list(classes),
        extra,
        device,
        model,
        step_model,
        cfg,
        init,
        optimizer,
        scheduler,
        per_step,
        batches,
        (on_device(val[0], device), torch.tensor(val[1])),
        _class_weight(params, len(classes), train[1], device),
        mixing(params, len(classes)),
        generator,
    )


def _scheduler(params: TrainParams, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> tuple:
    """(scheduler, the same if it steps per batch else None) as train.schedule says."""
    if params.schedule == "onecycle":  # warm up to lr over 30% of the steps, then anneal to ~0: stepped per batch
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=params.epochs * steps_per_epoch
        )
        return scheduler, scheduler
    # cut lr when the val loss stops falling: stepped per epoch
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=params.lr_factor, patience=params.lr_patience
    ), None


def _class_weight(params: TrainParams, num_classes: int, targets: np.ndarray, device: torch.device):
    """ "balanced": each class weighs in inversely to its frequency (FER2013's disgust is 1.5%); else None."""
    if params.class_weights != "balanced":
        return None
    labels = targets.argmax(1) if targets.ndim == 2 else targets  # votes: each image's top class
    w = compute_class_weight("balanced", classes=np.arange(num_classes), y=labels)
    return torch.tensor(w, dtype=torch.float32, device=device)


def _epoch(training: Training, epoch: int, done: int, state_path: str | Path | None) -> dict:
    """Train one epoch and validate; the epoch's history row. done: epochs already saved."""
    p, start = training.params, time.perf_counter()
    if p.freeze_epochs:  # from the epoch alone, so a resumed run freezes as the first did
        freeze_backbone(training.model, epoch <= p.freeze_epochs)
    parallel.reseed(p.seed, epoch)
    try:
        train_loss, train_acc, seen = train_epoch(
            training.step_model,
            training.batches,
            training.optimizer,
            training.weight,
            desc=f"epoch {epoch}/{p.epochs}",
            scheduler=training.per_step,
            label_smoothing=p.label_smoothing,
            mix=training.mix,
        )
    except torch.cuda.OutOfMemoryError:
        raise FerError(
            f"the GPU ran out of memory at train.batch_size={p.batch_size} ({p.model}, "
            f"{training.cfg['input_size'][1]}px); try train.batch_size={max(1, p.batch_size // 2)}"
        ) from None
    train_loss, train_acc = parallel.epoch_means(train_loss, train_acc, seen)
    if not np.isfinite(train_loss):
        kept = f"; the state after epoch {done} is kept in {state_path}" if state_path and done else ""
        raise FerError(f"the training loss became {train_loss} in epoch {epoch}; lower train.lr (now {p.lr:g}){kept}")
    parallel.sync_buffers(training.model)
    images, targets = training.val
    logits = predict(
        training.model,
        images,
        training.cfg,
        training.device,
        batch_size=1024 if training.device.type == "cuda" else 256,
    )
    val_loss = F.cross_entropy(logits, targets).item()
    if training.per_step is None:
        training.scheduler.step(val_loss)
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_acc": train_acc,
        "val_loss": val_loss,
        "val_acc": (logits.argmax(1) == (targets.argmax(1) if targets.dim() == 2 else targets)).float().mean().item(),
        "lr": training.optimizer.param_groups[0]["lr"],
        "seconds": time.perf_counter() - start,
    }


def _keep_best(training: Training, so_far: Progress, epoch: int) -> None:
    """Keep the epoch's weights if its val accuracy is the best yet; count towards early stopping."""
    val_acc = so_far.history[-1]["val_acc"]
    if val_acc > so_far.best_acc:
        so_far.best_acc, so_far.since_best = val_acc, 0
        so_far.best = Checkpoint(  # kept as plain data: the saved training state holds it
            weights=copy.deepcopy({k: v.cpu() for k, v in training.model.state_dict().items()}),
            model_name=training.params.model,
            classes=training.classes,
            data_config=training.cfg,
            params=training.params.model_dump(),
            extra=training.extra,
            epoch=epoch,
            val_acc=val_acc,
            init=training.init,
            optimizer=copy.deepcopy(training.optimizer.state_dict()),
        ).to_dict()
    else:
        so_far.since_best += 1
        so_far.stopped = bool(training.params.early_stopping and so_far.since_best >= training.params.early_stopping)


def train_run(
    params: Params,
    train: tuple[np.ndarray, pd.DataFrame],
    val: tuple[np.ndarray, pd.DataFrame],
    cache_meta: dict,
    state_path: str | Path | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    **extra,
) -> tuple[list[dict], Checkpoint, float]:
    """One training run as the train stage and every cross-validation fold run it.

    train, val: cached images and their facts (`fer.data.cache`). `fit` on the cache's
    classes, aiming at each image's class or, with data.ferplus_labels distribution, at its
    annotators' vote shares; with the data and preprocess params (and `extra`, e.g. the fold)
    stored in the checkpoint, and the cache's face crop or measured framing (`cache_meta`:
    the preprocess stage's meta.json) in its data_config, so that fer-predict and the ONNX
    file frame photos as the training images were. Returns (history, best checkpoint, seconds).
    """
    classes, votes = cache_meta["classes"], params.data.ferplus_labels == "distribution"
    start = time.perf_counter()
    history, best = fit(
        params.train,
        *((x, targets(facts, classes, votes)) for x, facts in (train, val)),
        classes,
        extra={"preprocess": params.preprocess.model_dump(), "data": params.data.model_dump(), **extra},
        state_path=state_path,
        on_epoch=on_epoch,
    )
    best.data_config = {**best.data_config, "face": cache_meta.get("face"), "framing": cache_meta.get("framing")}
    return history, best, time.perf_counter() - start
