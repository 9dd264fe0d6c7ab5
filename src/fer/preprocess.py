"""Decode every image once into a memory-mappable uint8 array per split.

Training then never touches a JPEG again: epochs read pixels straight from
`<split>.npy` (N, C, H, W), and the per-image facts travel beside it in `<split>.csv`.
Normalisation is left to the batch, so changing the model or the learning rate never
rebuilds this cache.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps
from tqdm import tqdm

from fer import faces
from fer.dataset import split_files
from fer.io import atomic_path, write_csv, write_json
from fer.labels import CLASSES
from fer.split import SPLITS

META_COLUMNS = ["path", "label", "target", "subject", "angle", "session"]


def load_image(source: str | Path | np.ndarray, size: int, grayscale: bool) -> np.ndarray:
    """One image (a file, or pixels already in an array) as a (C, size, size) uint8 array:
    upright, centre-cropped square, resized."""
    # Let the JPEG decoder skip detail the resize would throw away (2-8x faster on big photos).
    im = open_image(source, "L" if grayscale else "RGB", draft=size)
    return _chw(ImageOps.fit(im, (size, size), Image.Resampling.BICUBIC))


def open_image(source: str | Path | np.ndarray, mode: str, draft: int | None = None) -> Image.Image:
    """An image file (or pixels in an array) upright, in 8 bits per channel, in PIL `mode`.
    draft: let a JPEG decoder shrink the image towards this side while decoding."""
    with warnings.catch_warnings():
        # Past PIL's pixel limit an image is treated as a decompression bomb, not decoded.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = Image.fromarray(source) if isinstance(source, np.ndarray) else Image.open(source)
    with im:
        if draft:
            im.draft(mode, (draft, draft))
        im = ImageOps.exif_transpose(im)
        if im.mode.startswith("I;16") or im.mode == "I":  # 16-bit: keep the top 8 bits, not a clipped white
            a = np.asarray(im).astype(np.int64)
            im = Image.fromarray(((a >> 8) if im.mode != "I" or a.max() > 255 else a).clip(0, 255).astype(np.uint8))
        return im.convert(mode)


def load_face(source: str | Path | np.ndarray, size: int, grayscale: bool,
              margin: float = faces.MARGIN) -> tuple[np.ndarray, bool]:
    """The largest face in an image, cropped as `fer-predict` crops every face
    (`faces.main_face`), as a (C, size, size) uint8 array, and whether a face was found.
    Without a face: the whole image, as `load_image` gives it (centre square)."""
    photo = open_image(source, "RGB")  # full size: the detector sees what predict's detector sees
    region = faces.main_face(photo, margin)
    return load_image(np.asarray(photo if region is None else region), size, grayscale), region is not None


def _chw(im: Image.Image) -> np.ndarray:
    arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def sharpness(images: np.ndarray) -> np.ndarray:
    """Per image of (N, ..., H, W) uint8 images: the mean absolute difference between
    horizontal neighbours divided by the pixels' standard deviation. It measures detail, not
    contrast: a blurred copy scores lower, a brighter or flatter one the same."""
    x = images.reshape(len(images), -1, images.shape[-1]).astype(np.float32)
    std = x.std(axis=(1, 2))
    return np.abs(np.diff(x, axis=2)).mean(axis=(1, 2)) / np.maximum(std, 1.0)


NO_FACE = "no face found"


def _try_load(source, size, grayscale, face_margin=None, no_face="keep"):
    """(pixels or None, why not, whether a face was found: None without face cropping)."""
    try:
        if face_margin is None:
            return load_image(source, size, grayscale), None, None
        img, found = load_face(source, size, grayscale, face_margin)
    except Exception as e:  # any undecodable file is reported, never fatal
        return None, f"cannot decode: {type(e).__name__}: {e}", None
    return (None, NO_FACE, False) if not found and no_face == "skip" else (img, None, found)


def class_list(labels) -> list[str]:
    """Present classes in canonical order, any others after them alphabetically."""
    present = set(labels)
    return [c for c in CLASSES if c in present] + sorted(present - set(CLASSES))


def build(manifest: pd.DataFrame, raw_root: str | Path, out_dir: str | Path, size: int, grayscale: bool,
          workers: int | None = None, face_margin: float | None = None,
          no_face: str = "keep") -> tuple[pd.DataFrame, dict]:
    """Write `<split>.npy`, `<split>.csv` and `meta.json` for every split into `out_dir`.

    manifest: the split stage's rows (`path` relative to raw_root, `split`, `label`, ...).
    face_margin: crop each image to its largest face with this margin (`load_face`), as
    `fer-predict` does; None: the centre square of the whole image. An image without a face
    is then kept whole (no_face "keep") or left out ("skip"); `faces.csv` lists every image
    with `face_found`, and meta.json's `face` records the crop for the checkpoint.
    Returns the files left out (`path`, `reason`: undecodable, or no face found) and
    `image_stats` of every split.
    """
    out_dir = Path(out_dir)
    classes = class_list(manifest["label"])
    workers = workers or os.cpu_count() or 1
    load = functools.partial(_try_load, size=size, grayscale=grayscale, face_margin=face_margin, no_face=no_face)
    failed, stats, found = [], {}, []
    pixels = csv_pixels(manifest["path"], raw_root)
    with multiprocessing.Pool(workers) as pool:
        for split in SPLITS:
            rows = manifest[manifest["split"] == split].reset_index(drop=True)
            sources = [pixels[p] if p in pixels else str(Path(raw_root) / p) for p in rows["path"]]
            npy, csv = split_files(out_dir, split)
            with atomic_path(npy) as tmp:
                shape = (len(rows), 1 if grayscale else 3, size, size)
                arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
                ok = np.zeros(len(rows), dtype=bool)
                results = pool.imap(load, sources, chunksize=64)
                for i, (img, reason, face) in enumerate(tqdm(results, total=len(rows), desc=f"decode {split}", unit="img", disable=None)):
                    if face is not None:
                        found.append((rows["path"][i], split, face))
                    if img is None:
                        failed.append((rows["path"][i], reason))
                    else:
                        arr[i], ok[i] = img, True
                if not ok.all():
                    arr = _compact(arr, ok, tmp)
                arr.flush()
                stats[split] = image_stats(arr)
                del arr
            rows = rows[ok].assign(target=lambda d: d["label"].map(classes.index))
            write_csv(rows.reindex(columns=META_COLUMNS), csv)
    meta = {"classes": classes, "size": size, "channels": 1 if grayscale else 3}
    if face_margin is not None:
        write_csv(pd.DataFrame(found, columns=["path", "split", "face_found"]), out_dir / "faces.csv")
        meta["face"] = {"detector": faces.DETECTOR, "margin": face_margin, "no_face": no_face}
    write_json(meta, out_dir / "meta.json")
    return pd.DataFrame(failed, columns=["path", "reason"]), stats


def image_stats(images: np.ndarray, chunk: int = 1024) -> dict:
    """Median per-image contrast (standard deviation of the pixels) and `sharpness` of uint8
    (N, C, H, W) images. Splits that differ much in either were not made the same way, and a
    model trained on one does poorly on the other."""
    contrast, detail = [], []
    for i in range(0, len(images), chunk):
        x = np.asarray(images[i:i + chunk])
        contrast.append(x.reshape(len(x), -1).astype(np.float32).std(axis=1))
        detail.append(sharpness(x))
    if not contrast:
        return {"contrast": 0.0, "sharpness": 0.0}
    return {"contrast": round(float(np.median(np.concatenate(contrast))), 2),
            "sharpness": round(float(np.median(np.concatenate(detail))), 4)}


def mismatch(stats: dict, tolerance: float = 1.5) -> str:
    """A warning when the train split's images are much blurrier or flatter than the
    test split's (or the reverse), else ''."""
    if not all(s in stats and stats[s]["contrast"] > 0 for s in ("train", "test")):
        return ""
    lines = []
    for key in ("sharpness", "contrast"):
        tr, te = stats["train"][key], stats["test"][key]
        if max(tr, te) / max(min(tr, te), 1e-6) > tolerance:
            lines.append(f"{key} differs between train ({tr:g}) and test ({te:g}) by more than {tolerance:g}x")
    if not lines:
        return ""
    lines.append("the splits were not made the same way (another source, scaling or compression), and a model "
                 "trained on one does worse on the other: check how the copy was made, or get another copy")
    return "; ".join(lines)


def csv_pixels(paths: pd.Series, raw_root: str | Path) -> dict[str, np.ndarray]:
    """48x48 uint8 arrays for the `<file>.csv#<row>` paths (fer2013.csv's `pixels` column)."""
    out = {}
    refs = paths[paths.str.contains(".csv#", regex=False)]
    for csv, group in refs.groupby(refs.str.rsplit("#", n=1).str[0]):
        table = pd.read_csv(Path(raw_root) / csv, dtype=str)
        column = table[table.columns[table.columns.str.strip().str.lower() == "pixels"][0]]
        for ref in group:
            row = int(ref.rsplit("#", 1)[1])
            out[ref] = np.array(column.iloc[row].split(), dtype=np.uint8).reshape(48, 48)
    return out


def _compact(arr: np.memmap, keep: np.ndarray, path: Path) -> np.memmap:
    kept = np.array(arr[keep])
    del arr
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=kept.shape)
    out[:] = kept
    return out
