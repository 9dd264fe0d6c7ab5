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
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

EXPRESSIONS = ("AF", "AN", "DI", "HA", "NE", "SA", "SU")  # afraid, angry, disgusted, happy, neutral, sad, surprised
ANGLES = ("FL", "HL", "S", "HR", "FR")  # full left, half left, straight, half right, full right
SESSIONS = ("A", "B")

# Offsets from neutral at full intensity:
# brow raise, brow inner-end raise, eye opening, cheek raise, mouth curve (+ = smile),
# mouth opening (< 0 = pressed lips), mouth width, sneer.
_EXPR = {
    "AF": (0.12, 0.10, 0.60, 0.0, -0.20, 0.45, 0.20, 0.0),
    "AN": (-0.10, -0.16, -0.45, 0.0, -0.25, -0.35, -0.20, 0.0),
    "DI": (-0.07, -0.04, -0.50, 0.6, -0.15, 0.15, -0.05, 0.70),
    "HA": (0.0, 0.0, -0.30, 0.8, 0.45, 0.35, 0.30, 0.0),
    "NE": (0.0,) * 8,
    "SA": (-0.02, 0.16, -0.25, 0.0, -0.45, 0.0, -0.10, 0.0),
    "SU": (0.20, 0.03, 0.75, 0.0, 0.0, 0.90, -0.45, 0.0),
}
# Yaw in radians; "L" turns the face towards the viewer's left (features move to smaller x).
_YAW = {"FL": -1.2, "HL": -0.6, "S": 0.0, "HR": 0.6, "FR": 1.2}
_SKIN = (np.array([250.0, 222.0, 196.0]), np.array([88.0, 56.0, 38.0]))  # lightest, darkest
_HAIR = ((25, 20, 18), (60, 40, 25), (110, 75, 40), (200, 170, 110), (150, 70, 30), (160, 160, 160))
_HAIR_P = (0.3, 0.25, 0.15, 0.12, 0.06, 0.12)  # black and brown most common
_STYLES = ("short", "long", "bald", "fringe")
Color = tuple[int, int, int]


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> Color:
    """Blend colour ``a`` towards ``b`` by ``t`` in [0, 1] and return an RGB int tuple."""
    return tuple(int(np.clip(x + (y - x) * t, 0, 255)) for x, y in zip(a, b))  # type: ignore[return-value]


def _rng(*key: int) -> np.random.Generator:
    """Independent generator for one (seed, subject, ...) key; never touches global RNG state."""
    return np.random.default_rng(list(key))


