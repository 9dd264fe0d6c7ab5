"""Frames per second of fer-video on a 640x480 video, against a per-frame loop over fer-predict.

    python bench/video_speed.py models/best.pt models/model.onnx

Writes two demo videos (`fer.data.synthetic.video`, 640x480 at 30 frames a second, MPEG-4):
one face (a portrait of 192x256 px moving across the frame, as a webcam sees one person) and
three faces (96x128 each). Each is run through `fer.use.video.process` with the checkpoint
(PyTorch) and the ONNX file, detecting faces on every frame and on every 5th, and the
seconds per phase are printed: decode, detect, classify (crop and network), write. The last
line is what a loop of fer-predict's image path over the same frames gives (each frame
detected and classified alone: `fer.use.predict.predict_files`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
from PIL import Image

from fer.data import synthetic
from fer.use.predict import OnnxModel, TorchModel, predict_files
from fer.use.video import PHASES, process

SIZE = (640, 480)
FPS = 30


def videos(folder: Path, frames: int) -> dict[str, Path]:
    one = [
        {
            "subject": 0,
            "expressions": ("NE", "HA", "SU"),
            "start": (60, 100),
            "end": (380, 180),
            "frames": (0, frames - 1),
        }
    ]
    three = [
        {
            "subject": s,
            "expressions": ("NE", "HA"),
            "start": (20 + 200 * s, 60 + 40 * s),
            "end": (60 + 200 * s, 120 + 40 * s),
        }
        for s in range(3)
    ]
    return {
        "one face": synthetic.video(folder / "one.mp4", one, frames, SIZE, FPS, face_size=(192, 256)),
        "three faces": synthetic.video(folder / "three.mp4", three, frames, SIZE, FPS),
    }


def per_frame_loop(path: Path, model, frames: int) -> float:
    """Frames per second of fer-predict's image path called on one frame at a time."""
    cap = cv2.VideoCapture(str(path))
    start, done = time.perf_counter(), 0
    while done < frames:
        ok, bgr = cap.read()
        if not ok:
            break
        image = Image.fromarray(bgr[..., ::-1].copy())
        predict_files(["frame"], model, read=lambda _: image)
        done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("onnx", type=Path)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    models = {"PyTorch": TorchModel(args.checkpoint, "cpu"), "ONNX": OnnxModel(args.onnx)}
    print(f"{args.frames} frames of {SIZE[0]}x{SIZE[1]} per run; seconds per phase: {', '.join(PHASES)}")
    print("| video | model | detect every | frames/s | " + " | ".join(PHASES) + " |")
    print("|---|---|---|---|" + "---|" * len(PHASES))
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in videos(Path(tmp), args.frames).items():
            for label, model in models.items():
                for every in (1, 5):
                    done = process(str(path), model, Path(tmp) / "out", detect_every=every)
                    phases = " | ".join(f"{done['phases'][p]:.2f}" for p in PHASES)
                    print(f"| {name} | {label} | {every} | {done['fps']:.1f} | {phases} |")
            loop = per_frame_loop(path, models["ONNX"], min(args.frames, 100))
            print(f"| {name} | ONNX, fer-predict's image path frame by frame | 1 | {loop:.1f} | | | | |")


if __name__ == "__main__":
    main()
