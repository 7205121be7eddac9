"""``mask_mean``: RISE's importance, the mean model output over the masks that keep a pixel.

The summary of 3D RISE ("removal-based video explanations", Sec. 3.6, Table 2 "Mean when
included"), after Petsiuk et al.: ``S(p) = sum_i y_i m_i(p) / (N p_keep)``. Accumulated at
pixel level batch by batch (memory ``T x H x W``, independent of ``N``).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from removalx.errors import ConfigError
from removalx.hookspecs import hookimpl
from removalx.stages import PluginConfig, Summary
from removalx.types import FeatureSpace, SamplePlan


class MaskMeanConfig(PluginConfig):
    """Normalisation of the weighted mask sum."""

    normalize: str = Field(
        "p", description="'p': divide by N p_keep (RISE); 'coverage': divide by the sum of masks per pixel"
    )


class MaskMean(Summary):
    """``values = sum_i y_i keep_i / (N p)`` (or per-pixel coverage)."""

    needs_keep = True

    def __init__(self, config: MaskMeanConfig) -> None:
        if config.normalize not in ("p", "coverage"):
            raise ConfigError(
                f"mask_mean normalize must be 'p' or 'coverage', got {config.normalize!r}."
            )
        self.config = config
        self.meta: dict[str, float] = {}

    def begin(self, space: FeatureSpace, plan: SamplePlan, base: dict[str, float]) -> None:
        self.p = float(plan.meta.get("p", 0.0)) or None
        self.acc: Tensor | None = None
        self.cover: Tensor | None = None
        self.facc = torch.zeros(space.n_features, dtype=torch.float64)
        self.n = 0

    def update(self, z: Tensor, keep: Tensor | None, y: Tensor, weights: Tensor | None) -> None:
        assert keep is not None  # needs_keep guarantees it
        yk = torch.einsum("b,bthw->thw", y.float(), keep.float())
        cover = keep.float().sum(0)
        self.acc = yk if self.acc is None else self.acc + yk
        self.cover = cover if self.cover is None else self.cover + cover
        self.facc += (y.double()[:, None] * z.double()).sum(0).cpu()
        self.n += int(y.shape[0])

    def finalize(self, space: FeatureSpace) -> tuple[Tensor, Tensor]:
        assert self.acc is not None and self.cover is not None
        p = self.p if self.p is not None else float(self.cover.mean()) / self.n
        if self.config.normalize == "p":
            values = self.acc / (self.n * p)
        else:
            values = self.acc / self.cover.clamp_min(1e-12)
        self.meta = {"p_keep": p}
        return values, (self.facc / (self.n * p)).float()


@hookimpl
def removalx_register_summaries(registry):  # type: ignore[no-untyped-def]
    registry.add("mask_mean", MaskMeanConfig, MaskMean)
