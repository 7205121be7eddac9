"""Motion only: two identical textured squares, one static, one moving; class = its direction.

Each clip draws one random texture (:func:`~removalx.zoo.bench.render.random_texture`) and
paints it twice: a static twin in one half of the frame (top or bottom, at random) and a
moving copy in the other half that slides one pixel per frame to the left (class 0) or to
the right (class 1). Appearance is the same for both objects, so only motion separates them.

Ground truth: part ``moving`` (the moving square in every frame); part ``static`` (its
twin) carries no label information.
"""

from __future__ import annotations

import torch

from removalx.zoo.bench.batch import BenchBatch
from removalx.zoo.bench.render import (
    CLIP_SIZE,
    background,
    paint_texture,
    quantize,
    random_texture,
    uniform_int,
)

__all__ = ["CLASS_NAMES", "generate", "half_rows", "horizontal_track"]

CLASS_NAMES: tuple[str, ...] = ("moves_left", "moves_right")
_SIZE = 6


def half_rows(top: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Row of a ``size`` object inside the top (``top`` True) or bottom half, ``int64[n, 1]``."""
    h = CLIP_SIZE[1]
    row = uniform_int(1, h // 2 - size - 1, (top.shape[0], 1), gen)
    return torch.where(top[:, None], row, row + h // 2)


def horizontal_track(direction: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Columns ``int64[n, T]`` of an object moving 1 px/frame right (``direction`` 1) or left (0)."""
    t, _, w = CLIP_SIZE
    frames = torch.arange(t).view(1, t)
    x0 = uniform_int(0, w - size - (t - 1), (direction.shape[0], 1), gen)
    return torch.where(direction[:, None] == 1, x0 + frames, x0 + (t - 1) - frames)


def generate(n: int, seed: int) -> BenchBatch:
    """``n`` motion-only clips (labels alternate), deterministic in ``seed``.

    Returns
    -------
    BenchBatch
        Parts ``moving``, ``static``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    t, _, w = CLIP_SIZE
    labels = torch.arange(n) % 2
    video = background(n, gen)
    texture = random_texture(n, _SIZE, gen)
    moving_top = torch.rand(n, generator=gen) < 0.5
    x_move = horizontal_track(labels, _SIZE, gen)
    y_move = half_rows(moving_top, _SIZE, gen).expand(n, t)
    x_static = uniform_int(0, w - _SIZE, (n, 1), gen).expand(n, t)
    y_static = half_rows(~moving_top, _SIZE, gen).expand(n, t)
    video, moving = paint_texture(video, x_move, y_move, texture)
    video, static = paint_texture(video, x_static, y_static, texture)
    return BenchBatch("motion", quantize(video), labels, {"moving": moving, "static": static})
