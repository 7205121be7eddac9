"""``check_plugin`` for removals: range, kept pixels, batch consistency and determinism.

On a tiny clip split into a top and a bottom half (a partition, which gives a removal
everything it may require of the space), the removal fills four keep-masks: nothing
removed, either half removed, everything removed. The perturbed clips must keep values in
``[0, 1]`` (the pixel range of removalx clips), leave every pixel with ``keep = 1``
unchanged, change the clip when everything is removed, give each sample the same output
whatever batch it is in, and give the same output for the same seed while torch's global
generator moves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from removalx.core.types import PartitionSpace
from removalx.testing.check_report import Reporter
from removalx.testing.determinism import difference, run_twice

__all__ = ["check_removal"]

#: Tolerance of "unchanged" and "in range" (float32 rounding of ``keep * x + (1 - keep) * fill``).
ATOL = 1e-6
_SEED = 0
_RNG_FIX = "Draw random numbers from the seed prepare() is given and the sample index (removalx.plugin.hash_uniform)."


def _setup(video: Tensor) -> tuple[PartitionSpace, Tensor, Tensor]:
    t, h, w, _ = video.shape
    halves = torch.zeros(t, h, w, dtype=torch.long)
    halves[:, h // 2 :] = 1
    keep = torch.ones(4, t, h, w)
    keep[1, :, : h // 2] = 0  # top removed
    keep[2, :, h // 2 :] = 0  # bottom removed
    keep[3] = 0  # everything removed
    return PartitionSpace(halves), keep, torch.arange(4)


def _check_output(out: Any, video: Tensor, keep: Tensor, report: Reporter) -> None:
    if not isinstance(out, Tensor) or out.shape != (keep.shape[0], *video.shape):
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise report("shape", f"apply() gave {shape}, expected {(keep.shape[0], *video.shape)}")
    if not torch.isfinite(out).all():
        raise report("finite", "apply() produced NaN or infinite values")
    lo, hi = float(out.min()), float(out.max())
    if lo < -ATOL or hi > 1 + ATOL:
        raise report(
            "value range",
            f"perturbed clips hold values in [{lo:.4g}, {hi:.4g}], outside the pixel range [0, 1]",
            "Clamp the fill to [0, 1] (clips and models take pixels in [0, 1]).",
        )
    kept = keep.bool()
    drift = (out - video).abs().amax(-1)  # [B, T, H, W]
    moved = torch.where(kept, drift, torch.zeros_like(drift))
    if float(moved.max()) > ATOL:
        b = int(moved.reshape(moved.shape[0], -1).amax(1).argmax())
        raise report(
            "kept pixels",
            f"pixels with keep = 1 must stay unchanged, but sample {b} changes them by up to {float(moved.max()):.4g}",
            "Change only removed pixels: return keep * video + (1 - keep) * fill (removalx.plugin.blend).",
        )
    if float(drift[3].max()) <= ATOL:
        raise report("effect", "removing every pixel left the clip unchanged (the fill equals the clip)")


def _check_batches(
    obj: Any, video: Tensor, keep: Tensor, index: Tensor, out: Tensor, report: Reporter
) -> None:
    order = torch.tensor([3, 1, 2, 0])
    shuffled = obj.apply(video, keep[order], index[order])
    singles = torch.cat([obj.apply(video, keep[i : i + 1], index[i : i + 1]) for i in range(keep.shape[0])])
    for got, want, how in ((shuffled, out[order], "in another order"), (singles, out, "alone")):
        d = float((got - want).abs().max())
        if d > ATOL:
            raise report(
                "batch consistency",
                f"the same keep-masks give different clips when applied {how} (max |difference| {d:.4g})",
                _RNG_FIX,
            )


def check_removal(make: Callable[[], Any], video: Tensor, report: Reporter) -> None:
    """Check a removal on ``video``; ``make()`` builds a fresh one with the config checked.

    A removal that declares ``acts_inside_model`` (it leaves the pixels alone and changes the
    model's pass instead) is outside the pixel-space contract checked here: its own tests must
    check it.
    """
    if getattr(make(), "acts_inside_model", False):
        return
    space, keep, index = _setup(video)

    def run() -> tuple[Any, Tensor]:
        obj = make()
        obj.prepare(video, space, _SEED)
        return obj, obj.apply(video, keep, index)

    obj, out = run()
    _check_output(out, video, keep, report)
    first, second = run_twice(lambda: run()[1])
    diff = difference(first, second)
    if diff is not None:
        raise report(
            "determinism",
            f"two runs with seed {_SEED} differ ({diff}) while torch's global generator moved",
            _RNG_FIX,
        )
    _check_batches(obj, video, keep, index, out, report)
