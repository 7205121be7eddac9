"""``aosa_map``: the AOSA saliency map, mask-weighted score changes normalised by coverage.

AOSA (Uchiyama et al.), Sec. 3.2, Eq. 2 weights each (integrated) occlusion mask by the
model's score on the occluded clip; following Sec. 3.5.1 (Eq. 5) the weight used here is
the score *change* ``S_m = f(x) - f(occluded)``, and the weighted sum is normalised by how
often each pixel was occluded:

``S(p) = sum_i (f(x) - y_i) (1 - keep_i(p)) / sum_i (1 - keep_i(p))``

(0 where no sample occluded ``p``). ``normalize: n`` divides by the number of samples
instead (Eq. 2's ``1/N``). Streaming: one ``T x H x W`` accumulator and ``F`` per-feature
sums, independent of the number of samples.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.hookspecs import hookimpl
from removalx.stages import PluginConfig, Summary
from removalx.types import FeatureSpace, SamplePlan

__all__ = ["AosaMap", "AosaMapConfig"]


class AosaMapConfig(PluginConfig):
    """Normalisation of the mask-weighted sum."""

    normalize: Literal["coverage", "n"] = Field(
        "coverage", description="'coverage': divide by the occlusion count per pixel; 'n': by N (Eq. 2)"
    )


class AosaMap(Summary):
    """``S(p) = sum_i d_i m_i(p) / sum_i m_i(p)`` with ``d_i = f(x) - y_i``, ``m_i = 1 - keep_i``."""

    requires = ("full",)
    needs_keep = True

    def __init__(self, config: AosaMapConfig) -> None:
        self.config = config

    def begin(self, space: FeatureSpace, plan: SamplePlan, base: dict[str, float]) -> None:
        self.ref = float(base["full"])
        self.acc: Tensor | None = None
        self.cover: Tensor | None = None
        self.facc = torch.zeros(space.n_features, dtype=torch.float64)
        self.fcnt = torch.zeros(space.n_features, dtype=torch.float64)
        self.n = 0

    def update(self, z: Tensor, keep: Tensor | None, y: Tensor, weights: Tensor | None) -> None:
        assert keep is not None  # needs_keep guarantees it
        d = self.ref - y.float()
        occ = 1.0 - keep.float()
        acc = torch.einsum("b,bthw->thw", d, occ)
        cover = occ.sum(0)
        self.acc = acc if self.acc is None else self.acc + acc
        self.cover = cover if self.cover is None else self.cover + cover
        removed = 1.0 - z.double().cpu()
        self.facc += removed.T @ d.double().cpu()
        self.fcnt += removed.sum(0)
        self.n += int(y.shape[0])

    def finalize(self, space: FeatureSpace) -> tuple[Tensor, Tensor]:
        assert self.acc is not None and self.cover is not None
        if self.config.normalize == "coverage":
            values = torch.where(self.cover > 0, self.acc / self.cover.clamp_min(1e-12), torch.zeros_like(self.acc))
            fv = torch.where(self.fcnt > 0, self.facc / self.fcnt.clamp_min(1e-12), torch.zeros_like(self.facc))
        else:
            values = self.acc / max(self.n, 1)
            fv = self.facc / max(self.n, 1)
        return values, fv.float()


@hookimpl
def removalx_register_summaries(registry):  # type: ignore[no-untyped-def]
    registry.add("aosa_map", AosaMapConfig, AosaMap)
