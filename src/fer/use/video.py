"""Expressions over time: a video (or a camera, or a stream) in, per-face tracks out.

    fer-video interview.mp4 --out interview/ --annotate
    fer-video interview.mp4 --out interview/ --onnx models/model.onnx --detect-every 5 --smooth 0.5
    fer-video 0 --out camera/              # camera 0; or rtsp://... / http://... streams

Frames are read, scored in batches and written as they go, so memory stays flat whatever the
video's length. Faces are found by the detector fer-predict uses (`fer.data.faces`), every
`--detect-every` frames; in between, each face's box is carried forward at the speed it last
moved. Faces are followed across frames as tracks, so each person keeps a track id while in
view, and each track's class probabilities are smoothed over time with an exponential moving
average whose time constant is `--smooth` seconds (`fer.use.tracking`); raw and smoothed
values are both written. Each face is cut, framed and scored exactly as fer-predict cuts and
scores a photo's face (same crop, test-time augmentation and calibration; checkpoint or ONNX).

Outputs in `--out`: frames.csv (one row per frame and face: time, frame, track, box, label,
confidence, every probability, every smoothed probability, the smoothed label),
frames.jsonl with `--json` (the same rows as JSON Lines, a record per line), tracks.csv (per
track: time in view, share of time per expression, dominant expression), timeline.png
(smoothed probabilities over time, a panel per track; `fer.evaluation.plots`) and, with
`--annotate`, annotated.mp4 (boxes, track ids, labels).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fer import FerError
from fer.cli import user_errors
from fer.data.faces import Face, find_faces, rounded
from fer.io import check_writable
from fer.use.predict import CHECKPOINT_HELP, UNCERTAIN, answering_model, face_inputs, positive
from fer.use.tracking import Track, Tracker, smooth

PHASES = ("decode", "detect", "classify", "write")


def open_video(source: str):
    """OpenCV's capture of `source`: a file, a camera index ("0") or a stream URL."""
    import cv2

    if not source.isdigit() and "://" not in source and not Path(source).is_file():
        raise FerError(f"no such video file: {source}")
    cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not cap.isOpened():
        raise FerError(
            f"cannot open {source} as a video: OpenCV's FFmpeg backend reads mp4, avi, mov, mkv and "
            "webm files, camera indices and rtsp/http streams; a file cut short before its index "
            "(an mp4 copied in part) looks like this too"
        )
    return cap


@dataclass
class Frame:
    """A frame waiting for its batch to be classified."""

    index: int
    time: float
    bgr: np.ndarray
    tracks: list[Track]
    faces: list[Face]
    inputs: list[np.ndarray]


