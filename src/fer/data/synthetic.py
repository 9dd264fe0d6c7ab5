"""Deterministic procedural face images named and laid out exactly like KDEF.

KDEF (Karolinska Directed Emotional Faces) stores one folder per session and
subject, e.g. ``AF01/AF01ANS.JPG`` = session A, female 01, angry, straight.
:func:`generate` writes cartoon faces with the same names so the whole pipeline
(indexing, subject-wise splits, training, evaluation) runs without the licensed
data set.  Identity (face shape, skin, hair, ...) is fixed per subject and
varies slightly per session; the expression moves brows, eyes and mouth; the
angle is a yaw projection; every image gets its own intensity, pose jitter and
photometric noise so the task is learnable but not trivially separable.
"""

from __future__ import annotations

import math
import pathlib
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from fer.data.labels import KDEF_ANGLES, KDEF_CODES

EXPRESSIONS = tuple(KDEF_CODES)
ANGLES = KDEF_ANGLES
SESSIONS = ("A", "B")

# Offsets from neutral at full intensity: brow raise, brow inner-end raise, eye opening, cheek raise,
# mouth curve (+ = smile), mouth opening (< 0 = pressed lips), mouth width, sneer (one corner up).
_EXPR = {
    "AF": (0.12, 0.10, 0.60, 0.0, -0.20, 0.45, 0.20, 0.0),
    "AN": (-0.10, -0.16, -0.45, 0.0, -0.25, -0.35, -0.20, 0.0),
    "DI": (-0.07, -0.03, -0.50, 0.45, -0.25, 0.0, -0.05, 0.75),
    "HA": (0.0, 0.0, -0.30, 0.8, 0.45, 0.35, 0.30, 0.0),
    "NE": (0.0,) * 8,
    "SA": (-0.02, 0.16, -0.25, 0.0, -0.45, 0.0, -0.10, 0.0),
    "SU": (0.20, 0.03, 0.75, 0.0, 0.0, 0.90, -0.45, 0.0),
}
# Yaw in radians; "L" turns the face towards the viewer's left (features move to smaller x).
_YAW = {"FL": -1.2, "HL": -0.6, "S": 0.0, "HR": 0.6, "FR": 1.2}
_SKIN = (np.array([250.0, 222.0, 196.0]), np.array([105.0, 68.0, 48.0]))  # lightest, darkest
_HAIR = ((25, 20, 18), (60, 40, 25), (110, 75, 40), (200, 170, 110), (150, 70, 30), (160, 160, 160))
_HAIR_P = (0.3, 0.25, 0.15, 0.12, 0.06, 0.12)  # black and brown most common
_STYLES = ("short", "long", "bald", "fringe")
_DARK = (20, 10, 5)
Color = tuple[int, int, int]
Points = list[tuple[float, float]]


def _mix(a: Sequence[float], b: Sequence[float] = (0, 0, 0), t: float = 0.0) -> Color:
    """Blend colour ``a`` towards ``b`` by ``t`` in [0, 1]; return an RGB int tuple PIL accepts."""
    return tuple(int(np.clip(x + (y - x) * t, 0, 255)) for x, y in zip(a, b))  # type: ignore[return-value]


def _rng(*key: int) -> np.random.Generator:
    """Independent generator for one (seed, subject, ..., tag) key; never touches global RNG state."""
    return np.random.default_rng(list(key))


class _Proj:
    """Maps face coordinates (u in half-widths, v in half-heights, +v down) to supersampled pixels."""

    def __init__(self, cx: float, cy: float, fw: float, fh: float, yaw: float, roll: float) -> None:
        self.cx, self.cy, self.fw, self.fh, self.yaw = cx, cy, fw, fh, yaw
        self.c, self.s = math.cos(roll), math.sin(roll)

    def plane(self, x: Any, y: Any) -> Points:
        """Already-projected face coordinates -> pixels (scale, in-plane roll, translation)."""
        px = np.asarray(x, float) * self.fw
        py = np.broadcast_to(np.asarray(y, float), px.shape) * self.fh
        return list(zip(self.cx + self.c * px - self.s * py, self.cy + self.s * px + self.c * py))

    def surface(self, u: Any, v: Any, depth: float = 1.0) -> Points:
        """Points on the (spherical) face: rotate in longitude, clamp hidden ones onto the rim."""
        lon = np.arcsin(np.clip(np.asarray(u, float), -1, 1)) + self.yaw
        return self.plane(depth * np.sin(np.clip(lon, -math.pi / 2, math.pi / 2)), v)

    def shell(self, u: Any, v: Any) -> Points:
        """Points on the head silhouette, which barely changes with yaw: it just shifts and narrows."""
        s = math.sin(self.yaw)
        return self.plane(np.asarray(u, float) * (1 - 0.08 * abs(s)) + 0.12 * s, v)


