"""Seeded synthetic videos whose evidence is known pixel by pixel.

Every clip shows a drifting, noisy colour texture, a few distractor shapes that wander
around, and exactly one *target*: a bright yellow ring. The label is the direction in which
the target moves (see :data:`CLASS_NAMES`). The target's position in any single frame has the
same distribution for every label, so a single frame does not reveal the class; the motion
does. The per-pixel evidence mask marks the visible ring pixels in every frame.

Run ``python -m removalx.zoo.data --write-demo PATH`` to (re)write the bundled demo GIF.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from removalx.errors import ConfigError, VideoError

__all__ = [
    "CLASS_NAMES",
    "DEMO_LABEL",
    "DEMO_PATH",
    "DEMO_SEED",
    "TARGET_RGB",
    "SyntheticClip",
    "demo_clip",
    "load_demo_gif",
    "make_clip",
    "make_dataset",
    "make_two_part_clip",
    "write_demo",
]

#: Class names; the label is the index of the target's direction of motion.
CLASS_NAMES: list[str] = ["moves_left", "moves_right", "moves_up", "moves_down"]

#: Base colour of the target ring (each clip jitters it by at most ``_TARGET_JITTER``).
TARGET_RGB: tuple[float, float, float] = (1.0, 0.85, 0.1)

#: Seed and label of the bundled demo clip.
DEMO_SEED: int = 20240601
DEMO_LABEL: int = 1
DEMO_PATH: Path = Path(__file__).parent / "demo" / "demo.gif"

_REF_SIZE = 112.0  # geometry below is given in pixels of a 112x112 frame and scaled
_TARGET_JITTER = 0.05
_RING_OUTER = 10.0
_RING_INNER = 5.5
_SPEED_RANGE = (1.6, 2.4)  # target speed, pixels/frame at 112
_NOISE_STD = 0.03
_BG_RANGE = (0.08, 0.6)
_DIRECTIONS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])  # (dx, dy) per class


@dataclass
class SyntheticClip:
    """One synthetic clip with its ground truth.

    Attributes
    ----------
    video : torch.Tensor
        ``float32[T, H, W, 3]`` in ``[0, 1]``.
    label : int
        Index into :data:`CLASS_NAMES`.
    evidence : torch.Tensor
        ``bool[T, H, W]``, True on the visible pixels of the target object.
    meta : dict
        Generation parameters (seed, target path, ...).
    """

    video: torch.Tensor
    label: int
    evidence: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- checks


def _check_args(label: int, frames: int, size: int) -> None:
    if not 0 <= int(label) < len(CLASS_NAMES):
        raise ConfigError(
            f"label must be in [0, {len(CLASS_NAMES)}), got {label}.",
            f"Use an index into CLASS_NAMES = {CLASS_NAMES}.",
        )
    if int(frames) < 2:
        raise ConfigError(
            f"frames must be >= 2, got {frames}.", "Pass frames=16 (default) or another T >= 2."
        )
    if int(size) < 16:
        raise ConfigError(f"size must be >= 16 pixels, got {size}.", "Pass size=112 (default) or >= 16.")


# ----------------------------------------------------------------------------- rendering


def _background(rng: np.random.Generator, frames: int, size: int) -> np.ndarray:
    """Smooth random colour texture drifting with a constant random velocity, ``[T, H, W, 3]``."""
    scale = size / _REF_SIZE
    speed = rng.uniform(0.3, 1.5) * scale
    angle = rng.uniform(0, 2 * np.pi)
    drift = speed * np.array([np.cos(angle), np.sin(angle)]) * (frames - 1)
    margin = int(np.ceil(np.abs(drift).max())) + 2
    canvas_size = size + 2 * margin
    coarse = rng.uniform(*_BG_RANGE, size=(6, 6, 3)).astype(np.float32)
    fine = rng.uniform(-0.08, 0.08, size=(18, 18, 3)).astype(np.float32)
    canvas = cv2.resize(coarse, (canvas_size, canvas_size), interpolation=cv2.INTER_CUBIC)
    canvas = canvas + np.asarray(
        cv2.resize(fine, (canvas_size, canvas_size), interpolation=cv2.INTER_CUBIC), dtype=np.float32
    )
    start = margin - drift / 2.0
    out = np.empty((frames, size, size, 3), dtype=np.float32)
    for t in range(frames):
        ox, oy = np.rint(start + drift * t / max(frames - 1, 1)).astype(int)
        out[t] = canvas[oy : oy + size, ox : ox + size]
    return np.clip(out, 0.0, 1.0)


def _distractor_colour(rng: np.random.Generator) -> np.ndarray:
    """A saturated colour far from the target's yellow (hue outside 25-95 degrees)."""
    hue = rng.uniform(95, 385) % 360
    hsv = np.array([[[hue / 2.0, rng.uniform(120, 255), rng.uniform(120, 230)]]], dtype=np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


def _bounce(pos: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect positions into ``[lo, hi]`` (objects bounce off the borders)."""
    span = hi - lo
    p = np.mod(pos - lo, 2 * span)
    return lo + np.where(p > span, 2 * span - p, p)


def _shape_mask(kind: str, dx: np.ndarray, dy: np.ndarray, r: float, rot: float | np.ndarray) -> np.ndarray:
    """Filled shape mask from offsets ``dx, dy`` (``[T, H, W]``) to the shape centre."""
    if kind == "disc":
        return dx**2 + dy**2 <= r**2
    c, s = np.cos(rot), np.sin(rot)
    u, v = c * dx + s * dy, -s * dx + c * dy
    if kind == "square":
        return (np.abs(u) <= r * 0.85) & (np.abs(v) <= r * 0.85)
    if kind == "bar":
        return (np.abs(u) <= r * 1.3) & (np.abs(v) <= r * 0.4)
    # triangle: intersection of three half-planes
    inside = np.ones_like(u, dtype=bool)
    for k in range(3):
        a = 2 * np.pi * k / 3
        inside &= np.cos(a) * u + np.sin(a) * v <= r * 0.5
    return inside


def _draw_distractors(rng: np.random.Generator, video: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> int:
    """Paint 3-6 randomly moving filled shapes in place; returns how many were drawn."""
    frames, size = video.shape[0], video.shape[1]
    scale = size / _REF_SIZE
    n = int(rng.integers(3, 7))
    t = np.arange(frames, dtype=np.float64)
    for _ in range(n):
        kind = str(rng.choice(["disc", "square", "triangle", "bar"]))
        r = rng.uniform(5.0, 11.0) * scale
        start = rng.uniform(r, size - r, size=2)
        angle = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(0.5, 3.0) * scale
        wobble = np.cumsum(rng.normal(0, 0.5 * scale, size=(frames, 2)), axis=0)
        path = start + speed * np.outer(t, [np.cos(angle), np.sin(angle)]) + wobble
        path = _bounce(path, r, size - 1 - r)
        rot = rng.uniform(0, np.pi) + rng.uniform(-0.1, 0.1) * t
        dx = xx[None] - path[:, 0, None, None]
        dy = yy[None] - path[:, 1, None, None]
        mask = _shape_mask(kind, dx, dy, r, rot[:, None, None])
        video[mask] = _distractor_colour(rng)
    return n


def _target_path(rng: np.random.Generator, label: int, frames: int, size: int) -> np.ndarray:
    """Centre of the target per frame, ``[T, 2]`` as ``(x, y)``.

    The start is drawn from the same box for every label, so frame 0 does not reveal the label.
    """
    scale = size / _REF_SIZE
    speed = rng.uniform(*_SPEED_RANGE) * scale
    travel = _SPEED_RANGE[1] * scale * (frames - 1)
    lo = _RING_OUTER * scale + 1 + travel
    hi = size - 1 - _RING_OUTER * scale - 1 - travel
    if hi < lo:  # clip too long for the frame: centre the start and let the ring leave the frame
        lo = hi = (size - 1) / 2.0
    start = rng.uniform(lo, hi, size=2)
    t = np.arange(frames, dtype=np.float64)
    wobble = rng.normal(0, 0.3 * scale, size=(frames, 2))
    return start + speed * np.outer(t, _DIRECTIONS[label]) + wobble


def _draw_target(
    rng: np.random.Generator, video: np.ndarray, path: np.ndarray, yy: np.ndarray, xx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Paint the ring on top of everything; returns its mask ``[T, H, W]`` and its colour."""
    scale = video.shape[1] / _REF_SIZE
    colour = np.clip(np.asarray(TARGET_RGB) + rng.uniform(-_TARGET_JITTER, _TARGET_JITTER, 3), 0, 1)
    d2 = (xx[None] - path[:, 0, None, None]) ** 2 + (yy[None] - path[:, 1, None, None]) ** 2
    mask = (d2 <= (_RING_OUTER * scale) ** 2) & (d2 >= (_RING_INNER * scale) ** 2)
    video[mask] = colour.astype(np.float32)
    return mask, colour


def _render(
    label: int, seed: int, frames: int, size: int, *, with_target: bool = True
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Render one clip as numpy ``(video[T,H,W,3], evidence[T,H,W], meta)``."""
    rng = np.random.default_rng([int(seed), int(label), int(frames), int(size)])
    video = _background(rng, frames, size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    n_distractors = _draw_distractors(rng, video, yy, xx)
    path = _target_path(rng, label, frames, size)
    meta: dict[str, Any] = {
        "seed": int(seed),
        "class_name": CLASS_NAMES[label],
        "n_distractors": n_distractors,
    }
    if with_target:
        evidence, colour = _draw_target(rng, video, path, yy, xx)
        meta.update(target_path=path.round(2).tolist(), target_rgb=colour.round(3).tolist())
    else:
        evidence = np.zeros(video.shape[:3], dtype=bool)
    video += rng.normal(0, _NOISE_STD, size=video.shape).astype(np.float32)
    np.clip(video, 0.0, 1.0, out=video)
    return video, evidence, meta


# ----------------------------------------------------------------------------- public API


def make_clip(label: int, seed: int, *, frames: int = 16, size: int = 112) -> SyntheticClip:
    """Generate one clip whose class is the direction in which the yellow ring moves.

    Parameters
    ----------
    label : int
        Class index into :data:`CLASS_NAMES`.
    seed : int
        Random seed; the same ``(label, seed, frames, size)`` always gives the same clip.
    frames : int, default 16
        Number of frames ``T``.
    size : int, default 112
        Frame height and width.

    Returns
    -------
    SyntheticClip
        ``video`` ``float32[T, size, size, 3]`` in [0, 1] and ``evidence`` ``bool[T, size, size]``.

    Raises
    ------
    ConfigError
        If ``label``, ``frames`` or ``size`` is out of range.
    """
    _check_args(label, frames, size)
    video, evidence, meta = _render(int(label), seed, int(frames), int(size))
    meta.update(frames=int(frames), size=int(size), evidence_frames=list(range(int(frames))))
    return SyntheticClip(torch.from_numpy(video), int(label), torch.from_numpy(evidence), meta)


def make_two_part_clip(
    label: int, seed: int, *, frames: int = 16, size: int = 112, evidence_half: str = "first"
) -> SyntheticClip:
    """Join two clips in time; only one half contains the (moving) target.

    The evidence half is a ``frames // 2``-frame clip of class ``label``; the other half comes
    from a different scene in which the target is absent. Used to test temporal pointing.

    Parameters
    ----------
    label : int
        Class of the half that contains the target.
    seed : int
        Random seed.
    frames : int, default 16
        Total number of frames (the evidence half has ``frames // 2``; must be >= 4).
    size : int, default 112
        Frame height and width.
    evidence_half : {"first", "second"}
        Which half holds the target.

    Returns
    -------
    SyntheticClip
        With ``meta["evidence_frames"]`` listing the frame indices that hold the target.

    Raises
    ------
    ConfigError
        If ``evidence_half`` is not ``"first"``/``"second"`` or ``frames < 4``.
    """
    if evidence_half not in ("first", "second"):
        raise ConfigError(
            f"evidence_half must be 'first' or 'second', got {evidence_half!r}.",
            "Pass evidence_half='first' or evidence_half='second'.",
        )
    if int(frames) < 4:
        raise ConfigError(f"frames must be >= 4 for a two-part clip, got {frames}.", "Pass frames=16.")
    _check_args(label, frames, size)
    half = int(frames) // 2
    n_ev = half if evidence_half == "first" else int(frames) - half
    ev_video, ev_mask, meta = _render(int(label), seed, n_ev, int(size))
    other_seed = int(seed) + 7_919_000_003  # an independent scene
    bg_video, bg_mask, _ = _render(int(label), other_seed, int(frames) - n_ev, int(size), with_target=False)
    parts = [(ev_video, ev_mask), (bg_video, bg_mask)]
    if evidence_half == "second":
        parts.reverse()
    video = np.concatenate([p[0] for p in parts])
    evidence = np.concatenate([p[1] for p in parts])
    first = 0 if evidence_half == "first" else int(frames) - n_ev
    meta.update(
        frames=int(frames),
        size=int(size),
        evidence_half=evidence_half,
        evidence_frames=list(range(first, first + n_ev)),
    )
    return SyntheticClip(torch.from_numpy(video), int(label), torch.from_numpy(evidence), meta)


def make_dataset(
    n: int,
    seed: int,
    *,
    frames: int = 16,
    size: int = 112,
    two_part_fraction: float = 0.0,
    as_uint8: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generate ``n`` clips with balanced labels (clip ``i`` uses seed ``seed + i``).

    Parameters
    ----------
    n : int
        Number of clips.
    seed : int
        First seed; clips use seeds ``seed, seed + 1, ..., seed + n - 1``.
    frames, size : int
        Clip length and frame size (see :func:`make_clip`).
    two_part_fraction : float, default 0.0
        Fraction of clips generated by :func:`make_two_part_clip` (random half), for training
        models that should also work when the evidence covers only half of the clip.
    as_uint8 : bool, default False
        Return videos as ``uint8`` in [0, 255] (4x less memory) instead of ``float32`` in [0, 1].

    Returns
    -------
    videos : torch.Tensor
        ``float32[N, T, H, W, 3]`` (or ``uint8`` if ``as_uint8``).
    labels : torch.Tensor
        ``int64[N]``.
    evidence : torch.Tensor
        ``bool[N, T, H, W]``.
    """
    if int(n) < 1:
        raise ConfigError(f"n must be >= 1, got {n}.", "Ask for at least one clip.")
    if not 0.0 <= two_part_fraction <= 1.0:
        raise ConfigError(f"two_part_fraction must be in [0, 1], got {two_part_fraction}.", "Pass e.g. 0.2.")
    dtype = np.uint8 if as_uint8 else np.float32
    videos = np.empty((n, frames, size, size, 3), dtype=dtype)
    evidence = np.empty((n, frames, size, size), dtype=bool)
    labels = np.arange(n) % len(CLASS_NAMES)
    picker = np.random.default_rng([int(seed), 77])
    labels = picker.permutation(labels)
    two_part = picker.random(n) < two_part_fraction
    halves = picker.choice(["first", "second"], size=n)
    for i in range(n):
        if two_part[i]:
            clip = make_two_part_clip(
                int(labels[i]), seed + i, frames=frames, size=size, evidence_half=str(halves[i])
            )
        else:
            clip = make_clip(int(labels[i]), seed + i, frames=frames, size=size)
        v = clip.video.numpy()
        videos[i] = np.rint(v * 255.0) if as_uint8 else v
        evidence[i] = clip.evidence.numpy()
    return torch.from_numpy(videos), torch.from_numpy(labels.astype(np.int64)), torch.from_numpy(evidence)


# ----------------------------------------------------------------------------- demo clip


def demo_clip() -> SyntheticClip:
    """Regenerate the bundled demo clip (16x112x112, class ``moves_right``) in memory.

    Returns
    -------
    SyntheticClip
        The exact clip stored (with a 256-colour palette per frame, mean absolute error
        about 0.02) in ``zoo/demo/demo.gif``; use this function when exact pixels matter.
    """
    return make_clip(DEMO_LABEL, DEMO_SEED, frames=16, size=112)


def write_demo(path: str | Path = DEMO_PATH) -> Path:
    """Write :func:`demo_clip` as an animated GIF (one 256-colour median-cut palette per frame).

    Parameters
    ----------
    path : str or Path
        Output file (``.gif``).

    Returns
    -------
    Path
        The written file.
    """
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = (demo_clip().video.numpy() * 255.0).round().astype(np.uint8)
    images = [
        Image.fromarray(f).quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        for f in frames
    ]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0, optimize=False)
    return path


def load_demo_gif(path: str | Path = DEMO_PATH) -> torch.Tensor:
    """Read a demo GIF back as ``float32[T, H, W, 3]`` in [0, 1].

    Parameters
    ----------
    path : str or Path
        GIF written by :func:`write_demo`.

    Returns
    -------
    torch.Tensor
        The clip.

    Raises
    ------
    VideoError
        If the file is missing or not a readable image sequence.
    """
    from PIL import Image, ImageSequence

    path = Path(path)
    if not path.is_file():
        raise VideoError(
            f"demo clip {path} does not exist.", "Run `python -m removalx.zoo.data --write-demo`."
        )
    try:
        with Image.open(path) as im:
            frames = [
                np.asarray(f.convert("RGB"), dtype=np.float32) / 255.0 for f in ImageSequence.Iterator(im)
            ]
    except OSError as exc:
        raise VideoError(f"cannot read {path}: {exc}.", "Regenerate it with --write-demo.") from exc
    return torch.from_numpy(np.stack(frames))


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m removalx.zoo.data --write-demo [PATH]``."""
    parser = argparse.ArgumentParser(prog="python -m removalx.zoo.data", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write-demo", nargs="?", const=str(DEMO_PATH), metavar="PATH", help="write the demo GIF"
    )
    args = parser.parse_args(argv)
    if args.write_demo is None:
        parser.print_help()
        return
    print(write_demo(args.write_demo))


if __name__ == "__main__":
    main()
