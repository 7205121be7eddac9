"""``blur_ig``: Blur Integrated Gradients (STEP journal, Sec. V-B, Eq. 27; Xu et al., CVPR 2020).

The path runs through per-frame Gaussian blurs of the clip, from ``g(X, sigma_max)`` (the
baseline) to ``X`` itself::

    BIG(X) = - sum_{k=1..m} dPhi_c(g(X, s_k)) / dg  (.)  dg(X, s_k) / ds  *  sigma_max / m,
    s_k = (k - 1) sigma_max / m,   sigma_max = 50,   m = 50.

``g`` is a 2D Gaussian blur of every frame (:func:`removalx.filters.blur_frames`); ``dg/ds``
is a forward finite difference with step ``grad_step`` (0.01, as Xu et al.'s reference
implementation). The leading minus, which Eq. 27 omits, is Xu et al.'s: the path is walked
from the blurred baseline (large ``s``) towards ``X`` (``s = 0``), so that
``sum(values) ~= Phi_c(X) - Phi_c(g(X, sigma_max))`` (completeness). Captum has no Blur IG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from pydantic import Field
from torch import Tensor

from removalx.filters import blur_frames
from removalx.gradients import (
    GradientConfig,
    finish,
    input_gradients,
    reduce_channels,
    require_differentiable,
)
from removalx.hookspecs import hookimpl
from removalx.stages import Explainer
from removalx.types import Attribution

if TYPE_CHECKING:
    from removalx.models import VideoClassifier


class BlurIGConfig(GradientConfig):
    """Blur IG settings (Eq. 27)."""

    steps: int = Field(50, gt=0, description="m of Eq. 27 (journal: 50, as IG)")
    max_sigma: float = Field(50.0, gt=0, description="sigma_max of Eq. 27 in pixels (journal: 50)")
    grad_step: float = Field(0.01, gt=0, description="finite-difference step for dg/dsigma (Xu et al.: 0.01)")


def blur_integrated_gradients(
    model: VideoClassifier, video: Tensor, target: int, cfg: BlurIGConfig
) -> Tensor:
    """``[T, H, W, C]`` Blur IG attribution (Eq. 27)."""
    m = cfg.steps
    sigmas = [k * cfg.max_sigma / m for k in range(m)]  # s_k = (k - 1) sigma_max / m, k = 1..m
    dsigma = cfg.max_sigma / m

    def make(start: int, stop: int) -> Tensor:
        return torch.stack([blur_frames(video, s) for s in sigmas[start:stop]])

    def reduce(grad: Tensor, x: Tensor, start: int) -> Tensor:
        s = sigmas[start : start + x.shape[0]]
        ahead = torch.stack([blur_frames(video, si + cfg.grad_step) for si in s])
        dg_ds = (ahead - x) / cfg.grad_step
        return -(grad * dg_ds).sum(0) * dsigma

    return input_gradients(model, make, m, target, cfg.output, cfg.internal_batch_size, reduce)


class BlurIG(Explainer):
    """Integrated gradients along the blur path (Eq. 27)."""

    def __init__(self, config: BlurIGConfig) -> None:
        self.config = config

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        require_differentiable(model, "blur_ig")
        n0 = (model.n_forward, model.n_backward)
        attr = blur_integrated_gradients(model, video, target, self.config)
        values = reduce_channels(attr, self.config.channel_reduction)
        return finish(values, target, self.config, "blur_ig", model, n0)


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("blur_ig", BlurIGConfig, BlurIG)