def _identity(seed: int, subject: int) -> dict[str, Any]:
    """Stable per-subject traits in face coordinates; the same (seed, subject) is always the same person."""
    r = _rng(seed, subject, 1)
    hair_p = (0.55, 0.05, 0.2, 0.2) if subject % 2 else (0.15, 0.55, 0.0, 0.3)  # male / female styles
    return dict(
        width=r.uniform(0.29, 0.34),
        aspect=r.uniform(1.22, 1.45),
        jaw=r.uniform(1.7, 2.9),
        skin=_SKIN[0] + (_SKIN[1] - _SKIN[0]) * r.uniform() + r.normal(0, 6, 3),
        hair=np.array(_HAIR[r.choice(len(_HAIR), p=_HAIR_P)], float),
        style=_STYLES[r.choice(4, p=hair_p)],
        hairline=r.uniform(-0.76, -0.62),
        eye_sep=r.uniform(0.33, 0.43),
        eye_w=r.uniform(0.16, 0.22),
        eye_h=r.uniform(0.07, 0.095),
        eye_y=r.uniform(-0.16, -0.06),
        iris=r.integers(30, 140, 3),
        brow_gap=r.uniform(0.14, 0.2),
        brow_t=r.uniform(0.04, 0.07),
        nose_len=r.uniform(0.22, 0.38),
        nose_w=r.uniform(0.09, 0.16),
        mouth_y=r.uniform(0.48, 0.6),
        mouth_w=r.uniform(0.34, 0.46),
        lip=_mix(r.integers(150, 210, 3) * np.array([1.0, 0.55, 0.55]), (90, 40, 40), r.uniform(0, 0.4)),
        lip_t=r.uniform(0.04, 0.065),
        bg=r.integers(90, 230, 3),
        shirt=r.integers(20, 230, 3),
        glasses=int(r.choice([-1, -1, -1, 0, 1])),  # index of the session worn in; -1 = never
        sneer_side=float(r.choice([-1.0, 1.0])),
        resting=r.normal(0, 0.03, 8),
    )


def _session(seed: int, subject: int, session: int, idn: dict[str, Any]) -> dict[str, Any]:
    """Small per-session changes, like a second photo shoot: light, framing, hair tone/line, glasses."""
    r = _rng(seed, subject, session, 2)
    return dict(
        dx=r.uniform(-0.03, 0.03),
        dy=r.uniform(-0.03, 0.03),
        scale=r.uniform(0.96, 1.04),
        gain=r.uniform(0.9, 1.1),
        cast=r.uniform(0.95, 1.05, 3),
        light_dir=r.uniform(0, 2 * math.pi),
        hair=np.clip(idn["hair"] * r.uniform(0.85, 1.15), 0, 255),
        hairline=r.uniform(-0.04, 0.04),
        bg=np.clip(idn["bg"] + r.normal(0, 8, 3), 0, 255),
        glasses=idn["glasses"] == session,
    )


