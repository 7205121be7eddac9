"""Conjunction (AND) and disjunction (OR) of two evidence parts.

Part A is a red 6x6 square somewhere in the left half, part B a blue 6x6 square somewhere in
the right half; each is shown in every frame of a clip or not at all.

* ``and``: class 1 (``both``) shows A and B; class 0 (``not_both``) shows exactly one of
  them (A in half of the class-0 clips, B in the other half). Removing either part leaves
  a single square: a class-0 clip.
* ``or``: class 1 (``any``) shows A, B or both; class 0 (``none``) shows neither. For the
  interventions, :func:`generate_or` with ``both_only=True`` gives class-1 clips that all show
  both parts, where removing one part must change nothing.

Ground truth: parts ``part_a`` and ``part_b`` (empty in clips that do not show them).
"""

from __future__ import annotations

import torch

from removalx.zoo.bench.batch import BenchBatch
from removalx.zoo.bench.render import CLIP_SIZE, background, box_mask, paint, quantize, uniform_int

__all__ = ["AND_CLASS_NAMES", "COLOURS", "OR_CLASS_NAMES", "generate_and", "generate_or"]

AND_CLASS_NAMES: tuple[str, ...] = ("not_both", "both")
OR_CLASS_NAMES: tuple[str, ...] = ("none", "any")
#: Colours of part A and part B.
COLOURS: tuple[tuple[float, float, float], ...] = ((0.9, 0.3, 0.2), (0.2, 0.4, 0.9))
_SIZE = 6


def _render(task: str, labels: torch.Tensor, show: torch.Tensor, gen: torch.Generator) -> BenchBatch:
    """Draw the parts flagged in ``show`` (``bool[n, 2]``: A, B) on noisy backgrounds."""
    n = labels.shape[0]
    t, h, w = CLIP_SIZE
    video = background(n, gen)
    parts = {}
    for k, (name, x_low) in enumerate((("part_a", 1), ("part_b", w // 2 + 1))):
        x = uniform_int(x_low, x_low + w // 2 - _SIZE - 2, (n, 1), gen).expand(n, t)
        y = uniform_int(1, h - _SIZE - 1, (n, 1), gen).expand(n, t)
        mask = box_mask(x, y, _SIZE, show[:, k : k + 1].expand(n, t))
        video = paint(video, mask, torch.tensor(COLOURS[k]).expand(n, 3))
        parts[name] = mask
    info = {"shows_a": show[:, 0], "shows_b": show[:, 1]}
    return BenchBatch(task, quantize(video), labels, parts, info)


def generate_and(n: int, seed: int) -> BenchBatch:
    """``n`` AND clips (labels alternate; class-0 clips alternate between A only and B only)."""
    gen = torch.Generator().manual_seed(int(seed))
    labels = torch.arange(n) % 2
    a_only = (torch.arange(n) // 2) % 2 == 0
    show_a = (labels == 1) | a_only
    show_b = (labels == 1) | ~a_only
    return _render("and", labels, torch.stack([show_a, show_b], 1), gen)


def generate_or(n: int, seed: int, both_only: bool = False) -> BenchBatch:
    """``n`` OR clips (labels alternate), deterministic in ``seed``.

    Parameters
    ----------
    n, seed : int
        Number of clips and seed.
    both_only : bool, default False
        If True every class-1 clip shows both parts (the interventions' clips); otherwise
        class-1 clips show A only, B only or both, a third each (cycling).
    """
    gen = torch.Generator().manual_seed(int(seed))
    labels = torch.arange(n) % 2
    kind = torch.full((n,), 2) if both_only else (torch.arange(n) // 2) % 3  # 0: A, 1: B, 2: both
    show_a = (labels == 1) & (kind != 1)
    show_b = (labels == 1) & (kind != 0)
    return _render("or_both" if both_only else "or", labels, torch.stack([show_a, show_b], 1), gen)
