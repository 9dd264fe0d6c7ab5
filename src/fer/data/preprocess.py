"""Decode every image once into one memory-mappable uint8 array.

Training then never touches a JPEG again: epochs read pixels straight from `images.npy`
(N, C, H, W), and the per-image facts travel beside it in `images.csv`. The cache holds
every image whatever the split, and normalisation is left to the batch, so changing the
split, the model or the learning rate never rebuilds it.
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

from fer.data import faces
from fer.data.cache import cache_files
from fer.data.labels import CLASSES
from fer.io import atomic_path, write_csv, write_json
from fer.progress import progress

META_COLUMNS = ["path", "label", "target", "subject", "angle", "session", "votes"]


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


def load_face(
    source: str | Path | np.ndarray, size: int, grayscale: bool, framing: dict, align: bool = False
) -> tuple[np.ndarray, bool]:
    """The largest face in an image, cut to `framing` (`faces.crop`) as `fer-predict` cuts
    every face, as a (C, size, size) uint8 array, and whether a face was found.
    Without a face: the whole image, as `load_image` gives it (centre square)."""
    photo = open_image(source, "RGB")  # full size: the detector sees what predict's detector sees
    face = faces.largest(faces.find_faces(photo))
    region = photo if face is None else faces.crop(photo, face, framing, align)
    return load_image(np.asarray(region), size, grayscale), face is not None


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
# In a photo, the 5th and 95th percentiles of the pixels lie far more than this many grey
# levels apart (over 100 in every KDEF face crop, 27 in FER2013's flattest face); in a black or
# grey placeholder saved in a photo's place (one KDEF copy holds nine, FER2013 fourteen) they
# do not, whatever a small blot of stray pixels says.
BLANK_SPREAD = 16


def blank(img: np.ndarray) -> str:
    """Why `img` (uint8 pixels) holds no picture, or '' if it holds one: near-constant pixels."""
    low, high = np.percentile(img, [5, 95])
    if high - low < BLANK_SPREAD:
        return f"no picture: near-constant pixels (90% within {high - low:.0f} grey levels)"
    return ""


def _try_load(source, size, grayscale, framing=None, align=False, no_face="keep"):
    """(pixels or None, why not, whether a face was found: None without face cropping)."""
    try:
        if framing is None:
            img, found = load_image(source, size, grayscale), None
        else:
            img, found = load_face(source, size, grayscale, framing, align)
    except Exception as e:  # any undecodable file is reported, never fatal
        return None, f"cannot decode: {type(e).__name__}: {e}", None
    if why := blank(img):
        return None, why, found
    return (None, NO_FACE, False) if found is False and no_face == "skip" else (img, None, found)


def class_list(labels) -> list[str]:
    """Present classes in canonical order, any others after them alphabetically."""
    present = set(labels)
    return [c for c in CLASSES if c in present] + sorted(present - set(CLASSES))


def build(
    images: pd.DataFrame,
    raw_root: str | Path,
    out_dir: str | Path,
    size: int,
    grayscale: bool,
    workers: int | None = None,
    face_margin: float | None = None,
    no_face: str = "keep",
    align: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """Write `images.npy`, `images.csv` and `meta.json` into `out_dir`: every image once.

    images: the split stage's images.csv rows (`path` relative to raw_root, `label`, ...),
    whatever the split: the split chooses rows from this cache (`fer.data.cache.load_split`).
    face_margin: crop each image to its largest face with this margin (`load_face`), as
    `fer-predict` does, and with `align` level its eyes; None: the centre square of the whole
    image. An image without a face is then kept whole (no_face "keep") or left out ("skip");
    `faces.csv` lists every image with `face_found`, and meta.json's `face` records the crop
    for the checkpoint. Whole images are taken to be face crops already: meta.json's
    `framing` says how their faces are framed (`measure`), for predict to cut photos alike.
    An image with no picture in it (`blank`) is left out.
    Returns the files left out (`path`, `reason`: undecodable, no picture, or no face found)
    and `image_stats` per part of the dataset's own split (`official`; "all" without one).
    """
    out_dir = Path(out_dir)
    images = images.reset_index(drop=True)
    classes = class_list(images["label"])
    workers = workers or os.cpu_count() or 1
    framing = None if face_margin is None else faces.margin_framing(face_margin)
    load = functools.partial(_try_load, size=size, grayscale=grayscale, framing=framing, align=align, no_face=no_face)
    sources = _sources(images["path"], raw_root)
    npy, csv = cache_files(out_dir)
    with atomic_path(npy) as tmp, multiprocessing.Pool(workers) as pool:
        arr = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(len(images), 1 if grayscale else 3, size, size)
        )
        ok, failed, found = _decode(pool.imap(load, sources, chunksize=64), images["path"], arr)
        if not ok.all():
            arr = _compact(arr, ok, tmp)
        arr.flush()
        stats = _stats_by_part(arr, images["official"][ok] if "official" in images else None)
        measured = measure(arr, pool) if face_margin is None else None
        del arr
    rows = images[ok].assign(target=lambda d: d["label"].map(classes.index))
    write_csv(rows.reindex(columns=META_COLUMNS), csv)
    meta = {"classes": classes, "size": size, "channels": 1 if grayscale else 3}
    if face_margin is not None:
        write_csv(pd.DataFrame(found, columns=["path", "face_found"]), out_dir / "faces.csv")
        face = {"margin": face_margin, "no_face": no_face, "align": align, "framing": framing}
        meta["face"] = {"detector": faces.DETECTOR, **face}
    elif measured:
        meta["framing"] = {"detector": faces.DETECTOR, **measured}
    write_json(meta, out_dir / "meta.json")
    return pd.DataFrame(failed, columns=["path", "reason"]), stats


def _decode(results, paths: pd.Series, arr: np.ndarray) -> tuple[np.ndarray, list, list]:
    """Each of `_try_load`'s `results` into its row of `arr`; returns which rows hold an image,
    the (path, reason) of those left out, and the (path, face found) of face crops."""
    ok, failed, found = np.zeros(len(paths), dtype=bool), [], []
    for i, (img, reason, face) in enumerate(progress(results, "preprocess: decode", len(paths), "images")):
        if face is not None:
            found.append((paths[i], face))
        if img is None:
            failed.append((paths[i], reason))
        else:
            arr[i], ok[i] = img, True
    return ok, failed, found


def _sources(paths: pd.Series, raw_root: str | Path) -> list:
    """What each image is decoded from: its pixels (a fer2013.csv row) or its file."""
    pixels = csv_pixels(paths, raw_root)
    return [pixels[p] if p in pixels else str(Path(raw_root) / p) for p in paths]


def _framing_of(image: np.ndarray):
    """`faces.framing_of` the largest face in one cached (C, H, W) image, or None."""
    # A crop is all face, however small the cache, and one that fills the picture is found at the
    # smaller detection size alone (6x faster than both)
    pixels = image[0] if len(image) == 1 else image.transpose(1, 2, 0)
    face = faces.largest(faces.find_faces(Image.fromarray(pixels), min_size=1, sides=faces.DETECT_SIDES[:1]))
    return None if face is None else faces.framing_of(face, image.shape[2], image.shape[1])


def measure(images: np.ndarray, pool, sample: int = faces.MEASURE_SAMPLE) -> dict | None:
    """How the faces sit in cached (N, C, H, W) images that are face crops already (FER2013,
    CK+48): `faces.measure_framing` over up to `sample` of them, spread evenly. None where too
    few faces are found (e.g. tiny images)."""
    chosen = np.unique(np.linspace(0, len(images) - 1, min(sample, len(images))).astype(int)) if len(images) else []
    found = [f for f in pool.imap(_framing_of, (np.asarray(images[i]) for i in chosen), chunksize=16) if f]
    return faces.measure_framing(found, len(chosen))


def _stats_by_part(images: np.ndarray, official: pd.Series | None) -> dict:
    """`image_stats` per part of the dataset's own split (FER2013's train/val/test), where every
    image has one; else of all the images, under "all"."""
    if official is None or (official == "").any() or official.isna().any():
        return {"all": image_stats(images)}
    part = official.to_numpy()
    return {name: image_stats(images[np.flatnonzero(part == name)]) for name in sorted(set(part))}


def image_stats(images: np.ndarray, chunk: int = 1024) -> dict:
    """Median per-image contrast (standard deviation of the pixels) and `sharpness` of uint8
    (N, C, H, W) images. Splits that differ much in either were not made the same way, and a
    model trained on one does poorly on the other."""
    contrast, detail = [], []
    for i in range(0, len(images), chunk):
        x = np.asarray(images[i : i + chunk])
        contrast.append(x.reshape(len(x), -1).astype(np.float32).std(axis=1))
        detail.append(sharpness(x))
    if not contrast:
        return {"contrast": 0.0, "sharpness": 0.0}
    return {
        "contrast": round(float(np.median(np.concatenate(contrast))), 2),
        "sharpness": round(float(np.median(np.concatenate(detail))), 4),
    }


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
    lines.append(
        "the splits were not made the same way (another source, scaling or compression), and a model "
        "trained on one does worse on the other: check how the copy was made, or get another copy"
    )
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
