"""``blur_ig``: Blur Integrated Gradients (STEP journal, Sec. V-B, Eq. 27; Xu et al., CVPR 2020).

The path runs through per-frame Gaussian blurs of the clip, from ``g(X, sigma_max)`` (the
baseline) to ``X`` itself::

    BIG(X) = s * sum_{k=1..m} dPhi_c(g(X, s_k)) / dg  (.)  dg(X, s_k) / ds  *  sigma_max / m,
    s_k = (k - 1) sigma_max / m,   sigma_max = 50,   m = 50.

``g`` is a 2D Gaussian blur of every frame (:func:`gaussian_blur`); ``dg/ds`` is a forward
finite difference with step ``grad_step`` (0.01, as Xu et al.'s reference implementation and
the STEP authors' code). The sign ``s``: ``negate=False`` gives ``s = +1``, Eq. 27 as printed
and the STEP authors' code; ``negate=True`` (the plugin default) gives Xu et al.'s ``s = -1``:
the path is walked from the blurred baseline (large ``s_k``) towards ``X`` (``s_k = 0``), so
that ``sum(values) ~= Phi_c(X) - Phi_c(g(X, sigma_max))`` (completeness). After a ``|.|``
channel reduction (the ``blur_ig`` recipe) the sign does not matter.

The blur kernel has radius ``ceil(truncate * sigma)``. Frame borders: ``padding="reflect"``
(the plugin default, as :func:`removalx.video.filters.blur_frames` with ``truncate=3``), or
``"model_zero"``: constant padding with the value 0 of the model's normalised input, i.e.
the normalisation mean colour in pixel units (black when the classifier does not normalise)
-- the STEP authors' code blurs normalised frames with TorchRay's ``imsmooth`` (zero padding,
radius ``ceil(4 sigma)``), which the ``blur_ig`` recipe reproduces. Captum has no Blur IG.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import Attribution, Explainer, gaussian_kernel, hookimpl, separable_blur
from removalx_plugins.machinery.gradients import (
    InputMapConfig,
    finish_map,
    input_gradients,
    model_space,
    reduce_channels,
    require_differentiable,
)

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier


class BlurIGConfig(InputMapConfig):
    """Blur IG settings (Eq. 27)."""

    steps: int = Field(
        50, gt=0, description="m of Eq. 27 (journal: 50, as IG); at most 10,000", le=10_000, strict=True
    )
    max_sigma: float = Field(
        50.0, gt=0, description="sigma_max of Eq. 27 in pixels (journal: 50); at most 1000", le=1000
    )
    grad_step: float = Field(
        0.01, gt=0, description="finite-difference step for dg/dsigma (Xu et al.: 0.01); at most 10", le=10
    )
    negate: bool = Field(
        True, description="multiply by -1 as Xu et al. (completeness); false: Eq. 27 as printed (STEP code)"
    )
    truncate: float = Field(
        3.0,
        gt=0,
        description="blur kernel radius = ceil(truncate * sigma) (STEP code, TorchRay: 4); at most 100",
        le=100,
    )
    padding: Literal["reflect", "model_zero"] = Field(
        "reflect",
        description="frame borders: reflect, or model_zero: the model's normalisation mean (STEP code)",
    )


def gaussian_blur(video: Tensor, sigma: float, truncate: float = 3.0, fill: Tensor | None = None) -> Tensor:
    """Blur every frame of ``video`` (``[..., H, W, C]``) with a Gaussian of ``sigma`` px.

    Separable convolution with a normalised kernel of radius ``max(1, ceil(truncate sigma))``.
    ``fill=None``: reflect padding (replicate once the radius reaches the frame size), which
    is :func:`removalx.video.filters.blur_frames` for ``truncate=3``; otherwise constant padding
    with ``fill`` (one value per channel). ``sigma <= 0`` returns the input.
    """
    if sigma <= 0:
        return video
    lead = video.shape[:-3]
    h, w, c = (int(s) for s in video.shape[-3:])
    r = max(1, math.ceil(truncate * sigma))
    k = gaussian_kernel(sigma, r, video.device)
    x = video.reshape(-1, h, w, c)
    if fill is not None:
        x = x - fill
    x = x.permute(0, 3, 1, 2).reshape(-1, 1, h, w)
    # with fill, zero padding of (x - fill): constant padding with fill
    x = separable_blur(x, k, r, "reflect" if fill is None else "zeros")
    x = x.reshape(-1, c, h, w).permute(0, 2, 3, 1)
    if fill is not None:
        x = x + fill
    return x.reshape(*lead, h, w, c)


def blur_integrated_gradients(
    model: VideoClassifier, video: Tensor, target: int, cfg: BlurIGConfig
) -> Tensor:
    """``[T, H, W, C]`` Blur IG attribution (Eq. 27)."""
    m = cfg.steps
    sigmas = [k * cfg.max_sigma / m for k in range(m)]  # s_k = (k - 1) sigma_max / m, k = 1..m
    dsigma = cfg.max_sigma / m
    sign = -1.0 if cfg.negate else 1.0
    fill = model_space(model, video)[0].to(video.device) if cfg.padding == "model_zero" else None

    def blur(s: float) -> Tensor:
        return gaussian_blur(video, s, cfg.truncate, fill)

    def make(start: int, stop: int) -> Tensor:
        return torch.stack([blur(s) for s in sigmas[start:stop]])

    def reduce(grad: Tensor, x: Tensor, start: int) -> Tensor:
        s = sigmas[start : start + x.shape[0]]
        ahead = torch.stack([blur(si + cfg.grad_step) for si in s]).to(x.device)
        dg_ds = (ahead - x) / cfg.grad_step
        return sign * (grad * dg_ds).sum(0) * dsigma

    return input_gradients(model, make, m, target, cfg.output, cfg.internal_batch_size, reduce)


class BlurIG(Explainer):
    """Integrated gradients along the blur path (Eq. 27)."""

    def __init__(self, config: BlurIGConfig) -> None:
        self.config = config

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        require_differentiable(model, "blur_ig")
        cfg = self.config
        n0 = (model.n_forward, model.n_backward)
        attr = blur_integrated_gradients(model, video, target, cfg)
        values = reduce_channels(attr, cfg.channel_reduction)
        return finish_map(values, target, cfg, "blur_ig", model, n0, padding=cfg.padding, negate=cfg.negate)


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("blur_ig", BlurIGConfig, BlurIG)