class _Proj:
    """Maps face coordinates (u in half-widths, v in half-heights, +v down) to supersampled pixels."""

    def __init__(self, cx: float, cy: float, fw: float, fh: float, yaw: float, roll: float) -> None:
        self.cx, self.cy, self.fw, self.fh, self.yaw = cx, cy, fw, fh, yaw
        self.c, self.s = math.cos(roll), math.sin(roll)

    def _out(self, x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
        px, py = x * self.fw, np.broadcast_to(y, np.shape(x)) * self.fh
        return list(zip(self.cx + self.c * px - self.s * py, self.cy + self.s * px + self.c * py))

    def surface(self, u: np.ndarray, v: np.ndarray, depth: float = 1.0) -> list[tuple[float, float]]:
        """Points on the (spherical) face surface: rotate in longitude, clamp hidden ones onto the rim."""
        lon = np.arcsin(np.clip(u, -1, 1)) + self.yaw
        return self._out(depth * np.sin(np.clip(lon, -math.pi / 2, math.pi / 2)), v)

    def shell(self, u: np.ndarray, v: np.ndarray) -> list[tuple[float, float]]:
        """Points on the head silhouette: it barely changes with yaw, just shifts and narrows a little."""
        s = math.sin(self.yaw)
        return self._out(np.asarray(u) * (1 - 0.08 * abs(s)) + 0.12 * s, v)


def _identity(seed: int, subject: int) -> dict:
    """Stable per-subject traits; the same (seed, subject) always gives the same person."""
    r = _rng(seed, subject, 1)
    male = subject % 2 == 1
    hair_p = (0.55, 0.05, 0.2, 0.2) if male else (0.15, 0.55, 0.0, 0.3)
    return dict(
        width=r.uniform(0.29, 0.34), aspect=r.uniform(1.22, 1.45), jaw=r.uniform(1.7, 2.9),
        skin=_SKIN[0] + (_SKIN[1] - _SKIN[0]) * r.uniform() + r.normal(0, 6, 3),
        hair=np.array(_HAIR[r.choice(len(_HAIR), p=_HAIR_P)], float), style=_STYLES[r.choice(4, p=hair_p)],
        hairline=r.uniform(-0.76, -0.62), eye_sep=r.uniform(0.33, 0.43), eye_w=r.uniform(0.16, 0.22),
        eye_h=r.uniform(0.07, 0.095), eye_y=r.uniform(-0.16, -0.06), iris=r.integers(30, 140, 3),
        brow_gap=r.uniform(0.14, 0.2), brow_t=r.uniform(0.04, 0.07), nose_len=r.uniform(0.22, 0.38),
        nose_w=r.uniform(0.09, 0.16), mouth_y=r.uniform(0.48, 0.6), mouth_w=r.uniform(0.34, 0.46),
        lip=_mix(r.integers(150, 210, 3) * np.array([1.0, 0.55, 0.55]), (90, 40, 40), r.uniform(0, 0.4)),
        lip_t=r.uniform(0.04, 0.065), bg=r.integers(90, 230, 3), shirt=r.integers(20, 230, 3),
        glasses=int(r.choice([-1, -1, -1, 0, 1])),  # session index with glasses, -1 = never
        sneer_side=float(r.choice([-1.0, 1.0])), resting=r.normal(0, 0.03, 8),
    )


def _session(seed: int, subject: int, session: int, ident: dict) -> dict:
    """Small per-session changes: lighting, position, hair tone/line and (maybe) glasses."""
    r = _rng(seed, subject, session, 2)
    return dict(
        dx=r.uniform(-0.03, 0.03), dy=r.uniform(-0.03, 0.03), scale=r.uniform(0.96, 1.04),
        gain=r.uniform(0.9, 1.1), cast=r.uniform(0.95, 1.05, 3), light_dir=r.uniform(0, 2 * math.pi),
        hair=np.clip(ident["hair"] * r.uniform(0.85, 1.15), 0, 255), hairline=r.uniform(-0.04, 0.04),
        bg=np.clip(ident["bg"] + r.normal(0, 8, 3), 0, 255), glasses=ident["glasses"] == session,
    )


def _curve(p: _Proj, us: np.ndarray, vs: np.ndarray, depth: float = 1.0) -> list[tuple[float, float]]:
    """Shorthand for mapping a polyline of surface points."""
    return p.surface(np.asarray(us, float), np.asarray(vs, float), depth)


def _draw_head(d: ImageDraw.ImageDraw, p: _Proj, idn: dict, ses: dict) -> None:
    """Long hair, neck, shoulders, ears, face outline and hair cap (back to front)."""
    t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    skin, hair = idn["skin"], ses["hair"]
    if idn["style"] == "long":
        d.polygon(p.shell(np.array([-1.1, -1.25, -1.3, 1.3, 1.25, 1.1]), np.array([-0.8, 0.3, 1.35, 1.35, 0.3, -0.8])),
                  fill=_mix(hair, (0, 0, 0), 0.15))
    d.polygon(p.shell(np.array([-0.42, 0.42, 0.5, -0.5]), np.array([0.6, 0.6, 1.4, 1.4])), fill=_mix(skin, (0, 0, 0), 0.15))
    d.polygon(p.shell(np.array([-0.6, 0.6, 2.6, 3, -3, -2.6]), np.array([1.25, 1.25, 1.5, 3, 3, 1.5])), fill=_mix(idn["shirt"], (0, 0, 0), 0))
    for side in (-1, 1):  # ears sit at the sides of the head: visible only if not rotated behind it
        lon = side * (math.pi / 2 - 0.12) + p.yaw
        if abs(lon) < math.pi / 2 + 0.05:
            x = math.sin(lon) * (1 - 0.08 * abs(math.sin(p.yaw))) + 0.12 * math.sin(p.yaw)
            d.polygon(p._out(x + 0.13 * np.cos(t), idn["eye_y"] + 0.07 + 0.2 * np.sin(t)), fill=_mix(skin, (0, 0, 0), 0.1))
    n = np.where(np.sin(t) > 0, idn["jaw"], 2.0)  # superellipse lower half: pointy (<2) to square (>2) jaw
    d.polygon(p.shell(np.sign(np.cos(t)) * np.abs(np.cos(t)) ** (2 / n), np.sign(np.sin(t)) * np.abs(np.sin(t)) ** (2 / n)),
              fill=_mix(skin, (0, 0, 0), 0))
    if idn["style"] == "bald":
        return
    a = np.linspace(np.pi + 0.1, 2 * np.pi - 0.1, 24)
    outer = p.shell(1.1 * np.cos(a), 1.12 * np.sin(a))
    us = np.linspace(0.98, -0.98, 25)
    top = idn["hairline"] + ses["hairline"] + (0.12 if idn["style"] == "fringe" else 0.0)
    vs = -0.1 + (top + 0.1) * np.cos(us * np.pi / 2) ** 0.6
    if idn["style"] == "fringe":  # jagged bangs so the fringe reads as hair, not a hat
        vs = vs + 0.04 * (np.arange(25) % 2)
    d.polygon(outer + _curve(p, us, vs), fill=_mix(hair, (0, 0, 0), 0))


def _draw_features(d: ImageDraw.ImageDraw, p: _Proj, idn: dict, ses: dict, e: np.ndarray, k: float) -> None:
    """Eyes, brows, nose, mouth and expression wrinkles, driven by expression parameters ``e``."""
    brow, inner, eye, cheek, curve, mopen, mwidth, sneer = e
    skin, fh = idn["skin"], p.fh
    line = _mix(skin, (40, 20, 10), 0.55)
    lw = max(1, round(0.03 * fh))
    ey, ew = idn["eye_y"], idn["eye_w"]
    up = idn["eye_h"] * max(0.25, 1 + eye)
    lo = up * 0.9 * max(0.25, 1 - 0.6 * cheek)
    s = np.linspace(-1, 1, 15)
    for side in (-1, 1):
        ex = side * idn["eye_sep"]
        bound_u, bound_l = ey - up * (1 - s**2), ey + lo * (1 - s**2)
        d.polygon(_curve(p, ex + ew * s, bound_u) + _curve(p, ex - ew * s, bound_l[::-1]), fill=(240, 236, 230))
        t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
        for r, col in ((0.5, idn["iris"]), (0.22, (10, 10, 10))):  # iris then pupil, clipped to the lids
            iu, iv = ex + r * ew * np.cos(t), ey + r * ew * np.sin(t) * p.fw / fh
            q = np.clip((iu - ex) / ew, -1, 1)
            d.polygon(_curve(p, iu, np.clip(iv, ey - up * (1 - q**2), ey + lo * (1 - q**2))), fill=_mix(col, col, 0))
        d.line(_curve(p, ex + ew * 1.1 * s, ey - up * (1 - s**2)), fill=(30, 20, 15), width=lw + 1)
        d.line(_curve(p, ex + ew * s, bound_l), fill=line, width=lw)
        bv = ey - idn["brow_gap"] - brow - np.array([inner, 0.3 * brow + 0.03, 0.0])
        bv[0] = min(bv[0], ey - up - 0.02)  # a scowl may touch the lid but not cross it
        d.line(_curve(p, side * np.array([idn["eye_sep"] - ew * 0.9, idn["eye_sep"], idn["eye_sep"] + ew * 1.2]), bv),
               fill=_mix(idn["hair"], (0, 0, 0), 0.55), width=max(1, round(idn["brow_t"] * fh)), joint="curve")
    nl, nw, my = idn["nose_len"], idn["nose_w"], idn["mouth_y"]
    d.line(_curve(p, [0.02, 0.04, 0.0], [ey, ey + nl * 0.7, ey + nl + 0.1], 1.15), fill=line, width=lw)
    d.line(_curve(p, nw * np.array([-1, -0.4, 0, 0.4, 1]), ey + nl + np.array([0.06, 0.12, 0.13, 0.12, 0.06]), 1.1),
           fill=line, width=lw + 1)
    wr = _mix(skin, (40, 20, 10), 0.6 * k)
    hair_top = -1.0 if idn["style"] == "bald" else idn["hairline"] + ses["hairline"] + (0.16 if idn["style"] == "fringe" else 0.04)
    for dv in (0.08, 0.15) if brow > 0.07 else ():  # forehead lines above raised brows, unless under hair
        v = ey - idn["brow_gap"] - 1.5 * brow - dv
        if v > hair_top:
            d.line(_curve(p, np.linspace(-0.35, 0.35, 7), v + 0.03 * np.linspace(-1, 1, 7) ** 2), fill=wr, width=lw)
    if inner < -0.05:  # vertical frown lines between the brows
        for u in (-0.06, 0.06):
            d.line(_curve(p, [u, u * 0.8], [ey - 0.17, ey - 0.05]), fill=wr, width=lw)
    if sneer > 0.2:  # wrinkled nose bridge
        for v in (ey + 0.03, ey + 0.08):
            d.line(_curve(p, [-0.08, 0.0, 0.08], [v, v - 0.02, v]), fill=wr, width=lw)
    if cheek > 0.3:  # nasolabial folds from a raised cheek
        for side in (-1, 1):
            d.line(_curve(p, side * np.array([nw + 0.05, nw + 0.17, idn["mouth_w"] + 0.1]), [ey + nl, my - 0.08, my + 0.05]),
                   fill=wr, width=lw)
    mw, s2 = idn["mouth_w"] * (1 + mwidth), np.linspace(-1, 1, 17)
    mid = my - 0.4 * curve * s2**2 - 0.3 * sneer * np.maximum(s2 * idn["sneer_side"], 0) ** 1.5
    o = max(mopen, 0) * 0.3 * np.sqrt(1 - s2**2)
    top, bot, lt = mid - 0.4 * o, mid + 0.6 * o, idn["lip_t"] * (1 + 1.5 * min(mopen, 0))
    mu = mw * s2
    if mopen > 0.05:
        d.polygon(_curve(p, mu, top) + _curve(p, mu[::-1], bot[::-1]), fill=(60, 15, 20))
        if curve > 0.15:  # a smile shows the upper teeth
            d.polygon(_curve(p, mu * 0.8, top) + _curve(p, mu[::-1] * 0.8, (top + 0.35 * (bot - top))[::-1]), fill=(235, 232, 220))
    d.polygon(_curve(p, mu, top - lt * np.sqrt(1 - s2**2) - 0.005) + _curve(p, mu[::-1], top[::-1]), fill=idn["lip"])
    d.polygon(_curve(p, mu, bot) + _curve(p, mu[::-1], (bot + 1.3 * lt * np.sqrt(1 - s2**2) + 0.005)[::-1]), fill=idn["lip"])
    d.line(_curve(p, mu, mid), fill=_mix(idn["lip"], (0, 0, 0), 0.6), width=lw + 1)


def _draw_glasses(d: ImageDraw.ImageDraw, p: _Proj, idn: dict) -> None:
    """Round frames around both eyes plus a bridge."""
    t = np.linspace(0, 2 * np.pi, 24)
    r = idn["eye_w"] * 1.45
    for side in (-1, 1):
        cx = side * idn["eye_sep"]
        d.line(_curve(p, cx + r * np.cos(t), idn["eye_y"] + r * np.sin(t) * p.fw / p.fh, 1.05), fill=(20, 20, 20), width=max(1, round(0.025 * p.fh)))
    d.line(_curve(p, [-idn["eye_sep"] + r, 0, idn["eye_sep"] - r], [idn["eye_y"]] * 3, 1.05), fill=(20, 20, 20), width=max(1, round(0.025 * p.fh)))


def _render(idn: dict, ses: dict, expression: str, angle: str, size: tuple[int, int], r: np.random.Generator) -> Image.Image:
    """Draw one face supersampled, downscale, then add per-image lighting and pixel noise."""
    w, h = size
    ss = 3 if max(w, h) <= 256 else 2  # anti-aliasing; big images need less and would be slow
    k = r.uniform(0.6, 1.0)  # expression intensity
    e = idn["resting"] + k * np.array(_EXPR[expression]) + r.normal(0, 0.02, 8)
    base = min(w, 0.75 * h) * ss * idn["width"] * ses["scale"] * r.uniform(0.95, 1.05)
    p = _Proj(cx=w * ss * (0.5 + ses["dx"] + r.uniform(-0.03, 0.03)), cy=h * ss * (0.46 + ses["dy"] + r.uniform(-0.025, 0.025)),
              fw=base, fh=base * idn["aspect"], yaw=_YAW[angle] + r.normal(0, 0.06), roll=math.radians(r.normal(0, 3.5)))
    img = Image.new("RGB", (w * ss, h * ss), _mix(ses["bg"], ses["bg"], 0))
    d = ImageDraw.Draw(img)
    _draw_head(d, p, idn, ses)
    _draw_features(d, p, idn, ses, e, k)
    if ses["glasses"]:
        _draw_glasses(d, p, idn)
    a = np.asarray(img.resize((w, h), Image.Resampling.LANCZOS), np.float32)
    yy, xx = np.mgrid[-1:1:h * 1j, -1:1:w * 1j]
    ang = ses["light_dir"] + r.normal(0, 0.5)  # light mostly from the session's side
    light = 1 + r.uniform(0.05, 0.25) * (np.cos(ang) * xx + np.sin(ang) * yy)
    mean = a.mean()
    a = ((a - mean) * r.uniform(0.8, 1.15) + mean) * (ses["gain"] * r.uniform(0.9, 1.1)) * ses["cast"]
    a = a * light[..., None] + r.normal(0, r.uniform(2, 7), a.shape)
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))


