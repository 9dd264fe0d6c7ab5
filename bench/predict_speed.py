"""Faces per second of `predict` on CPU: PyTorch checkpoint vs. the exported ONNX file.

    python bench/predict_speed.py models/best.pt models/model.onnx [--faces 512]

Times face detection on matplotlib's sample photo (`fer.data.faces.detect_faces`, and the
frontal+profile cascades it replaced, from bench/face_recall.py), then the classification of
its face crop in batches of 64, and prints one line per case for BENCHMARKS.md.
"""

import argparse
import platform
import time

import numpy as np
import torch
from face_recall import cascades  # bench/face_recall.py, beside this script
from matplotlib import cbook
from PIL import Image

from fer.data.faces import DETECTOR, detect_faces
from fer.use.predict import OnnxModel, TorchModel, face_crops


def faces_per_second(model, crops: np.ndarray, batch_size: int = 64, repeats: int = 3) -> float:
    model(crops[:batch_size])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(crops), batch_size):
            model(crops[i : i + batch_size])
        best = min(best, time.perf_counter() - start)
    return len(crops) / best


def photos_per_second(detect, photo: Image.Image, n: int = 20) -> float:
    detect(photo)  # warm-up: the ONNX session or the cascade files load on first use
    start = time.perf_counter()
    for _ in range(n):
        detect(photo)
    return n / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint")
    parser.add_argument("onnx")
    parser.add_argument("--faces", type=int, default=512)
    args = parser.parse_args()
    photo = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    models = {"pytorch": TorchModel(args.checkpoint, "cpu"), "onnxruntime": OnnxModel(args.onnx)}
    channels, size = models["pytorch"].data_config["input_size"][:2]
    face = face_crops(photo, models["pytorch"].data_config)[1][0]  # cut as fer-predict cuts it
    crops = np.repeat(face[None], args.faces, axis=0)
    print(
        f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, "
        f"model {args.checkpoint} at {size}px"
    )
    for name, detect in ((DETECTOR, detect_faces), ("frontal+profile cascades, before", cascades)):
        print(
            f"face detection ({name}) on a {photo.width}x{photo.height} photo: "
            f"{photos_per_second(detect, photo):.1f} photos/s"
        )
    for name, model in models.items():
        print(f"{name}: {faces_per_second(model, crops):.0f} faces/s (classification of crops, batch 64)")


if __name__ == "__main__":
    main()
