"""Faces followed across a video's frames, and their probabilities smoothed over time.

A detection joins the track whose box, carried forward to this frame at the speed it last
moved, it overlaps most: the Hungarian assignment (scipy) over box IoU (torchvision), so
each person keeps a track id while in view. A track missed for more than `max_missed`
frames ends. Per track, the class probabilities are smoothed with an exponential moving
average whose time constant is in seconds, so it means the same at any frame rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fer.data.faces import Face

MIN_IOU = 0.2  # a detection joins a track only if its box overlaps the track's (carried) box at least this much


@dataclass
class Track:
    """One person's face while in view: its id, its last box, how fast the box moved."""

    id: int
    face: Face
    seen: int  # frame index of the last detection
    velocity: tuple[float, float] = (0.0, 0.0)  # box centre, px per frame
    smoothed: np.ndarray | None = None
    time: float | None = None  # of the smoothed value

    def at(self, frame: int) -> Face:
        """The face's box and landmarks carried forward to `frame` at its last speed."""
        dx, dy = (v * (frame - self.seen) for v in self.velocity)
        x, y, w, h = self.face.box
        return Face(
            (x + dx, y + dy, w, h), tuple((px + dx, py + dy) for px, py in self.face.landmarks), self.face.score
        )


@dataclass
class Tracker:
    """Faces followed across frames: detections joined to tracks by box overlap."""

    max_missed: int = 15  # frames a track survives without a detection (a blink of the detector)
    tracks: list[Track] = field(default_factory=list)
    shown: list[Track] = field(default_factory=list)  # the tracks in view since the last detection
    next_id: int = 1

    def update(self, faces: list[Face], frame: int) -> list[Track]:
        """Join `faces`, detected in `frame`, to the tracks; start a track for each face left
        over; return the tracks in view (in track id order)."""
        from scipy.optimize import linear_sum_assignment
        from torchvision.ops import box_iou

        matched = {}
        if self.tracks and faces:
            iou = box_iou(_xyxy([t.at(frame).box for t in self.tracks]), _xyxy([f.box for f in faces])).numpy()
            rows, cols = linear_sum_assignment(-iou)
            matched = {c: self.tracks[r] for r, c in zip(rows, cols) if iou[r, c] >= MIN_IOU}
        for i, face in enumerate(faces):
            track = matched.get(i)
            if track is None:
                track = Track(self.next_id, face, frame)
                self.next_id += 1
                self.tracks.append(track)
            else:
                (x0, y0), (x1, y1) = _centre(track.face), _centre(face)
                track.velocity = ((x1 - x0) / (frame - track.seen), (y1 - y0) / (frame - track.seen))
                track.face, track.seen = face, frame
        self.tracks = [t for t in self.tracks if frame - t.seen <= self.max_missed]
        self.shown = sorted((t for t in self.tracks if t.seen == frame), key=lambda t: t.id)
        return self.shown


def _xyxy(boxes):
    import torch

    b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1)


def _centre(face: Face) -> tuple[float, float]:
    x, y, w, h = face.box
    return x + w / 2, y + h / 2


def smooth(track: Track, probs: np.ndarray, t: float, tau: float) -> np.ndarray:
    """The track's exponential moving average of `probs` at time `t` (s), time constant `tau`
    (s; 0: no smoothing): a frame's weight is 1 - exp(-dt / tau), so the smoothing means the
    same at any frame rate."""
    if track.smoothed is None or tau <= 0:
        track.smoothed = probs.copy()
    else:
        track.smoothed = track.smoothed + (1 - math.exp(-(t - track.time) / tau)) * (probs - track.smoothed)
    track.time = t
    return track.smoothed
