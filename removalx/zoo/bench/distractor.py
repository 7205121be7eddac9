"""Distractor: a small moving square carries the label; a larger, higher-contrast one does not.

The evidence is a 5x5 low-contrast textured square sliding one pixel per frame left (class 0)
or right (class 1) in one half of the frame. In the other half a 10x10 black-and-white
checkerboard slides one pixel per frame left or right, at random and independently of the
label: larger, higher in contrast and moving on the same axis, but uninformative.

Ground truth: part ``evidence``; part ``distractor`` carries no label information.
"""

from __future__ import annotations

import torch

from removalx.zoo.bench.batch import BenchBatch
from removalx.zoo.bench.motion import half_rows, horizontal_track
from removalx.zoo.bench.render import CLIP_SIZE, background, paint_texture, quantize, random_texture

__all__ = ["CLASS_NAMES", "checkerboard", "generate", "low_contrast_texture"]

CLASS_NAMES: tuple[str, ...] = ("moves_left", "moves_right")
_EVIDENCE = 5
_DISTRACTOR = 10


def checkerboard(n: int, size: int) -> torch.Tensor:
    """``float32[n, 3, size, size]`` black/white checkerboard with 2x2-pixel cells."""
    idx = torch.arange(size) // 2
    board = ((idx.view(-1, 1) + idx.view(1, -1)) % 2).float()
    return board.expand(n, 3, size, size).clone()


def low_contrast_texture(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """A :func:`random_texture` pulled halfway towards the 0.5 gray background."""
    return 0.5 + 0.5 * (random_texture(n, size, gen) - 0.5)


def generate(n: int, seed: int) -> BenchBatch:
    """``n`` distractor clips (labels alternate), deterministic in ``seed``.

    Returns
    -------
    BenchBatch
        Parts ``evidence``, ``distractor``; info ``distractor_direction``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    t = CLIP_SIZE[0]
    labels = torch.arange(n) % 2
    video = background(n, gen)
    evidence_top = torch.rand(n, generator=gen) < 0.5
    other = (torch.rand(n, generator=gen) < 0.5).long()
    x_ev = horizontal_track(labels, _EVIDENCE, gen)
    y_ev = half_rows(evidence_top, _EVIDENCE, gen).expand(n, t)
    x_d = horizontal_track(other, _DISTRACTOR, gen)
    y_d = half_rows(~evidence_top, _DISTRACTOR, gen).expand(n, t)
    video, evidence = paint_texture(video, x_ev, y_ev, low_contrast_texture(n, _EVIDENCE, gen))
    video, distractor = paint_texture(video, x_d, y_d, checkerboard(n, _DISTRACTOR))
    parts = {"evidence": evidence, "distractor": distractor}
    return BenchBatch("distractor", quantize(video), labels, parts, {"distractor_direction": other})
