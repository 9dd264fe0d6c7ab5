"""Training images per second: the notebook way against the train stage's loop; preprocess times.

    python bench/train_speed.py [--fer2013 ../shared/data/fer2013-images.tar.gz] [--cases small,densenet121]

In one run, on the same JPEGs, model, image size and batch size, it times one training
epoch over a subset of KDEF-size photos (562x762, as the Kaggle KDEF copy ships them):

  (a) notebook: torchvision `ImageFolder` over the JPEG files, PIL `Resize`/`ToTensor`/`Normalize`
      (and a random flip), a `DataLoader` with 2 workers, fp32: every epoch decodes and
      resizes every JPEG again;
  (b) ours: `fer.training.train`'s `Batches` + `train_epoch` (what the train stage runs) on the uint8
      cache that preprocess wrote once, with the same flip-only augmentation, and again with
      the default augmentation (flip, affine, colour jitter).

Cases: three small models at 112 px (data handling dominates) and densenet121 at 224 px; on a CUDA
GPU also batch 64 and the reference recipe end to end. Then it times preprocess on the
KDEF-size data (4,900 JPEGs) and on FER2013 (35,887 files) when given. The KDEF-size photos
are demo faces, drawn at 96x128 and enlarged with sensor noise (drawing at full size takes
hours); they are made once under ~/.cache/fer-pipeline/bench.
"""

import argparse
import datetime
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from fer.data import formats, kdef, preprocess, sources, synthetic
from fer.data.cache import load_cache, load_split
from fer.data.split import assign
from fer.device import resolve_device
from fer.models import create, data_config
from fer.params import AugmentParams, DataParams, TrainParams
from fer.training.train import Batches, adamw, augmentation, fit, on_device, train_epoch

CACHE = Path.home() / ".cache/fer-pipeline/bench"
FLIP_ONLY = AugmentParams(flip=True, rotation=0, scale=0, translate=0, color_jitter=0)
CASES = {  # name: (timm model, image size, CPU batch size, CPU images per epoch)
    "small": ("mobilenetv3_small_100", 112, 32, 1536),
    "smaller": ("mobilenetv3_small_050", 112, 32, 1536),
    "smallest": ("lcnet_035", 112, 32, 1536),
    "densenet121": ("densenet121", 224, 8, 96),
}


def kdef_size_photos(root: Path = CACHE / "kdef-size") -> Path:
    """4,900 KDEF-named JPEGs of 562x762 (70 people, 2 sessions, 7 expressions, 5 angles)."""
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(0)
    for path in synthetic.generate(root, subjects=70, angles=("FL", "HL", "S", "HR", "FR"), size=(96, 128)):
        big = np.asarray(Image.open(path).resize((562, 762), Image.Resampling.BICUBIC), dtype=np.float32)
        big += rng.normal(0, 4, big.shape)
        Image.fromarray(big.clip(0, 255).astype(np.uint8)).save(path, "JPEG", quality=90)
    (root / ".complete").touch()
    return root


def class_folders(images: pd.DataFrame, raw: Path, out: Path) -> Path:
    """The same files as `<class>/<file>` links, the layout `ImageFolder` reads."""
    for path, label in zip(images["path"], images["label"]):
        (out / label).mkdir(parents=True, exist_ok=True)
        (out / label / Path(path).name).symlink_to(raw / path)
    return out


def notebook_epoch(folder: Path, model_name: str, size: int, batch_size: int, device: torch.device) -> float:
    """Images/s of one epoch the notebook way (model built, warmed up on 4 batches first)."""
    cfg = data_config(timm.create_model(model_name), size, 3)
    data = datasets.ImageFolder(
        folder,
        transforms.Compose(
            [
                transforms.Resize((size, size)),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(cfg["mean"], cfg["std"]),
            ]
        ),
    )
    loader = DataLoader(
        data, batch_size=batch_size, shuffle=True, num_workers=2, drop_last=True, pin_memory=device.type == "cuda"
    )
    model = create(model_name, len(data.classes)).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(x, y):
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    for _, (x, y) in zip(range(4), loader):  # warm-up
        step(x, y)
    sync(device)
    start, seen = time.perf_counter(), 0
    for x, y in loader:
        step(x, y)
        seen += len(y)
    sync(device)
    return seen / (time.perf_counter() - start)