class Outputs:
    """frames.csv (and frames.jsonl, annotated.mp4) written as frames come, plus the running
    per-track summary; `close` ends every file properly, whatever stopped the video."""

    def __init__(self, out_dir: Path, classes: list[str], fps: float, annotate: bool, json_out: bool):
        self.out_dir, self.classes, self.fps = out_dir, classes, fps
        out_dir.mkdir(parents=True, exist_ok=True)
        self.csv = open(out_dir / "frames.csv", "w", newline="")
        self.json = open(out_dir / "frames.jsonl", "w") if json_out else None
        self.annotate, self.writer, self.rows = annotate, None, 0
        self.per_track: dict[int, dict] = {}

    def write(self, frame: Frame, rows: list[dict]) -> None:
        if rows:
            pd.DataFrame(rows).to_csv(self.csv, header=self.rows == 0, index=False)
            if self.json:  # JSON Lines: a record per line, so a file cut short keeps every whole line
                self.json.writelines(json.dumps(r) + "\n" for r in rows)
            self.rows += len(rows)
        for r in rows:
            s = self.per_track.setdefault(r["track"], {"first": r["time"], "frames": 0, "labels": {}})
            s["last"], s["frames"] = r["time"], s["frames"] + 1
            s["labels"][r["smoothed_label"]] = s["labels"].get(r["smoothed_label"], 0) + 1
        if self.annotate:
            self._draw(frame, rows)

    def _draw(self, frame: Frame, rows: list[dict]) -> None:
        import cv2

        image = frame.bgr.copy()
        if self.writer is None:
            height, width = image.shape[:2]
            self.writer = cv2.VideoWriter(
                str(self.out_dir / "annotated.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height)
            )
        for r in rows:
            x, y, w, h = (r[k] for k in ("x", "y", "w", "h"))
            cv2.rectangle(image, (x, y), (x + w, y + h), (40, 40, 255), 2)
            text = f"#{r['track']} {r['smoothed_label']} {max(r['smoothed_' + c] for c in self.classes):.2f}"
            cv2.putText(image, text, (x, max(12, y - 5)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 255), 1, cv2.LINE_AA)
        self.writer.write(image)

    def close(self) -> pd.DataFrame:
        """End the files; write and return tracks.csv (one row per track)."""
        if self.rows == 0:  # no face in the whole video: the header alone, so the file still reads
            columns = [
                "time",
                "frame",
                "track",
                "x",
                "y",
                "w",
                "h",
                "label",
                "confidence",
                *self.classes,
                "smoothed_label",
                *(f"smoothed_{c}" for c in self.classes),
            ]
            pd.DataFrame(columns=columns).to_csv(self.csv, index=False)
        self.csv.close()
        if self.json:
            self.json.close()
        if self.writer is not None:
            self.writer.release()
        tracks = track_table(self.per_track, self.classes, self.fps)
        tracks.to_csv(self.out_dir / "tracks.csv", index=False)
        return tracks


def track_table(per_track: dict[int, dict], classes: list[str], fps: float) -> pd.DataFrame:
    """Per track: when it was first and last in view, for how long (s) and in how many frames,
    the share of its frames per (smoothed) expression, and the dominant expression."""
    labels = [*classes, UNCERTAIN] if any(UNCERTAIN in s["labels"] for s in per_track.values()) else classes
    rows = []
    for track, s in sorted(per_track.items()):
        shares = {f"share_{c}": s["labels"].get(c, 0) / s["frames"] for c in labels}
        rows.append(
            {
                "track": track,
                "first_seen": s["first"],
                "last_seen": s["last"],
                "seconds": round(s["frames"] / fps, 3),
                "frames": s["frames"],
                "dominant": max(s["labels"], key=s["labels"].get),
                **shares,
            }
        )
    return pd.DataFrame(
        rows,
        columns=["track", "first_seen", "last_seen", "seconds", "frames", "dominant", *(f"share_{c}" for c in labels)],
    )


def process(
    source: str,
    model,
    out_dir: str | Path,
    detect_every: int = 1,
    tau: float = 0.5,
    batch_size: int = 32,
    annotate: bool = False,
    json_out: bool = False,
    min_confidence: float = 0.0,
    max_frames: int | None = None,
) -> dict:
    """Follow and score every face of `source` (see the module's doc), writing to `out_dir` as
    it goes. Returns what was done: frames read, expected (from the file's header; 0 for
    streams), tracks, frames per second, and seconds per phase (decode, detect, classify,
    write). A video that breaks off keeps every frame read before the break."""
    import cv2

    cap = open_video(source)
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and math.isfinite(fps) and fps > 0 else 30.0
    expected = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)) if Path(source).is_file() else 0
    out = Outputs(Path(out_dir), model.classes, fps, annotate, json_out)
    tracker, pending, seconds = Tracker(max_missed=max(15, 2 * detect_every)), [], dict.fromkeys(PHASES, 0.0)
    index, start = 0, time.perf_counter()
    try:
        while max_frames is None or index < max_frames:
            t0 = time.perf_counter()
            ok, bgr = cap.read()
            t1 = time.perf_counter()
            seconds["decode"] += t1 - t0
            if not ok:
                break
            image = Image.fromarray(np.ascontiguousarray(bgr[..., ::-1]))
            # between detections, the tracks in view at the last one (their boxes carried by `Track.at`)
            tracks = tracker.update(find_faces(image), index) if index % detect_every == 0 else tracker.shown
            t2 = time.perf_counter()
            seconds["detect"] += t2 - t1
            faces = [t.at(index) for t in tracks]
            pending.append(Frame(index, index / fps, bgr, tracks, faces, face_inputs(image, faces, model.data_config)))
            seconds["classify"] += time.perf_counter() - t2
            if sum(len(f.inputs) for f in pending) >= batch_size or len(pending) >= batch_size:
                _flush(pending, model, out, tau, min_confidence, seconds)
            index += 1
    finally:  # an error or Ctrl-C midway: what was read is scored and written, and every file ends properly
        try:
            _flush(pending, model, out, tau, min_confidence, seconds)
        finally:
            cap.release()
            tracks = out.close()
    return _done(index, expected, fps, len(tracks), out.rows, time.perf_counter() - start, seconds)


