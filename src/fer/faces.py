"""Finding faces in a photo and cropping them: one way, for training and for predict alike.

Preprocess (with `preprocess.face_crop`) and `fer-predict` both call `detect_faces` and
`face_crop`, so a model sees the same kind of crop in training and in use. The detector is
chosen here and only here (`CASCADES`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

MIN_FACE = 24  # px: the cascades' smallest face
MARGIN = 0.2  # share of the face box added on each side: the cascades' boxes are tight
# OpenCV's bundled Haar cascades (file, mirrored, minNeighbors). The profile cascade finds
# faces turned one way only; run on the mirrored photo it finds those turned the other way.
# Together they find about half again as many half-profile faces as the frontal one alone
# (BENCHMARKS.md). minNeighbors: fewer agreeing windows find more faces, more false ones.
CASCADES = (
    ("haarcascade_frontalface_default.xml", False, 3),
    ("haarcascade_profileface.xml", False, 4),
    ("haarcascade_profileface.xml", True, 4),
)
DETECTOR = "OpenCV Haar cascades: frontal face, profile face and mirrored profile face"
_loaded: dict = {}


def _cascade(name: str):
    import cv2

    if name not in _loaded:
        _loaded[name] = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    return _loaded[name]


def detect_faces(image: Image.Image, min_size: int = MIN_FACE) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in `image`, left to right as non-maximum suppression keeps them.

    Each cascade can report one face twice (two boxes shifted against each other), and two
    cascades can each report the same face; of boxes that overlap by more than 0.3
    (intersection over union), non-maximum suppression keeps the one more detections agreed on.
    """
    import cv2

    grey = np.asarray(image.convert("L"))
    boxes, votes = [], []
    for name, mirrored, neighbours in CASCADES:
        found, counts = _cascade(name).detectMultiScale2(
            grey[:, ::-1].copy() if mirrored else grey, scaleFactor=1.1, minNeighbors=neighbours,
            minSize=(min_size, min_size))
        for (x, y, w, h), n in zip(np.asarray(found, dtype=int).reshape(-1, 4), np.ravel(counts)):
            boxes.append((int(grey.shape[1] - x - w) if mirrored else int(x), int(y), int(w), int(h)))
            votes.append(float(n))
    keep = cv2.dnn.NMSBoxes(boxes, votes, 0.0, 0.3) if boxes else []
    return sorted(boxes[i] for i in np.asarray(keep, dtype=int).ravel())


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
