"""``xrai``: XRAI over 3D SLIC supervoxels (STEP journal, Sec. V-B; Kapishnikov et al. 2019).

1. Pixel attribution: Integrated Gradients (Eq. 24, ``steps``, ``method``) from several
   constant baselines -- black and white: ``baselines`` (0, 1), or the clip's own minimum and
   maximum (``baseline_source="clip_min_max"``, as XRAI's reference implementation and the
   STEP authors' code). Combined either as XRAI (``normalize_each=False``: the IG maps are
   averaged, then reduced over channels -- XRAI: the signed max) or as the STEP authors' code
   (``normalize_each=True``: each IG map is reduced over channels (``|.|``-mean),
   normalised to [0, 1] by its ``percentile`` (99.9), then the maps are averaged).
2. Over-segmentation at several levels: 3D SLIC supervoxels (scikit-image ``slic`` on the
   ``T x H x W`` volume) with ``n_segments`` = 50, 100, 150, 250, 500, 1200 (journal Sec. V-B).
   ``slic_input="frame_minmax"``, ``slic_sigma=0.8`` and ``slic_zero=True`` reproduce the
   STEP authors' call (each frame min-max scaled to [-1, 1] first).
3. Greedy selection (XRAI's Algorithm 1): repeatedly add the region, from any level, with the
   highest gain = mean attribution over its pixels not yet covered; those pixels get the gain
   as their value. Regions with fewer than ``min_pixel_diff`` uncovered pixels are dropped;
   stop at ``area_threshold`` coverage; left-over pixels get their own mean attribution. Ties
   go to the coarsest level, then the lowest label (the order of XRAI's region list).

**Levels.** XRAI (and the STEP authors' code) use the levels as they come: independent
segmentations whose regions overlap across levels (``nested=False``). ``nested=True`` (the
plugin default) makes them nest instead: the finest level is SLIC itself; each coarser level
relabels every region of the next finer level with the coarse SLIC segment that covers most
of its pixels (majority vote), so a coarse region is a union of finer regions and every
region lies inside exactly one region of every coarser level, by construction (coarse
boundaries snap to the finer ones; ``meta["n_regions"]`` gives the counts). XRAI's 5-px
dilation of segments is omitted (the STEP authors' code omits it too).

``input_space="model"`` takes the clip's minimum / maximum and the SLIC frames in the
model's normalised units ``(X - mean) / std``, as the STEP authors' code (IG itself does not
depend on it). The ``xrai3d`` recipe sets the STEP authors' choices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field
from skimage.segmentation import slic
from torch import Tensor

from removalx.plugin import hookimpl
from removalx_plugins.machinery.gradients import (
    INPUT_SPACE_HELP,
    InputMapConfig,
    InputMapExplainer,
    InputSpace,
    integrated_gradients,
    model_space,
    normalize_map,
    reduce_channels,
)

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier

IGMethod = Literal["riemann_right", "riemann_left", "riemann_middle", "riemann_trapezoid", "gausslegendre"]
XRAIReduction = Literal["max", "sum", "abs_sum", "abs_mean", "max_abs"]


#: A length along one axis, bounded at validation.
_Length = Annotated[int, Field(ge=1, le=100_000, strict=True)]


class XRAIConfig(InputMapConfig):
    """XRAI settings (journal Sec. V-B; Kapishnikov et al.'s defaults elsewhere)."""

    levels: tuple[_Length, ...] = Field(
        (50, 100, 150, 250, 500, 1200),
        min_length=1,
        description="SLIC n_segments per level (journal Sec. V-B), each in [1, 100,000]",
    )
    compactness: float = Field(
        10.0, gt=0, description="SLIC compactness (scikit-image default); at most 10,000", le=10_000
    )
    slic_sigma: float = Field(
        0.0, ge=0, description="SLIC Gaussian pre-smoothing in voxels (STEP code: 0.8); at most 100", le=100
    )
    slic_zero: bool = Field(False, description="SLICO: per-segment adaptive compactness (STEP code: true)")
    slic_input: Literal["pixels", "frame_minmax"] = Field(
        "pixels", description="segment the clip as is, or each frame min-max scaled to [-1, 1] (STEP code)"
    )
    nested: bool = Field(
        True, description="relabel coarse levels to nest in finer ones (false: XRAI, STEP code)"
    )
    steps: int = Field(
        50,
        gt=1,
        description="IG path points m of Eq. 24 (journal: 50); at most 10,000",
        le=10_000,
        strict=True,
    )
    method: IGMethod = Field("riemann_right", description="IG quadrature (Eq. 24: riemann_right)")
    baselines: tuple[Annotated[float, Field(ge=-1000, le=1000)], ...] = Field(
        (0.0, 1.0),
        min_length=1,
        description="IG baselines (constant pixel values), averaged: black and white, each in [-1000, 1000]",
    )
    baseline_source: Literal["constant", "clip_min_max"] = Field(
        "constant", description="use `baselines`, or the clip's min and max value (XRAI code, STEP code)"
    )
    channel_reduction: XRAIReduction = Field(  # type: ignore[assignment]
        "max", description="reduce RGB IG to one value per pixel (XRAI: signed max; STEP code: abs_mean)"
    )
    normalize_each: bool = Field(
        False,
        description="reduce and percentile-normalise each baseline's IG map before averaging (STEP code)",
    )
    input_space: InputSpace = Field("pixel", description=INPUT_SPACE_HELP)
    min_pixel_diff: int = Field(
        50,
        ge=1,
        description="drop regions adding fewer uncovered pixels (XRAI: 50); at most 4096 x 4096",
        le=16_777_216,
        strict=True,
    )
    area_threshold: float = Field(1.0, gt=0, le=1, description="stop at this covered fraction (XRAI: 1.0)")


def slic_input(video: Tensor, how: str, space: tuple[Tensor, Tensor] | None = None) -> np.ndarray:
    """``float64[T, H, W, C]`` given to SLIC: the clip, or each frame min-max scaled to [-1, 1].

    ``space=(mean, std)``: the clip in the model's units ``(X - mean) / std`` first. A
    constant frame becomes 0 (the STEP authors' scaling divides by zero there).
    """
    arr = video.detach().cpu().double().numpy()
    if space is not None:
        arr = (arr - space[0].cpu().double().numpy()) / space[1].cpu().double().numpy()
    if how == "pixels":
        return arr
    lo = arr.min(axis=(1, 2, 3), keepdims=True)
    span = arr.max(axis=(1, 2, 3), keepdims=True) - lo
    scaled = np.divide(arr - lo, span, out=np.full_like(arr, 0.5), where=span > 0)
    return scaled * 2.0 - 1.0


def slic_levels(arr: np.ndarray, levels: tuple[int, ...], cfg: XRAIConfig) -> list[Tensor]:
    """``long[T, H, W]`` 3D SLIC labels for every ``n_segments`` in ``levels``, coarse to fine."""
    return [
        torch.from_numpy(
            slic(
                arr,
                n_segments=int(n),
                compactness=cfg.compactness,
                sigma=cfg.slic_sigma,
                slic_zero=cfg.slic_zero,
                start_label=0,
                channel_axis=-1,
            ).astype(np.int64)
        )
        for n in sorted(levels)
    ]


def nest(slics: list[Tensor]) -> list[Tensor]:
    """Levels coarse to fine, relabelled so that every level is a union of regions of the next.

    The finest level is kept. Going coarser, each region of the finer level is given the label
    of the coarse segment that covers most of its pixels, so a coarse region is a union of
    fine regions -- nesting by construction -- and no level has more regions than before.
    """
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
            s = int(torch.argmax(gain))  # the first maximum: the lowest label
            if float(gain[s]) > best:
                best, where = float(gain[s]), (li, s)
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


class XRAI(InputMapExplainer[XRAIConfig]):
    """XRAI with 3D SLIC levels."""

    name = "xrai"

    def baseline_values(self, model: VideoClassifier, video: Tensor) -> list[float | Tensor]:
        """The constant IG baselines in pixel units (a per-channel tensor for model-space extremes)."""
        cfg = self.config
        if cfg.baseline_source == "constant":
            return [float(b) for b in cfg.baselines]
        if cfg.input_space == "pixel":
            return [float(video.min()), float(video.max())]
        mean, std = model_space(model, video)
        x = (video - mean) / std  # the model's input; its extremes as constants there
        return [float(x.min()) * std + mean, float(x.max()) * std + mean]

    def pixel_attribution(self, model: VideoClassifier, video: Tensor, target: int) -> Tensor:
        """``float[T, H, W]`` IG map that XRAI ranks regions by (step 1 of the module docstring)."""
        cfg = self.config

        def reduce(attr: Tensor) -> Tensor:
            return (
                attr.amax(-1)
                if cfg.channel_reduction == "max"
                else reduce_channels(attr, cfg.channel_reduction)
            )

        attrs = [
            integrated_gradients(
                model,
                video,
                target,
                steps=cfg.steps,
                baseline=b,
                method=cfg.method,
                output=cfg.output,
                batch_size=cfg.internal_batch_size,
            )[0].cpu()
            for b in self.baseline_values(model, video)
        ]
        if cfg.normalize_each:
            return torch.stack([normalize_map(reduce(a), "percentile", cfg.percentile) for a in attrs]).mean(
                0
            )
        return reduce(torch.stack(attrs).mean(0))

    def attribute(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> tuple[Tensor, dict[str, Any]]:
        cfg = self.config
        pix = self.pixel_attribution(model, video, target)
        space = model_space(model, video) if cfg.input_space == "model" else None
        levels = slic_levels(slic_input(video, cfg.slic_input, space), cfg.levels, cfg)
        if cfg.nested:
            levels = nest(levels)
        values, added = xrai_greedy(pix, levels, cfg.min_pixel_diff, cfg.area_threshold)
        meta = {
            "pixel_attribution": pix,
            "level_labels": levels,
            "n_regions": [int(lab.max()) + 1 for lab in levels],
            "regions_added": added,
            "nested": cfg.nested,
        }
        return values, meta


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("xrai", XRAIConfig, XRAI)
