"""Output sizes: the default overlay format, the GIF size budget, and enlarging small clips.

* :func:`default_formats` -- what ``removalx explain`` writes without ``--format``: H.264 MP4
  when PyAV (the ``mp4`` extra) is installed, GIF otherwise. An MP4 of a 768x576 clip is
  about a seventh of the GIF (857 KB against 5.8 MB).
* :func:`write_gif_within` -- a GIF that stays under :data:`GIF_BUDGET` bytes (2 MB): frames
  that would exceed it are shrunk (area averaging) until the file fits.
* :func:`enlarge` / :func:`enlarge_factor` -- nearest-neighbour enlargement of small clips so
  that a 112-pixel clip is not a stamp next to its colour bar (the user study's rule: every
  panel at least :data:`MIN_PANEL` pixels high).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from removalx.video.io import write_gif

__all__ = [
    "GIF_BUDGET",
    "MIN_PANEL",
    "default_formats",
    "downscale",
    "enlarge",
    "enlarge_factor",
    "write_gif_within",
]

#: Largest overlay GIF (bytes) written by default; larger ones are written with smaller frames.
GIF_BUDGET = 2_000_000
#: Small clips are enlarged (nearest neighbour) to at least this many pixels high.
MIN_PANEL = 160


def default_formats() -> list[str]:
    """``["mp4"]`` when PyAV (``removalx[mp4]``) is importable, else ``["gif"]``."""
    return ["mp4"] if importlib.util.find_spec("av") is not None else ["gif"]


def enlarge_factor(height: int, min_panel: int = MIN_PANEL) -> int:
    """The integer factor that makes a clip ``height`` pixels high at least ``min_panel`` high (>= 1)."""
    return max(1, math.ceil(int(min_panel) / max(int(height), 1)))


def enlarge(frames: Tensor, factor: int) -> Tensor:
    """``frames`` (``[T, H, W, C]``) enlarged ``factor`` times by pixel repetition (``factor <= 1``: as is)."""
    if factor <= 1:
        return frames
    return frames.repeat_interleave(factor, 1).repeat_interleave(factor, 2)


def downscale(frames: Tensor, factor: float) -> Tensor:
    """``uint8[T, H, W, 3]`` frames shrunk by ``factor`` (< 1) in each side, by area averaging."""
    _, h, w, _ = frames.shape
    size = (max(int(h * factor), 8), max(int(w * factor), 8))
    small = F.interpolate(frames.permute(0, 3, 1, 2).float(), size=size, mode="area")
    return small.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _estimated_scale(frames: Tensor, fps: float, budget: int) -> float:
    """The side scale at which ``frames`` should fit ``budget``, from a GIF of 4 of them (1.0: as is)."""
    import tempfile

    t = int(frames.shape[0])
    if t <= 4:
        return 1.0
    idx = torch.linspace(0, t - 1, 4).round().long()
    with tempfile.TemporaryDirectory() as tmp:
        size = write_gif(frames[idx], Path(tmp) / "sample.gif", fps=fps).stat().st_size * t / 4
    # within 10 %: write at full size and let the measured size decide (the estimate is rough)
    return 1.0 if size <= 1.1 * budget else min(0.9, 0.95 * math.sqrt(budget / size))


def write_gif_within(
    frames: Tensor, path: str | Path, fps: float = 8, budget: int | None = GIF_BUDGET
) -> tuple[Path, float]:
    """Write ``frames`` as a GIF of at most ``budget`` bytes; returns ``(path, scale)``.

    The size is first estimated from a GIF of four of the frames (GIF frames are encoded one
    by one, so the size grows about with their number); when the whole would exceed
    ``budget``, the frames are shrunk by the factor the size ratio predicts (GIF size grows
    about with the pixel count, so ``0.95 * sqrt(budget / size)``, at most 0.9). The file is
    then written and, while it still exceeds ``budget``, shrunk and rewritten, at most four
    more times. ``scale`` is the side length of the written frames relative to ``frames``
    (1.0: full size). ``budget=None`` writes the full size whatever it weighs.
    """
    scale = 1.0 if budget is None else _estimated_scale(frames, fps, budget)
    p = write_gif(frames if scale == 1.0 else downscale(frames, scale), path, fps=fps)
    for _ in range(4):
        size = p.stat().st_size
        if budget is None or size <= budget or min(frames.shape[1:3]) * scale <= 16:
            break
        scale *= min(0.9, 0.95 * math.sqrt(budget / size))
        p = write_gif(downscale(frames, scale), path, fps=fps)
    return p, scale
