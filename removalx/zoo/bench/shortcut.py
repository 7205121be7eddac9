"""Planted shortcut (SMERF-style twins): a corner patch next to the real evidence.

The real evidence is a 5x5 low-contrast textured square sliding one pixel per frame left
(class 0) or right (class 1) in rows 8-26. A 4x4 patch in the top-left corner is shown in
every frame: white or black. With ``correlated=True`` the patch is white exactly for class 1
(a perfect shortcut); with ``correlated=False`` its colour is random, independent of the
label. The clips are otherwise identical for the same seed.

Ground truth: part ``patch`` for a model trained on correlated clips (``bench_shortcut_*``),
part ``evidence`` for its twin trained on randomised patches (``bench_shortcut_twin_*``).
"""

from __future__ import annotations

import torch

from removalx.zoo.bench.batch import BenchBatch
from removalx.zoo.bench.distractor import low_contrast_texture
from removalx.zoo.bench.motion import horizontal_track
from removalx.zoo.bench.render import (
    CLIP_SIZE,
    background,
    box_mask,
    paint,
    paint_texture,
    quantize,
    uniform_int,
)

__all__ = ["CLASS_NAMES", "PATCH", "generate"]

CLASS_NAMES: tuple[str, ...] = ("moves_left", "moves_right")
#: Side of the corner patch (top-left, rows and columns ``[0, PATCH)``).
PATCH: int = 4
_EVIDENCE = 5


def generate(n: int, seed: int, correlated: bool = True) -> BenchBatch:
    """``n`` shortcut clips (labels alternate), deterministic in ``seed``.

    Parameters
    ----------
    n, seed : int
        Number of clips and seed.
    correlated : bool, default True
        Whether the patch colour equals the label (white = class 1) or is random.

    Returns
    -------
    BenchBatch
        Parts ``evidence`` and ``patch``; info ``patch_white``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    t = CLIP_SIZE[0]
    labels = torch.arange(n) % 2
    video = background(n, gen)
    x_ev = horizontal_track(labels, _EVIDENCE, gen)
    y_ev = uniform_int(8, 26, (n, 1), gen).expand(n, t)
    video, evidence = paint_texture(video, x_ev, y_ev, low_contrast_texture(n, _EVIDENCE, gen))
    random_bit = (torch.rand(n, generator=gen) < 0.5).long()
    white = labels if correlated else random_bit
    zero = torch.zeros((n, t), dtype=torch.long)
    patch = box_mask(zero, zero, PATCH)
    video = paint(video, patch, white.float().view(n, 1).expand(n, 3))
    task = "shortcut" if correlated else "shortcut_random"
    return BenchBatch(
        task, quantize(video), labels, {"evidence": evidence, "patch": patch}, {"patch_white": white}
    )
