"""Temporal order: the class is which of two squares changes colour first.

Square A (left half) and square B (right half) are shown in every frame. Each starts in a
colour drawn uniformly from :data:`PALETTE` (independently of the other and of the label) and
switches to the other palette colour once. The two switches happen in consecutive frames,
``t1`` and ``t1 + 1`` with ``t1`` uniform on ``[2, T - 4]``: class 0 (``a_then_b``) A switches at
``t1`` and B at ``t1 + 1``; class 1 (``b_then_a``) the other way round.

* Every single frame (at every index ``t``) has exactly the same distribution in both classes:
  the colours of A and B in frame ``t`` are independent and uniform whatever the switch times,
  and positions do not depend on the label.
* One square alone says almost nothing: A's switch time is uniform on ``[2, T - 4]`` in class 0
  and on ``[3, T - 3]`` in class 1, so the best guess from it alone is right with probability
  ``0.5 + 0.5 / (T - 5)`` (0.545 for T = 16). Only the order of the two switches tells the
  classes apart.

Ground truth: part ``event_a`` is square A in every frame, ``event_b`` square B (their colours
before and after each switch reveal when it happened); info ``time_a``, ``time_b`` are the first
frames in the new colour.
"""

from __future__ import annotations

import torch

from removalx.zoo.bench.batch import BenchBatch
from removalx.zoo.bench.render import CLIP_SIZE, background, box_mask, paint, quantize, uniform_int

__all__ = ["CLASS_NAMES", "PALETTE", "generate"]

CLASS_NAMES: tuple[str, ...] = ("a_then_b", "b_then_a")
#: The two colours each square switches between (red, blue).
PALETTE: tuple[tuple[float, float, float], ...] = ((0.9, 0.25, 0.2), (0.2, 0.35, 0.9))
_SIZE = 7


def generate(n: int, seed: int) -> BenchBatch:
    """``n`` temporal-order clips (labels alternate 0, 1, 0, ...), deterministic in ``seed``.

    Returns
    -------
    BenchBatch
        Parts ``event_a``, ``event_b``; info ``time_a``, ``time_b``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    t, h, _ = CLIP_SIZE
    labels = torch.arange(n) % 2
    video = background(n, gen)
    t1 = uniform_int(2, t - 4, (n,), gen)
    t2 = t1 + 1
    time_a = torch.where(labels == 0, t1, t2)
    time_b = torch.where(labels == 0, t2, t1)
    frames = torch.arange(t).view(1, t)
    palette = torch.tensor(PALETTE)
    parts = {}
    for name, x_range, when in (("event_a", (2, 7), time_a), ("event_b", (18, 23), time_b)):
        x = uniform_int(*x_range, (n, 1), gen).expand(n, t)
        y = uniform_int(2, h - _SIZE - 2, (n, 1), gen).expand(n, t)
        start = uniform_int(0, 1, (n, 1), gen)
        colour_index = start ^ (frames >= when[:, None]).long()  # [n, t]
        mask = box_mask(x, y, _SIZE)
        video = paint(video, mask, palette[colour_index].permute(0, 2, 1))
        parts[name] = mask
    info = {"time_a": time_a, "time_b": time_b}
    return BenchBatch("temporal_order", quantize(video), labels, parts, info)