def _done(frames: int, expected: int, fps: float, tracks: int, faces: int, wall: float, seconds: dict) -> dict:
    """`process`' account of what it did."""
    return {
        "frames": frames,
        "expected_frames": expected,
        "fps_video": fps,
        "tracks": tracks,
        "faces": faces,
        "seconds": round(wall, 3),
        "fps": round(frames / wall, 1) if wall else 0.0,
        "phases": {k: round(v, 3) for k, v in seconds.items()},
    }


def _flush(pending: list[Frame], model, out: Outputs, tau: float, min_confidence: float, seconds: dict) -> None:
    """Classify the faces of the `pending` frames in one batch, then smooth and write them in order."""
    t0 = time.perf_counter()
    inputs = [x for f in pending for x in f.inputs]
    probs = model(np.stack(inputs)) if inputs else np.zeros((0, len(model.classes)))
    t1 = time.perf_counter()
    seconds["classify"] += t1 - t0
    row = 0
    for frame in pending:
        rows = []
        for track, face in zip(frame.tracks, frame.faces):
            p = probs[row]
            row += 1
            smoothed = smooth(track, p, frame.time, tau)
            x, y, w, h = rounded(face.box)
            rows.append(
                {
                    "time": round(frame.time, 4),
                    "frame": frame.index,
                    "track": track.id,
                    "x": x,
                    "y": y,
                    "w": w,
                    "h": h,
                    "label": _label(p, model.classes, min_confidence),
                    "confidence": float(p.max()),
                    **dict(zip(model.classes, map(float, p))),
                    "smoothed_label": _label(smoothed, model.classes, min_confidence),
                    **{f"smoothed_{c}": float(v) for c, v in zip(model.classes, smoothed)},
                }
            )
        out.write(frame, rows)
    pending.clear()
    seconds["write"] += time.perf_counter() - t1


def _label(probs: np.ndarray, classes: list[str], min_confidence: float) -> str:
    return classes[int(probs.argmax())] if probs.max() >= min_confidence else UNCERTAIN


