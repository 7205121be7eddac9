"""Box arithmetic of incremental inference: changed boxes and their propagation through windows.

A *box* is a half-open range ``[lo, hi)`` per spatial axis of a ``[B, C, *S]`` tensor; an
empty box has ``lo == hi`` on every axis. Krypton (Nakandala et al., "Incremental and
Approximate Inference for Faster Occlusion-based Deep CNN Explanations", SIGMOD 2019,
Sec. 3.1, Eq. 1-4) propagates the changed patch through each layer's kernel, stride and
padding; :func:`window_output_box` is that propagation per axis, with dilation.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["Box", "changed_boxes", "is_empty", "union", "volume", "window_output_box"]

#: ``(lo, hi)``: per-axis start (inclusive) and stop (exclusive).
Box = tuple[tuple[int, ...], tuple[int, ...]]


def is_empty(box: Box) -> bool:
    lo, hi = box
    return any(a >= b for a, b in zip(lo, hi))


def volume(box: Box) -> int:
    lo, hi = box
    v = 1
    for a, b in zip(lo, hi):
        v *= max(0, b - a)
    return v


def union(a: Box, b: Box) -> Box:
    """Smallest box containing ``a`` and ``b`` (an empty box contributes nothing)."""
    if is_empty(a):
        return b
    if is_empty(b):
        return a
    return (
        tuple(min(x, y) for x, y in zip(a[0], b[0])),
        tuple(max(x, y) for x, y in zip(a[1], b[1])),
    )


def empty_box(n: int) -> Box:
    return (0,) * n, (0,) * n


def changed_boxes(x: Tensor, ref: Tensor) -> list[Box]:
    """Per sample of ``x`` (``[B, C, *S]``), the bounding box of the voxels that differ from ``ref``.

    ``ref`` is ``[1, C, *S]``. All samples at once: one comparison, then a reduction per axis.
    """
    diff = (x != ref).any(dim=1)  # [B, *S]
    nd = diff.dim() - 1
    los, his = [], []
    for axis in range(nd):
        others = [d for d in range(1, nd + 1) if d != axis + 1]
        hit = diff.any(dim=others) if others else diff  # [B, S_axis]
        n = hit.shape[1]
        pos = torch.arange(n, device=hit.device).expand_as(hit)
        lo = torch.where(hit, pos, n).min(dim=1).values
        hi = torch.where(hit, pos + 1, 0).max(dim=1).values
        los.append(lo)
        his.append(hi)
    lo_t = torch.stack(los, 1).cpu().tolist()
    hi_t = torch.stack(his, 1).cpu().tolist()
    out: list[Box] = []
    for lo_i, hi_i in zip(lo_t, hi_t):
        if any(a >= b for a, b in zip(lo_i, hi_i)):
            out.append(empty_box(nd))
        else:
            out.append((tuple(lo_i), tuple(hi_i)))
    return out


def window_output_box(
    box: Box,
    size_out: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
) -> Box:
    """Output positions of a sliding-window layer whose window meets the input box.

    Output ``o`` reads inputs ``o*s - p + j*d`` for ``j = 0 .. k-1`` (Krypton Eq. 1-2 with
    dilation): it may change iff ``o*s - p <= hi - 1`` and ``o*s - p + d*(k-1) >= lo``.
    """
    if is_empty(box):
        return empty_box(len(size_out))
    lo_out, hi_out = [], []
    for lo, hi, n, k, s, p, d in zip(*box, size_out, kernel, stride, padding, dilation):
        a = -((-(lo + p - d * (k - 1))) // s)  # ceil
        b = (hi - 1 + p) // s + 1
        lo_out.append(max(0, a))
        hi_out.append(min(n, b))
    if any(a >= b for a, b in zip(lo_out, hi_out)):
        return empty_box(len(size_out))
    return tuple(lo_out), tuple(hi_out)