def our_epoch(prepared: Path, model_name: str, batch_size: int, device: torch.device, aug: AugmentParams) -> float:
    """Images/s of one epoch of the train stage's loop over every cached image (warmed up on 4 batches first)."""
    images, facts = load_cache(prepared)
    model = create(model_name, 7).to(device, memory_format=torch.channels_last)
    cfg = data_config(model, images.shape[-1], 3)
    optimizer = adamw(model, lr=1e-4)
    x, y = on_device(images, device), torch.tensor(facts["target"].to_numpy())
    warm = Batches(
        x[: 4 * batch_size],
        y[: 4 * batch_size],
        batch_size,
        augmentation(aug, cfg),
        device,
        torch.Generator().manual_seed(0),
    )
    train_epoch(model, warm, optimizer)
    batches = Batches(x, y, batch_size, augmentation(aug, cfg), device, torch.Generator().manual_seed(0))
    sync(device)
    start = time.perf_counter()
    _, _, seen = train_epoch(model, batches, optimizer)
    sync(device)
    return seen / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_preprocess(root: Path, data: DataParams, out: Path, size: int, grayscale: bool) -> tuple[int, float]:
    """(images, seconds) of preprocess.build over the whole dataset at `root`."""
    images, _ = formats.scan(root, data)
    start = time.perf_counter()
    failed, _ = preprocess.build(images, root, out, size, grayscale)
    return len(images) - len(failed), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--fer2013", type=Path, help="FER2013 archive or folder, to time its preprocess")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    gpu = f", {torch.cuda.get_device_name(device)}" if cuda else ""
    print(
        f"# {datetime.date.today()}, {platform.machine()}, {torch.get_num_threads()} threads{gpu}, "
        f"torch {torch.__version__}, timm {timm.__version__}, device {device}"
    )
    raw = kdef_size_photos()
    photos, _ = kdef.scan(raw)
    work = Path(tempfile.mkdtemp(prefix="fer-bench-"))
    try:
        for case in args.cases.split(","):
            model_name, size, batch_size, n = CASES[case]
            if cuda:  # a GPU wants big batches and many images to show its speed
                batch_size, n = 64, 1024
            subset = photos.sample(n, random_state=0)
            folder = class_folders(subset, raw, work / f"{case}-folders")
            prepared = work / f"{case}-prepared"
            preprocess.build(subset, raw, prepared, size, grayscale=False)
            a = notebook_epoch(folder, model_name, size, batch_size, device)
            b = our_epoch(prepared, model_name, batch_size, device, FLIP_ONLY)
            c = our_epoch(prepared, model_name, batch_size, device, AugmentParams())
            print(
                f"{model_name} {size}px batch {batch_size}, {n} images: (a) notebook {a:.1f} img/s, "
                f"(b) ours {b:.1f} img/s (flip only; {c:.1f} with the default augmentation), "
                f"(b)/(a) = {b / a:.2f}x"
            )
        n, seconds = time_preprocess(raw, DataParams(format="kdef"), work / "kdef-prepared", 224, False)
        print(f"preprocess KDEF-size: {n} JPEGs of 562x762 -> 224 px RGB in {seconds:.1f} s ({n / seconds:.0f} img/s)")
        if args.fer2013:
            root = sources.fetch(DataParams(source=str(args.fer2013), format="fer2013"), work / "fer2013")
            n, seconds = time_preprocess(root, DataParams(format="fer2013"), work / "fer-prepared", 48, True)
            print(f"preprocess FER2013: {n} files -> 48 px greyscale in {seconds:.1f} s ({n / seconds:.0f} img/s)")
        if cuda:
            reference_recipe(work / "kdef-prepared", photos, device)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def reference_recipe(prepared: Path, images: pd.DataFrame, device: torch.device) -> None:
    """The reference recipe (densenet121, 224 px, batch 8, 50 epochs, evaluation each epoch)
    on the KDEF-size cache, end to end, from scratch (no hub weights offline)."""
    manifest = images.assign(split=assign(images, 0.15, 0.15, 42)[0])
    (xt, mt), (xv, mv) = (load_split(prepared, manifest, s) for s in ("train", "val"))
    params = TrainParams(pretrained=False, device=device.type)
    start = time.perf_counter()
    classes = json.loads((prepared / "meta.json").read_text())["classes"]
    history, _ = fit(params, (xt, mt["target"].to_numpy()), (xv, mv["target"].to_numpy()), classes)
    seconds = time.perf_counter() - start
    print(
        f"reference recipe on KDEF-size data: {len(history)} epochs of {len(mt)} train + {len(mv)} val "
        f"images in {seconds:.0f} s ({len(mt) * len(history) / seconds:.0f} train img/s)"
    )


if __name__ == "__main__":
    main()