def timeline_means(frames_csv: str | Path, classes: list[str], points: int = 1000) -> pd.DataFrame:
    """Each track's smoothed probabilities over time, averaged into at most `points` time bins:
    `time` and `smoothed_<class>` indexed by (track, bin). frames.csv is read in chunks, so a
    long video is summed in flat memory."""
    columns = [f"smoothed_{c}" for c in classes]
    end = 0.0
    for chunk in pd.read_csv(frames_csv, usecols=["time"], chunksize=100_000):
        end = max(end, float(chunk["time"].max()) if len(chunk) else end)
    width = max(end, 1e-9) / points
    sums = []
    for chunk in pd.read_csv(frames_csv, usecols=["time", "track", *columns], chunksize=100_000):
        chunk["bin"] = (chunk["time"] // width).astype(int)
        sums.append(chunk.groupby(["track", "bin"])[["time", *columns]].agg(["sum", "count"]))
    totals = pd.concat(sums).groupby(level=[0, 1]).sum() if sums else pd.DataFrame()
    if totals.empty:  # no face in the whole video
        return pd.DataFrame(columns=["time", *columns])
    return pd.DataFrame({c: totals[(c, "sum")] / totals[(c, "count")] for c in ["time", *columns]})


OUTPUTS = ("frames.csv", "frames.jsonl", "tracks.csv", "timeline.png", "annotated.mp4")  # what a run writes in --out


def clear(out: Path) -> None:
    """Remove an earlier run's outputs from `out`, so that none is left beside this run's."""
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """fer-video's command line, each bad value named by its flag."""
    parser = argparse.ArgumentParser(prog="fer-video", description="Facial expressions over time in a video, per face.")
    parser.add_argument("source", help="a video file (mp4, avi, mov, mkv, webm), a camera index (0) or a stream URL")
    parser.add_argument(
        "--out", required=True, help="folder for frames.csv, frames.jsonl, tracks.csv, timeline.png, annotated.mp4"
    )
    parser.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    parser.add_argument("--onnx", help="use this exported ONNX model instead of a checkpoint")
    parser.add_argument("--tta", choices=["flip", "none"], help="as fer-predict --tta (default flip)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--detect-every",
        type=int,
        default=1,
        metavar="N",
        help="run the face detector on every Nth frame; boxes are carried between (default 1)",
    )
    parser.add_argument(
        "--smooth",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="time constant of each track's moving average of the probabilities (0: none; default 0.5)",
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=0.0,
        metavar="P",
        help="label a face 'uncertain' when its highest probability is under P (as fer-predict)",
    )
    parser.add_argument("--annotate", action="store_true", help="also write annotated.mp4: boxes, track ids, labels")
    parser.add_argument(
        "--json", action="store_true", help="also write frames.jsonl: the rows of frames.csv, one JSON record per line"
    )
    parser.add_argument("--batch-size", type=positive, default=32, help="faces classified at once (default 32)")
    parser.add_argument("--max-frames", type=positive, help="stop after this many frames (a camera runs until Ctrl-C)")
    args = parser.parse_args(argv)
    for bad, why in (
        (args.detect_every < 1, f"--detect-every is 1 or more (got {args.detect_every})"),
        (args.smooth < 0, f"--smooth is 0 seconds or more (got {args.smooth:g})"),
        (not 0 <= args.min_confidence <= 1, f"--min-confidence is a probability, 0 to 1 (got {args.min_confidence:g})"),
    ):
        if bad:
            parser.error(why)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with user_errors(FileNotFoundError):
        check_writable(args.out, "--out", folder=True)
        model, line = answering_model(args.checkpoint, args.onnx, args.device, args.tta)
        if args.onnx and args.tta and args.tta != model.tta:
            raise FerError(f"{args.onnx} was exported with tta {model.tta}, so --tta {args.tta} cannot apply")
        print(line, file=sys.stderr)
        clear(Path(args.out))
        try:
            done = process(
                args.source,
                model,
                args.out,
                args.detect_every,
                args.smooth,
                args.batch_size,
                args.annotate,
                args.json,
                args.min_confidence,
                args.max_frames,
            )
        except KeyboardInterrupt:
            print(f"stopped; what was read is in {args.out}", file=sys.stderr)
            done = None
        from fer.evaluation.plots import timeline_png

        out = Path(args.out)
        timeline_png(timeline_means(out / "frames.csv", model.classes), model.classes, out / "timeline.png")
    if done is None:
        return 130
    if done["expected_frames"] and done["frames"] < done["expected_frames"] and args.max_frames is None:
        print(
            f"{args.source} broke off after frame {done['frames']} of the {done['expected_frames']} its header "
            f"announces (cut short or damaged); the {done['frames']} frames read are written",
            file=sys.stderr,
        )
    print(
        f"{done['frames']} frames, {done['faces']} faces in {done['tracks']} track(s), {done['fps']:.1f} frames/s; "
        f"{out / 'frames.csv'}, {out / 'tracks.csv'}, {out / 'timeline.png'}"
        + (f", {out / 'frames.jsonl'}" if args.json else "")
        + (f", {out / 'annotated.mp4'}" if args.annotate else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