def _draw_head(d: ImageDraw.ImageDraw, p: _Proj, idn: dict[str, Any], ses: dict[str, Any]) -> None:
    """Long hair, neck, shoulders, ears, face outline and hair cap, back to front."""
    t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    skin, hair, style = idn["skin"], ses["hair"], idn["style"]
    if style == "long":
        us, vs = [-1.1, -1.25, -1.3, 1.3, 1.25, 1.1], [-0.8, 0.3, 1.35, 1.35, 0.3, -0.8]
        d.polygon(p.shell(us, vs), fill=_mix(hair, t=0.15))
    d.polygon(p.shell([-0.42, 0.42, 0.5, -0.5], [0.6, 0.6, 1.4, 1.4]), fill=_mix(skin, t=0.15))
    d.polygon(p.shell([-0.6, 0.6, 2.6, 3, -3, -2.6], [1.25, 1.25, 1.5, 3, 3, 1.5]), fill=_mix(idn["shirt"]))
    sy = math.sin(p.yaw)
    for side in (-1, 1):  # ears sit at the sides of the head: drawn only if not rotated behind it
        lon = side * (math.pi / 2 - 0.12) + p.yaw
        if abs(lon) < math.pi / 2 + 0.05:
            x = math.sin(lon) * (1 - 0.08 * abs(sy)) + 0.12 * sy
            d.polygon(p.plane(x + 0.13 * np.cos(t), idn["eye_y"] + 0.07 + 0.2 * np.sin(t)), fill=_mix(skin, t=0.1))
    n = np.where(np.sin(t) > 0, idn["jaw"], 2.0)  # superellipse lower half: pointy (<2) to square (>2) jaw
    c, s = np.cos(t), np.sin(t)
    d.polygon(p.shell(np.sign(c) * np.abs(c) ** (2 / n), np.sign(s) * np.abs(s) ** (2 / n)), fill=_mix(skin))
    if style == "bald":
        return
    a = np.linspace(np.pi + 0.1, 2 * np.pi - 0.1, 24)
    us = np.linspace(0.98, -0.98, 25)
    top = idn["hairline"] + ses["hairline"] + (0.12 if style == "fringe" else 0.0)
    vs = -0.1 + (top + 0.1) * np.cos(us * np.pi / 2) ** 0.6
    if style == "fringe":  # jagged bangs so the fringe reads as hair, not as a hat
        vs = vs + 0.04 * (np.arange(25) % 2)
    d.polygon(p.shell(1.1 * np.cos(a), 1.12 * np.sin(a)) + p.surface(us, vs), fill=_mix(hair))


def _draw_eyes_brows(d: ImageDraw.ImageDraw, p: _Proj, idn: dict[str, Any], e: np.ndarray, lw: int) -> None:
    """Almond eyes (opening, lower lid raised by the cheek) with lid-clipped irises, then the brows."""
    brow, inner, eye, cheek = e[:4]
    ey, ew, sep = idn["eye_y"], idn["eye_w"], idn["eye_sep"]
    up = idn["eye_h"] * max(0.25, 1 + eye)
    lo = up * 0.9 * max(0.25, 1 - 0.6 * cheek)
    s, t = np.linspace(-1, 1, 15), np.linspace(0, 2 * np.pi, 20, endpoint=False)
    for side in (-1, 1):
        ex = side * sep
        lid_u, lid_l = ey - up * (1 - s**2), ey + lo * (1 - s**2)
        d.polygon(p.surface(ex + ew * s, lid_u) + p.surface(ex - ew * s, lid_l[::-1]), fill=(240, 236, 230))
        for r, col in ((0.5, idn["iris"]), (0.22, (10, 10, 10))):  # iris, then pupil
            iu, iv = ex + r * ew * np.cos(t), ey + r * ew * np.sin(t) * p.fw / p.fh
            q = np.clip((iu - ex) / ew, -1, 1)  # clip to the lids so a narrowed eye hides the iris
            d.polygon(p.surface(iu, np.clip(iv, ey - up * (1 - q**2), ey + lo * (1 - q**2))), fill=_mix(col))
        d.line(p.surface(ex + ew * 1.1 * s, lid_u), fill=(30, 20, 15), width=lw + 1)
        d.line(p.surface(ex + ew * s, lid_l), fill=_mix(idn["skin"], _DARK, 0.6), width=lw)
        bv = ey - idn["brow_gap"] - brow - np.array([inner, 0.3 * brow + 0.03, 0.0])
        bv[0] = min(bv[0], ey - up - 0.02)  # a scowl may touch the lid but not cross it
        d.line(
            p.surface(side * np.array([sep - ew * 0.9, sep, sep + ew * 1.2]), bv),
            joint="curve",
            fill=_mix(idn["hair"], t=0.55),
            width=max(1, round(idn["brow_t"] * p.fh)),
        )


