"""How many faces the face detector finds: per head angle on the demo faces, and on a real photo.

    python bench/face_recall.py [--subjects 24] [--size 96 128]

Each demo photo shows exactly one face, drawn at a known place (centred, about a third of
the width wide); a photo counts as found when a box's centre lies within 20% of the photo's
side of that place and the box is 30-100% of the width wide. Prints, per angle, the share of
photos found and the number of boxes elsewhere (false finds), for OpenCV's frontal cascade
alone, for the frontal and profile cascades together (both detectors before) and for
`fer.data.faces.detect_faces` (RetinaFace, now); then the same on matplotlib's sample photo of
Grace Hopper at five scales. Recall is no timing: the figures do not depend on the machine's
load.
"""

import argparse
import functools
import tempfile
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from matplotlib import cbook
from PIL import Image

from fer.data import synthetic
from fer.data.faces import MIN_FACE, detect_faces


@functools.cache
def classifier(name: str):
    return cv2.CascadeClassifier(cv2.data.haarcascades + name)


def cascade(name: str, grey: np.ndarray, mirrored: bool, neighbours: int) -> tuple[list, list]:
    """One OpenCV cascade's boxes (x, y, w, h) in the photo, and how many windows agreed on each."""
    found, counts = classifier(name).detectMultiScale2(
        grey[:, ::-1].copy() if mirrored else grey,
        scaleFactor=1.1,
        minNeighbors=neighbours,
        minSize=(MIN_FACE, MIN_FACE),
    )
    boxes = [(grey.shape[1] - x - w if mirrored else x, y, w, h) for x, y, w, h in np.asarray(found).reshape(-1, 4)]
    return boxes, [float(n) for n in np.ravel(counts)]


def frontal_only(image: Image.Image) -> list:
    """The first detector: OpenCV's frontal-face cascade, minNeighbors 5."""
    return cascade("haarcascade_frontalface_default.xml", np.asarray(image.convert("L")), False, 5)[0]


def cascades(image: Image.Image) -> list:
    """The second: the frontal cascade (minNeighbors 3) and the profile cascade (4) on the photo
    and on its mirror image, boxes merged by non-maximum suppression (IoU 0.3)."""
    grey = np.asarray(image.convert("L"))
    boxes, votes = [], []
    for name, mirrored, neighbours in (
        ("haarcascade_frontalface_default.xml", False, 3),
        ("haarcascade_profileface.xml", False, 4),
        ("haarcascade_profileface.xml", True, 4),
    ):
        b, v = cascade(name, grey, mirrored, neighbours)
        boxes, votes = boxes + b, votes + v
    keep = cv2.dnn.NMSBoxes(boxes, votes, 0.0, 0.3) if boxes else []
    return [boxes[i] for i in np.asarray(keep, dtype=int).ravel()]


DETECTORS = {
    "frontal cascade (before)": frontal_only,
    "frontal+profile cascades": cascades,
    "RetinaFace (now, detect_faces)": detect_faces,
}


def on_the_face(box, width: int, height: int) -> bool:
    """Whether `box` lies where fer.data.synthetic draws the face (centre 0.5 w, 0.46 h)."""
    x, y, w, _ = box
    return (
        abs(x + w / 2 - 0.5 * width) < 0.2 * width
        and abs(y + box[3] / 2 - 0.46 * height) < 0.2 * height
        and 0.3 * width < w < width
    )


def demo_recall(subjects: int, size: tuple[int, int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        photos = synthetic.generate(Path(tmp), subjects=subjects, angles=synthetic.ANGLES, size=size)
        counts = {name: defaultdict(lambda: [0, 0, 0]) for name in DETECTORS}
        for photo in photos:
            image = Image.open(photo).convert("RGB")
            for name, detect in DETECTORS.items():
                boxes = detect(image)
                c = counts[name][photo.stem[6:]]
                c[0] += 1
                c[1] += any(on_the_face(b, *image.size) for b in boxes)
                c[2] += sum(not on_the_face(b, *image.size) for b in boxes)
    print(f"demo faces, {subjects} people x 7 expressions x 2 sessions per angle, {size[0]}x{size[1]} px:")
    print("detector                        " + " ".join(f"{a:>12}" for a in synthetic.ANGLES) + "   HL+S+HR")
    for name, by_angle in counts.items():
        cells = " ".join(f"{by_angle[a][1] / by_angle[a][0]:6.1%} ({by_angle[a][2]:2d})" for a in synthetic.ANGLES)
        three = [by_angle[a] for a in ("HL", "S", "HR")]
        print(f"{name:32}{cells}   {sum(c[1] for c in three) / sum(c[0] for c in three):6.1%}")
    print("(share of photos whose face was found; in brackets, boxes elsewhere)")


def photo_recall() -> None:
    photo = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    print(f"matplotlib's grace_hopper.jpg ({photo.width}x{photo.height}, one face), boxes found:")
    for scale in (0.25, 0.5, 1, 2, 4):
        image = photo.resize((int(photo.width / scale), int(photo.height / scale)), Image.Resampling.BICUBIC)
        found = ", ".join(f"{name}: {len(detect(image))}" for name, detect in DETECTORS.items())
        print(f"  {image.width}x{image.height}: {found}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--size", type=int, nargs=2, default=(96, 128), metavar=("WIDTH", "HEIGHT"))
    args = parser.parse_args()
    demo_recall(args.subjects, tuple(args.size))
    photo_recall()


if __name__ == "__main__":
    main()
