"""``xrai``: XRAI over 3D SLIC supervoxels (STEP journal, Sec. V-B; Kapishnikov et al. 2019).

1. Pixel attribution: Integrated Gradients (Eq. 24) from a black and a white baseline,
   averaged (XRAI's default), reduced over channels (XRAI: the signed max over channels).
2. Over-segmentation at several levels: 3D SLIC supervoxels (the ``slic3d`` segmenter) with
   ``n_segments`` = 50, 100, 150, 250, 500, 1200 (journal Sec. V-B).
3. Greedy selection (XRAI's Algorithm 1): repeatedly add the region, from any level, with the
   highest gain = mean attribution over its pixels not yet covered; those pixels get the gain
   as their value. Regions with fewer than ``min_pixel_diff`` uncovered pixels are dropped;
   stop at ``area_threshold`` coverage; left-over pixels get their own mean attribution.

**Nesting.** Independent SLIC runs do not nest. The finest level is 3D SLIC itself; each
coarser level relabels every region of the next finer level with the coarse SLIC segment
that covers most of its pixels (majority vote), so a coarse region is a union of finer
regions and every region lies inside exactly one region of every coarser level, by
construction (coarse boundaries snap to the finer ones; ``meta["n_regions"]`` gives the
counts). XRAI's 5-px dilation of segments is omitted because it would break nesting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.gradients import (
    GradientConfig,
    finish,
    integrated_gradients,
    reduce_channels,
    require_differentiable,
)
from removalx.hookspecs import hookimpl
from removalx.stages import Explainer
from removalx.types import Attribution
from removalx_plugins.segmentation.slic3d import Slic3D, Slic3DConfig

if TYPE_CHECKING:
    from removalx.models import VideoClassifier


class XRAIConfig(GradientConfig):
    """XRAI settings (journal Sec. V-B; Kapishnikov et al.'s defaults elsewhere)."""

    levels: tuple[int, ...] = Field(
        (50, 100, 150, 250, 500, 1200), description="SLIC n_segments per level (journal Sec. V-B)"
    )
    compactness: float = Field(10.0, gt=0, description="3D SLIC compactness (slic3d default)")
    steps: int = Field(50, gt=1, description="IG path points m of Eq. 24 (journal: 50)")
    baselines: tuple[float, ...] = Field(
        (0.0, 1.0), description="IG baselines, averaged: black and white (XRAI)"
    )
    channel_reduction: Literal["max", "sum", "abs_sum", "max_abs"] = Field(  # type: ignore[assignment]
        "max", description="reduce RGB IG to one value per pixel (XRAI: signed max over channels)"
    )
    min_pixel_diff: int = Field(50, ge=1, description="drop regions adding fewer uncovered pixels (XRAI: 50)")
    area_threshold: float = Field(1.0, gt=0, le=1, description="stop at this covered fraction (XRAI: 1.0)")


def nested_levels(
    video: Tensor, levels: tuple[int, ...], compactness: float, generator: torch.Generator
) -> list[Tensor]:
    """``long[T, H, W]`` labels per level, coarse to fine; every level is a union of the next.

    The finest level is 3D SLIC itself. Going coarser, each region of the finer level is
    given the label of the SLIC segment (at the coarser ``n_segments``) that covers most of
    its pixels, so a coarse region is a union of fine regions -- nesting by construction --
    and no level has more regions than SLIC produced for it.
    """
    order = sorted(levels)
    slics = [
        Slic3D(Slic3DConfig(n_segments=n, compactness=compactness))
        .segment(video.cpu(), generator)
        .labels.long()
        for n in order
    ]
    out = [slics[-1]]
    for coarse in reversed(slics[:-1]):
        fine = out[0].reshape(-1)
        c = coarse.reshape(-1)
        nf, nc = int(fine.max()) + 1, int(c.max()) + 1
        overlap = torch.bincount(fine * nc + c, minlength=nf * nc).view(nf, nc)
        majority = overlap.argmax(1)  # coarse segment covering most of each fine region
        _, lab = torch.unique(majority[fine], return_inverse=True)
        out.insert(0, lab.view(coarse.shape))
    return out


def xrai_greedy(
    attr: Tensor, levels: list[Tensor], min_pixel_diff: int, area_threshold: float
) -> tuple[Tensor, int]:
    """XRAI's greedy region ranking; returns ``(map float[T,H,W], regions added)``."""
    a = attr.reshape(-1).double()
    p = a.numel()
    flats = [lab.reshape(-1) for lab in levels]
    sums = [torch.bincount(f, weights=a) for f in flats]
    counts = [torch.bincount(f).double() for f in flats]
    orders = [torch.argsort(f, stable=True) for f in flats]
    sizes = [c.long() for c in counts]
    starts = [torch.cumsum(n, 0) - n for n in sizes]
    active = [torch.ones_like(c, dtype=torch.bool) for c in counts]
    covered = torch.zeros(p, dtype=torch.bool)
    out = torch.zeros(p, dtype=torch.float64)
    added = 0
    while True:
        best, where = -float("inf"), None
        for li in range(len(flats)):
            active[li] &= counts[li] >= min_pixel_diff
            if not bool(active[li].any()):
                continue
            gain = torch.where(
                active[li], sums[li] / counts[li].clamp_min(1), torch.full_like(sums[li], -float("inf"))
            )
            g, s = gain.max(0)
            if float(g) > best:
                best, where = float(g), (li, int(s))
        if where is None:
            break
        li, s = where
        st = int(starts[li][s])
        pix = orders[li][st : st + int(sizes[li][s])]  # the segment's pixels (stable argsort)
        pix = pix[~covered[pix]]
        out[pix] = best
        covered[pix] = True
        for lj, f in enumerate(flats):
            sums[lj] -= torch.bincount(f[pix], weights=a[pix], minlength=sums[lj].numel())
            counts[lj] -= torch.bincount(f[pix], minlength=counts[lj].numel()).double()
        active[li][s] = False
        added += 1
        if float(covered.double().mean()) >= area_threshold:
            break
    if not bool(covered.all()):
        out[~covered] = a[~covered].mean()
    return out.reshape(attr.shape).float(), added


class XRAI(Explainer):
    """XRAI with nested 3D SLIC levels."""

    def __init__(self, config: XRAIConfig) -> None:
        self.config = config

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        require_differentiable(model, "xrai")
        cfg = self.config
        n0 = (model.n_forward, model.n_backward)
        attrs = [
            integrated_gradients(
                model,
                video,
                target,
                steps=cfg.steps,
                baseline=b,
                method="riemann_right",
                output=cfg.output,
                batch_size=cfg.internal_batch_size,
            )[0]
            for b in cfg.baselines
        ]
        attr = torch.stack(attrs).mean(0).cpu()
        pix = (
            attr.amax(-1) if cfg.channel_reduction == "max" else reduce_channels(attr, cfg.channel_reduction)
        )
        levels = nested_levels(video, cfg.levels, cfg.compactness, generator)
        values, added = xrai_greedy(pix, levels, cfg.min_pixel_diff, cfg.area_threshold)
        return finish(
            values,
            target,
            cfg,
            "xrai",
            model,
            n0,
            pixel_attribution=pix,
            level_labels=levels,
            n_regions=[int(lab.max()) + 1 for lab in levels],
            regions_added=added,
        )


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("xrai", XRAIConfig, XRAI)