def _draw_lower(d: ImageDraw.ImageDraw, p: _Proj, idn: dict[str, Any], e: np.ndarray, lw: int) -> None:
    """Nose and mouth: curve, opening (dark inside, teeth for a smile), width, one-sided sneer."""
    curve, mopen, mwidth, sneer = e[4:]
    ey, nl, nw, my = idn["eye_y"], idn["nose_len"], idn["nose_w"], idn["mouth_y"]
    line = _mix(idn["skin"], _DARK, 0.6)
    d.line(p.surface([0.02, 0.04, 0.0], [ey, ey + nl * 0.7, ey + nl + 0.1], 1.15), fill=line, width=lw)
    d.line(
        p.surface(nw * np.array([-1, -0.4, 0, 0.4, 1]), ey + nl + np.array([0.06, 0.12, 0.13, 0.12, 0.06]), 1.1),
        fill=line,
        width=lw + 1,
    )
    s = np.linspace(-1, 1, 17)
    env, mu = np.sqrt(1 - s**2), idn["mouth_w"] * (1 + mwidth) * s
    mid = my - 0.4 * curve * s**2 - 0.3 * sneer * np.maximum(s * idn["sneer_side"], 0) ** 1.5
    o = max(mopen, 0) * 0.3 * env
    top, bot, lt = mid - 0.4 * o, mid + 0.6 * o, idn["lip_t"] * (1 + 1.5 * min(mopen, 0))
    if mopen > 0.05:
        d.polygon(p.surface(mu, top) + p.surface(mu[::-1], bot[::-1]), fill=(60, 15, 20))
        if curve > 0.15:  # a smile shows the upper teeth
            d.polygon(
                p.surface(mu * 0.8, top) + p.surface(mu[::-1] * 0.8, (top + 0.35 * (bot - top))[::-1]),
                fill=(235, 232, 220),
            )
    d.polygon(p.surface(mu, top - lt * env - 0.005) + p.surface(mu[::-1], top[::-1]), fill=idn["lip"])
    d.polygon(p.surface(mu, bot) + p.surface(mu[::-1], (bot + 1.3 * lt * env + 0.005)[::-1]), fill=idn["lip"])
    d.line(p.surface(mu, mid), fill=_mix(idn["lip"], t=0.6), width=lw + 1)


def _draw_wrinkles(
    d: ImageDraw.ImageDraw, p: _Proj, idn: dict[str, Any], ses: dict[str, Any], e: np.ndarray, k: float, lw: int
) -> None:
    """Expression lines whose darkness follows intensity ``k``: forehead, frown, nose bridge, cheek folds."""
    brow, inner, _, cheek, _, _, _, sneer = e
    ey, nw, my = idn["eye_y"], idn["nose_w"], idn["mouth_y"]
    wr = _mix(idn["skin"], _DARK, 0.65 * k)
    fringe = 0.16 if idn["style"] == "fringe" else 0.04
    hair_top = -1.0 if idn["style"] == "bald" else idn["hairline"] + ses["hairline"] + fringe
    for dv in (0.08, 0.15) if brow > 0.07 else ():  # forehead lines above raised brows, unless under hair
        v = ey - idn["brow_gap"] - 1.5 * brow - dv
        if v > hair_top:
            d.line(p.surface(np.linspace(-0.35, 0.35, 7), v + 0.03 * np.linspace(-1, 1, 7) ** 2), fill=wr, width=lw)
    for u in (-0.06, 0.06) if inner < -0.05 else ():  # vertical frown lines between lowered brows
        d.line(p.surface([u, u * 0.8], [ey - 0.17, ey - 0.05]), fill=wr, width=lw)
    for v in (ey + 0.03, ey + 0.08) if sneer > 0.2 else ():  # wrinkled nose bridge
        d.line(p.surface([-0.08, 0.0, 0.08], [v, v - 0.02, v]), fill=wr, width=lw)
    for side in (-1, 1) if cheek > 0.3 else ():  # nasolabial folds from raised cheeks
        us = side * np.array([nw + 0.05, nw + 0.17, idn["mouth_w"] + 0.1])
        d.line(p.surface(us, [ey + idn["nose_len"], my - 0.08, my + 0.05]), fill=wr, width=lw)