def generate(out_dir: str | pathlib.Path, subjects: int = 24, angles: Sequence[str] = ("HL", "S", "HR"),
             sessions: Sequence[str] = ("A", "B"), size: tuple[int, int] = (96, 128), seed: int = 0) -> list[pathlib.Path]:
    """Write demo faces under out_dir and return the written paths (sorted).

    Subject i (0-based) is female if i is even else male, numbered 01..35 within its sex.
    Files follow KDEF: ``out_dir/AF01/AF01ANS.JPG`` = session, sex, number, expression, angle.
    Same arguments -> byte-identical files.  Raises ValueError for subjects outside 1..70,
    unknown angle/session codes, a size below 32x32 or a negative seed.
    """
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
    out, paths = pathlib.Path(out_dir), set()
    for i in range(int(subjects)):
        idn, sex, num = _identity(seed, i), "FM"[i % 2], i // 2 + 1
        for sname in dict.fromkeys(sessions):
            si = SESSIONS.index(sname)
            ses, folder = _session(seed, i, si, idn), out / f"{sname}{sex}{num:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for ei, expr in enumerate(EXPRESSIONS):
                for ang in dict.fromkeys(angles):
                    r = _rng(seed, i, si, ei, ANGLES.index(ang), 3)
                    path = folder / f"{sname}{sex}{num:02d}{expr}{ang}.JPG"
                    _render(idn, ses, expr, ang, (w, h), r).save(path, "JPEG", quality=90)
                    paths.add(path)
    return sorted(paths)
