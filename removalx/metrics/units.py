"""Ranking units of the perturbation metrics: which pixels are perturbed together.

* ``pixel`` -- every pixel on its own (``None`` labels).
* ``patch`` -- non-overlapping ``patch x patch`` blocks in every frame (STEP journal
  Sec. V-A: 7x7 patches on 112x112 frames).
* ``superpixel`` -- 2D SLIC run on every frame separately, about ``superpixels`` segments per
  frame; a segment never spans two frames (STEP journal Sec. V-A: "split each frame into
  around 256 segments").
* ``supervoxel`` -- one 3D SLIC over the clip with ``superpixels * T`` segments that may span
  frames (the ``slic3d`` segmentation plugin).
* ``level`` -- the pixels that share one importance level: every distinct value
  (``levels=0``) or one of ``levels`` equal-width bins of the min-max-normalised map, bin ``b``
  holding the pixels with ``b / levels <= m < (b + 1) / levels`` (the top bin includes 1).
  One unit per step perturbs the map threshold by threshold, as the released evaluation code
  of "removal-based video explanations" does (there: ``levels=200``).

All labels are ``long[T, H, W]`` with consecutive ids ``0 .. n_units - 1`` and no empty unit.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from removalx.errors import ConfigError

__all__ = [
    "Unit",
    "level_labels",
    "patch_labels",
    "superpixel_labels",
    "supervoxel_labels",
    "unit_labels",
]

Unit = Literal["pixel", "patch", "superpixel", "supervoxel", "level"]
UNITS: tuple[str, ...] = ("pixel", "patch", "superpixel", "supervoxel", "level")


def _consecutive(labels: Tensor) -> Tensor:
    """``labels`` renumbered ``0 .. n - 1`` in increasing order of the old ids (no empty id)."""
    _, inv = torch.unique(labels.reshape(-1), return_inverse=True)
    return inv.reshape(labels.shape).long()


def patch_labels(shape: tuple[int, int, int], patch: int = 7) -> Tensor:
    """``long[T, H, W]``: non-overlapping ``patch x patch`` blocks, separate in every frame.

    The patch unit of the STEP journal paper (Sec. V-A: 7x7 patches on 112x112 frames).
    Blocks at the right and bottom edges are smaller when ``patch`` does not divide the size.
    """
    t, h, w = shape
    if patch < 1:
        raise ConfigError(f"patch must be >= 1 pixel, got {patch}.", "Use patch=7 (the paper's value).")
    nh, nw = -(-h // patch), -(-w // patch)
    rows = (torch.arange(h) // patch).view(1, h, 1)
    cols = (torch.arange(w) // patch).view(1, 1, w)
    frames = torch.arange(t).view(t, 1, 1)
    return (frames * nh * nw + rows * nw + cols).long()


def superpixel_labels(
    video: Tensor,
    n_segments: int = 256,
    *,
    compactness: float = 10.0,
    sigma: float = 1.0,
    slic_zero: bool = True,
) -> Tensor:
    """Per-frame 2D SLIC superpixels of ``video`` (``float[T, H, W, C]`` in [0, 1]).

    Every frame is segmented on its own into about ``n_segments`` superpixels (scikit-image
    SLIC; ``sigma=1`` pre-smoothing and the parameter-free SLICO variant ``slic_zero=True``,
    as in the STEP authors' evaluation code); frame ``t``'s ids follow frame ``t - 1``'s, so
    no id occurs in two frames.

    Returns
    -------
    Tensor
        ``long[T, H, W]`` with ids ``0 .. n - 1``.
    """
    from skimage.segmentation import slic

    if n_segments < 1:
        raise ConfigError(f"superpixels must be >= 1, got {n_segments}.", "Use 256 (the STEP journal value).")
    arr = video.detach().float().cpu().numpy().astype(np.float64)
    if arr.ndim != 4:
        raise ConfigError(
            f"superpixel_labels needs a video [T, H, W, C], got shape {tuple(arr.shape)}.",
            "Pass the clip as float32[T, H, W, C].",
        )
    out = np.empty(arr.shape[:3], dtype=np.int64)
    offset = 0
    for t in range(arr.shape[0]):
        lab = slic(
            arr[t],
            n_segments=n_segments,
            compactness=compactness,
            sigma=sigma,
            slic_zero=slic_zero,
            convert2lab=arr.shape[-1] == 3,
            channel_axis=-1,
            start_label=0,
            enforce_connectivity=True,
        )
        _, inv = np.unique(lab, return_inverse=True)
        out[t] = inv.reshape(lab.shape) + offset
        offset += int(inv.max()) + 1
    return torch.from_numpy(out)


def supervoxel_labels(video: Tensor, n_segments: int, compactness: float = 10.0) -> Tensor:
    """3D SLIC supervoxels of the whole clip (the ``slic3d`` plugin); a segment may span frames."""
    from removalx.core.registry import get_registry

    n_seg = max(1, min(n_segments, int(video.shape[0] * video.shape[1] * video.shape[2]) // 4))
    seg = get_registry().make("segmentation", "slic3d", {"n_segments": n_seg, "compactness": compactness})
    space = seg.segment(video.detach().float().cpu(), torch.Generator().manual_seed(0))
    return _consecutive(space.labels.cpu().long())


def level_labels(importance: Tensor, levels: int = 0) -> Tensor:
    """Units of equal importance level (see the module docstring).

    Parameters
    ----------
    importance : Tensor
        ``float[T, H, W]``.
    levels : int
        ``0``: one unit per distinct value; ``N >= 1``: ``N`` equal-width bins of the
        min-max-normalised map (a pixel's bin is the number of thresholds ``i / N``,
        ``i = 1 .. N - 1``, at or below its normalised value).

    Returns
    -------
    Tensor
        ``long[T, H, W]``; ids increase with importance, empty bins are dropped.
    """
    if levels < 0:
        raise ConfigError(f"levels must be >= 0, got {levels}.", "Use 0 (every distinct value) or e.g. 200.")
    imp = importance.detach().double().cpu()
    if levels == 0:
        return _consecutive(imp)
    lo, hi = float(imp.min()), float(imp.max())
    norm = (imp - lo) / (hi - lo) if hi > lo else torch.zeros_like(imp)
    thresholds = torch.tensor([i / levels for i in range(1, levels)], dtype=torch.float64)
    bins = torch.searchsorted(thresholds, norm.reshape(-1).contiguous(), right=True)
    return _consecutive(bins.reshape(imp.shape))


def unit_labels(
    video: Tensor,
    unit: Unit,
    *,
    importance: Tensor | None = None,
    patch: int = 7,
    superpixels: int = 256,
    levels: int = 0,
    compactness: float = 10.0,
) -> Tensor | None:
    """Ranking units of ``video`` as ``long[T, H, W]`` labels (``None`` = single pixels).

    ``importance`` is needed for ``unit="level"`` only.
    """
    t, h, w = int(video.shape[0]), int(video.shape[1]), int(video.shape[2])
    if unit == "pixel":
        return None
    if unit == "patch":
        return patch_labels((t, h, w), patch)
    if unit == "superpixel":
        return superpixel_labels(video, superpixels, compactness=compactness)
    if unit == "supervoxel":
        return supervoxel_labels(video, superpixels * t, compactness)
    if unit == "level":
        if importance is None:
            raise ConfigError(
                "unit 'level' needs the importance map.", "Pass importance=attribution.importance()."
            )
        return level_labels(importance, levels)
    raise ConfigError(f"Unknown ranking unit {str(unit)[:40]!r}.", f"Use one of {', '.join(UNITS)}.")