def _draw_glasses(d: ImageDraw.ImageDraw, p: _Proj, idn: dict[str, Any]) -> None:
    """Round frames around both eyes plus a bridge, slightly in front of the face."""
    t, r, sep, ey = np.linspace(0, 2 * np.pi, 24), idn["eye_w"] * 1.45, idn["eye_sep"], idn["eye_y"]
    width = max(1, round(0.025 * p.fh))
    for side in (-1, 1):
        rim = p.surface(side * sep + r * np.cos(t), ey + r * np.sin(t) * p.fw / p.fh, 1.05)
        d.line(rim, fill=(20, 20, 20), width=width)
    d.line(p.surface([r - sep, 0, sep - r], [ey] * 3, 1.05), fill=(20, 20, 20), width=width)


def _render(
    idn: dict[str, Any], ses: dict[str, Any], expression: str, angle: str, size: tuple[int, int], r: np.random.Generator
) -> Image.Image:
    """Draw one face supersampled, downscale (anti-aliasing), then add per-image lighting and pixel noise."""
    w, h = size
    ss = 3 if max(w, h) <= 256 else 2  # big images need less supersampling and would be slow
    k = r.uniform(0.6, 1.0)  # expression intensity
    e = idn["resting"] + k * np.array(_EXPR[expression]) + r.normal(0, 0.02, 8)
    base = min(w, 0.75 * h) * ss * idn["width"] * ses["scale"] * r.uniform(0.95, 1.05)
    p = _Proj(
        cx=w * ss * (0.5 + ses["dx"] + r.uniform(-0.03, 0.03)),
        cy=h * ss * (0.46 + ses["dy"] + r.uniform(-0.025, 0.025)),
        fw=base,
        fh=base * idn["aspect"],
        yaw=_YAW[angle] + r.normal(0, 0.06),
        roll=math.radians(r.normal(0, 3.5)),
    )
    img = Image.new("RGB", (w * ss, h * ss), _mix(ses["bg"]))
    d, lw = ImageDraw.Draw(img), max(1, round(0.03 * p.fh))
    _draw_head(d, p, idn, ses)
    _draw_wrinkles(d, p, idn, ses, e, k, lw)
    _draw_eyes_brows(d, p, idn, e, lw)
    _draw_lower(d, p, idn, e, lw)
    if ses["glasses"]:
        _draw_glasses(d, p, idn)
    a = np.asarray(img.resize((w, h), Image.Resampling.LANCZOS), np.float32)
    yy, xx = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j]
    ang = ses["light_dir"] + r.normal(0, 0.5)  # light mostly from the session's side
    light = 1 + r.uniform(0.05, 0.25) * (np.cos(ang) * xx + np.sin(ang) * yy)
    mean = a.mean()
    a = ((a - mean) * r.uniform(0.8, 1.15) + mean) * (ses["gain"] * r.uniform(0.9, 1.1)) * ses["cast"]
    a = a * light[..., None] + r.normal(0, r.uniform(2, 7), a.shape)
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))


def generate(
    out_dir: str | pathlib.Path,
    subjects: int = 24,
    angles: Sequence[str] = ("HL", "S", "HR"),
    sessions: Sequence[str] = ("A", "B"),
    size: tuple[int, int] = (96, 128),
    seed: int = 0,
) -> list[pathlib.Path]:
    """Write demo faces under out_dir and return the written paths (sorted).

    Subject i (0-based) is female if i is even else male, numbered 01..35 within its sex.
    Files follow KDEF: ``out_dir/AF01/AF01ANS.JPG`` = session, sex, number, expression, angle;
    ``size`` is (width, height).  Same arguments -> byte-identical files.  Raises ValueError for
    subjects outside 1..70, unknown angle/session codes, a size below 32x32 or a negative seed.
    """
    angles = (angles,) if isinstance(angles, str) else tuple(angles)
    sessions = (sessions,) if isinstance(sessions, str) else tuple(sessions)
    if not 1 <= int(subjects) <= 70:
        raise ValueError(f"subjects must be in 1..70 (KDEF has 35 F + 35 M), got {subjects}")
    bad = [a for a in angles if a not in ANGLES] + [s for s in sessions if s not in SESSIONS]
    if bad:
        raise ValueError(f"unknown angle/session codes {bad}; angles: {ANGLES}, sessions: {SESSIONS}")
    w, h = (int(x) for x in size)
    if w < 32 or h < 32:
        raise ValueError(f"size (width, height) must be at least 32x32, got {tuple(size)}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    out, paths = pathlib.Path(out_dir), []
    for i in range(int(subjects)):
        idn, code = _identity(seed, i), f"{'FM'[i % 2]}{i // 2 + 1:02d}"
        for sname in dict.fromkeys(sessions):  # dict.fromkeys: drop repeats, keep order
            si = SESSIONS.index(sname)
            ses, folder = _session(seed, i, si, idn), out / f"{sname}{code}"
            folder.mkdir(parents=True, exist_ok=True)
            for ei, expr in enumerate(EXPRESSIONS):
                for ang in dict.fromkeys(angles):
                    path = folder / f"{sname}{code}{expr}{ang}.JPG"
                    img = _render(idn, ses, expr, ang, (w, h), _rng(seed, i, si, ei, ANGLES.index(ang), 3))
                    img.save(path, "JPEG", quality=90)
                    paths.append(path)
    return sorted(paths)


def video(
    path: str | pathlib.Path,
    people: Sequence[dict],
    frames: int,
    size: tuple[int, int] = (640, 480),
    fps: float = 30,
    face_size: tuple[int, int] = (96, 128),
    seed: int = 0,
) -> pathlib.Path:
    """Write a demo video of people moving across a grey background (for fer-video's tests and
    benchmark) and return its path: MJPG in .avi, MPEG-4 in .mp4.

    people: one dict each: ``subject`` (as `generate` numbers them), ``expressions`` (KDEF codes,
    shown in turn over the person's time in view; default ``("NE",)``), ``start`` and ``end``
    (the portrait's top-left corner, x, y, at the first and last frame; it moves in a line),
    ``frames`` (first, last frame in view; default the whole video). A portrait is
    `face_size` (width, height), front view, session A.
    """
    import cv2

    path = pathlib.Path(path)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, tuple(size))
    shown = []
    for k, person in enumerate(people):
        idn = _identity(seed, person["subject"])
        ses = _session(seed, person["subject"], 0, idn)
        faces = [
            np.asarray(_render(idn, ses, e, "S", face_size, _rng(seed, person["subject"], k, 4)))
            for e in person.get("expressions", ("NE",))
        ]
        shown.append((person, faces, person.get("frames", (0, frames - 1))))
    w, h = face_size
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 120, np.uint8)
        for person, faces, (first, last) in shown:
            if first <= i <= last:
                t = (i - first) / max(1, last - first)
                x, y = (round(a + t * (b - a)) for a, b in zip(person["start"], person["end"]))
                face = faces[min(len(faces) - 1, int(t * len(faces)))]
                frame[y : y + h, x : x + w] = face[: size[1] - y, : size[0] - x]
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    return path


def demo_video(path: str | pathlib.Path, seconds: float = 10, fps: float = 30) -> pathlib.Path:
    """A 640x480 demo video to try fer-video on: one person in view throughout, moving and
    going from neutral through happy to surprised; a second one coming in at a third of the
    way, angry then sad, and leaving at two thirds."""
    frames = round(seconds * fps)
    people = [
        {"subject": 0, "expressions": ("NE", "HA", "SU"), "start": (40, 140), "end": (260, 180)},
        {
            "subject": 3,
            "expressions": ("AN", "SA"),
            "start": (500, 200),
            "end": (420, 160),
            "frames": (frames // 3, 2 * frames // 3),
        },
    ]
    return video(path, people, frames, (640, 480), fps, face_size=(144, 192))
