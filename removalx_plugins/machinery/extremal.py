"""Extremal-perturbation machinery shared by ``step`` and ``ep3d``.

STEP (Li et al., "Spatio-Temporal Perturbations for Video Attribution", journal Sec. III) and
EP-3D (the WACV version, Sec. 3) extend Fong et al.'s extremal perturbations (ICCV 2019,
reference implementation TorchRay) to clips. This module holds, once:

* :class:`SmoothMaxUpsampler` -- low-resolution seed masks ``Mbar`` (one per frame, ``H = 7 Hbar``)
  upsampled with Fong et al.'s smooth-max kernel (journal Sec. V-A.3);
* :func:`gaussian_blur` -- the per-frame Gaussian ``k *`` of Eq. 2 (radius ``ceil(4 sigma)``,
  zero padding, as TorchRay's ``imsmooth`` that the STEP authors' code calls);
* :class:`BlurPyramid` -- the blur perturbation of Eq. 2, ``M (.) X + (1 - M) (.) (k * X)``,
  implemented as in TorchRay by interpolating a per-frame blur pyramid with the mask value;
* :func:`area_loss` -- ``L_S^v`` of Eq. 6 on sorted mask values (mean instead of sum: the
  ``1 / |M|`` is absorbed in lambda);
* :func:`ellipsoid_kernel`, :func:`kernel_beta`, :func:`smoothness_loss` -- ``L_K`` of Eq. 7-10;
* :func:`eccvw_kernel`, :func:`eccvw_shape_loss` -- the ECCV-W study's shape loss
  ``(max(M * K) - sum K)^2`` with a binary ellipsoid ``K`` (ECCV-W Eq. 8-9), an option of
  every extremal explainer (``eccvw_weight > 0``);
* :func:`lambda_schedule` -- ``lambda_1`` and ``lambda_2`` of Eq. 11 at every iteration;
* :class:`ExtremalConfig` and :func:`extremal_perturbation` -- the optimisation of Eq. 11
  (Eq. 5 when there is no ``L_K``) over several areas at once, and the final heat map (sum of
  the area masks blurred per frame with sigma = 10 px, Sec. V-A.3).

The journal gives the losses but not the optimiser; the defaults of :class:`ExtremalConfig`
are the STEP authors' released settings (SGD, learning rate 0.05, momentum 0.9, 1200
iterations, ``lambda_1 = 300 x 1.0008668^i``, ``lambda_2`` 0 up to iteration 100 then 300).
TorchRay's settings (800 iterations, learning rate 0.01, ``lambda_1 = 300 x 1.0035^i``) are the
``step_torchray`` recipe.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor

from removalx.plugin import Attribution, ConfigError, PluginConfig, gaussian_kernel, separable_blur
from removalx_plugins.machinery.gradients import require_differentiable

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier
    from removalx_plugins.machinery.min_ratio import MinRatio

__all__ = [
    "BlurPyramid",
    "ExtremalConfig",
    "SmoothMaxUpsampler",
    "area_loss",
    "eccvw_kernel",
    "eccvw_shape_loss",
    "ellipsoid_kernel",
    "extremal_perturbation",
    "frame_area_loss",
    "gaussian_blur",
    "kernel_beta",
    "lambda_schedule",
    "smoothness_loss",
]


# -- mask parameterisation -----------------------------------------------------------------
class SmoothMaxUpsampler:
    """Fong et al.'s smooth mask: ``m(u) = smax_i k(|u - u_i| / sigma) mbar_i`` per frame.

    Seed points ``u_i`` lie on a grid of stride ``step`` (cell centres) covering the frame;
    ``k(z) = exp(-2 max(z - 1/2, 0)^2)`` is TorchRay's flat-top kernel and
    ``smax_i(v_i) = sum_i v_i softmax(c v)_i`` the smooth max with coldness ``c`` (TorchRay: 20;
    ``c = inf`` is the hard max). Only seeds within ``1 + ceil(sigma / step)`` cells (a disc)
    enter each pixel's smooth max, as in TorchRay's window.

    Parameters
    ----------
    shape : (int, int)
        Output ``(H, W)``.
    step : int
        Seed stride in pixels (journal: ``H = 7 Hbar``).
    sigma : float
        Kernel radius in pixels (TorchRay: 21 = 3 x step).
    coldness : float
        Smooth-max coldness ``c``.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        step: int,
        sigma: float,
        coldness: float = 20.0,
        device: torch.device | str | None = None,
    ) -> None:
        h, w = shape
        self.shape = (h, w)
        self.seed_shape = (math.ceil(h / step), math.ceil(w / step))
        self.coldness = coldness
        sh, sw = self.seed_shape
        r = 1 + math.ceil(sigma / step)
        offs = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= r * r]
        uy = torch.arange(h, dtype=torch.float32)
        ux = torch.arange(w, dtype=torch.float32)
        cy = torch.div(torch.arange(h), step, rounding_mode="floor")
        cx = torch.div(torch.arange(w), step, rounding_mode="floor")
        idx, wts, valid = [], [], []
        for dy, dx in offs:
            iy = (cy + dy)[:, None].expand(h, w)
            ix = (cx + dx)[None, :].expand(h, w)
            ok = (iy >= 0) & (iy < sh) & (ix >= 0) & (ix < sw)
            py = (iy.float() + 0.5) * step - 0.5
            px = (ix.float() + 0.5) * step - 0.5
            d = torch.sqrt((uy[:, None] - py) ** 2 + (ux[None, :] - px) ** 2) / sigma
            wts.append(torch.exp(-2 * (d - 0.5).clamp_min(0) ** 2))
            idx.append(iy.clamp(0, sh - 1) * sw + ix.clamp(0, sw - 1))
            valid.append(ok)
        # [HW, K]
        self.index = torch.stack(idx, -1).reshape(h * w, -1).to(device)
        self.weight = (torch.stack(wts, -1) * torch.stack(valid, -1)).reshape(h * w, -1).to(device)
        self.invalid = ~torch.stack(valid, -1).reshape(h * w, -1).to(device)

    def to(self, device: torch.device | str) -> SmoothMaxUpsampler:
        self.index, self.weight, self.invalid = (
            t.to(device) for t in (self.index, self.weight, self.invalid)
        )
        return self

    def __call__(self, seed: Tensor) -> Tensor:
        """``seed float[..., hbar, wbar] -> mask float[..., H, W]`` in [0, 1]."""
        lead = seed.shape[:-2]
        flat = seed.reshape(-1, seed.shape[-2] * seed.shape[-1])
        if math.isinf(self.coldness):
            v = flat[:, self.index] * self.weight  # [N, HW, K]
            m = v.masked_fill(self.invalid, float("-inf")).amax(-1)
        else:
            m = _SmoothMax.apply(flat, self.index, self.weight, self.invalid, self.coldness)
        return m.clamp(0, 1).reshape(*lead, *self.shape)


class _SmoothMax(torch.autograd.Function):
    """Fused ``m_p = sum_k v_pk softmax(c v_p)_k`` with ``v_pk = seed[idx_pk] w_pk``.

    Same values as the unfused autograd graph, about half the passes over the ``[N, HW, K]``
    tensor: the backward uses ``dm/dv_k = p_k (1 + c (v_k - m))`` and one ``index_add``.
    Invalid neighbours (outside the seed grid) read a padding seed of ``-1e4`` with weight 1,
    so their softmax weight is exactly 0.
    """

    @staticmethod
    def forward(ctx, seed, index, weight, invalid, coldness):  # type: ignore[no-untyped-def,override]
        n, s = seed.shape
        pad = torch.cat([seed, seed.new_full((n, 1), -1e4)], 1)
        idx = index.masked_fill(invalid, s)
        w = weight.masked_fill(invalid, 1.0)
        v = pad.index_select(1, idx.reshape(-1)).view(n, *idx.shape).mul_(w)  # [N, P, K]
        p = torch.softmax(v * coldness, dim=-1)
        m = (v * p).sum(-1)
        ctx.save_for_backward(v, p, m, idx, w)
        ctx.coldness = coldness
        ctx.n_seed = s
        return m

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def,override]
        v, p, m, idx, w = ctx.saved_tensors
        gv = (v - m.unsqueeze(-1)).mul_(ctx.coldness).add_(1.0).mul_(p).mul_(w).mul_(grad.unsqueeze(-1))
        n = v.shape[0]
        out = grad.new_zeros(n, ctx.n_seed + 1)
        out.index_add_(1, idx.reshape(-1), gv.reshape(n, -1))
        return out[:, : ctx.n_seed], None, None, None, None


# -- perturbation ----------------------------------------------------------------------------
BlurPadding = Literal["zeros", "replicate", "reflect"]


def gaussian_blur(video: Tensor, sigma: float, padding: BlurPadding = "zeros") -> Tensor:
    """Blur every frame of ``video`` (``[..., H, W, C]``) with a Gaussian of ``sigma`` px.

    Separable, kernel ``exp(-x^2 / (2 sigma^2))`` on ``x = -r .. r``, ``r = ceil(4 sigma)``,
    normalised to sum 1 (TorchRay's ``imsmooth``). ``padding``: ``"zeros"`` (TorchRay, hence
    the STEP authors' blur pyramid), ``"replicate"`` (scikit-image's ``gaussian``, which the
    STEP authors apply to the summed masks) or ``"reflect"``. ``sigma <= 0`` returns the input.
    """
    if sigma <= 0:
        return video
    lead, (h, w, c) = video.shape[:-3], video.shape[-3:]
    r = math.ceil(4 * sigma)
    k = gaussian_kernel(sigma, r, video.device).to(video.dtype)
    x = video.reshape(-1, h, w, c).permute(0, 3, 1, 2).reshape(-1, 1, h, w)
    x = separable_blur(x, k, r, padding)
    return x.reshape(-1, c, h, w).permute(0, 2, 3, 1).reshape(*lead, h, w, c)


class BlurPyramid:
    """Blur perturbation of Eq. 2 via a per-frame blur pyramid (TorchRay's ``Perturbation``).

    Level ``l = 0 .. L-1`` is the clip blurred per frame (:func:`gaussian_blur`) with
    ``sigma_l = (1 - l / (L-1)) max_blur``; a mask value ``m`` picks level ``m (L - 1)``,
    interpolating linearly between the two nearest levels, so ``m = 1`` keeps the pixel and
    ``m = 0`` blurs it with ``max_blur``.
    """

    def __init__(
        self, video: Tensor, levels: int = 8, max_blur: float = 20.0, padding: BlurPadding = "zeros"
    ) -> None:
        if levels < 2:
            raise ConfigError(f"the blur pyramid needs at least 2 levels, got {levels}.", "Set levels >= 2.")
        self.levels = levels
        sig = [(1 - i / (levels - 1)) * max_blur for i in range(levels)]
        pyr = torch.stack([gaussian_blur(video, s, padding) for s in sig])  # [L, T, H, W, C]
        self.shape = tuple(video.shape)
        self.pyramid = pyr.reshape(levels, -1, video.shape[-1])  # [L, P, C]
        self._pos = torch.arange(self.pyramid.shape[1], device=video.device)

    def __call__(self, mask: Tensor) -> Tensor:
        """``mask float[N, T, H, W] -> clips float[N, T, H, W, C]``."""
        n = mask.shape[0]
        w = mask.reshape(n, -1) * (self.levels - 1)
        k = w.detach().floor().clamp(0, self.levels - 2).long()
        frac = (w - k).unsqueeze(-1)
        y0 = self.pyramid[k, self._pos]
        y1 = self.pyramid[k + 1, self._pos]
        return (y0 + frac * (y1 - y0)).reshape(n, *self.shape)


# -- losses -----------------------------------------------------------------------------------
def area_loss(mask: Tensor, areas: Sequence[float] | Tensor) -> Tensor:
    """``L_S^v`` of Eq. 6 for each row: mean of ``(vecsort(M) - r_v)^2``.

    Parameters
    ----------
    mask : Tensor
        ``float[A, ...]``, one mask per area.
    areas : sequence of float
        ``v`` per row; the template ``r_v`` has ``round(v |M|)`` ones then zeros.

    Returns
    -------
    Tensor
        ``float[A]``.
    """
    flat = mask.reshape(mask.shape[0], -1)
    n = flat.shape[1]
    srt = flat.sort(dim=1, descending=True).values
    ref = torch.zeros_like(srt)
    for i, v in enumerate(torch.as_tensor(areas, dtype=torch.float64).tolist()):
        ref[i, : round(v * n)] = 1.0
    return ((srt - ref) ** 2).mean(dim=1)


def ellipsoid_kernel(size: Sequence[int]) -> Tensor:
    """The normalised 3D ellipsoid ``K`` of Eq. 9-10, ``float[T_K, H_K, W_K]`` summing to 1.

    ``k[t,i,j] = 1`` iff ``(2t/(T_K-1) - 1)^2 + (2i/(H_K-1) - 1)^2 + (2j/(W_K-1) - 1)^2 <= 1``
    (an axis of length 1 contributes 0), then ``K = k / sum(k)``.
    """
    axes = []
    for n in size:
        c = torch.arange(n, dtype=torch.float64)
        axes.append((2 * c / (n - 1) - 1) ** 2 if n > 1 else torch.zeros(1, dtype=torch.float64))
    d = axes[0][:, None, None] + axes[1][None, :, None] + axes[2][None, None, :]
    k = (d <= 1 + 1e-12).double()
    return (k / k.sum()).float()


def kernel_beta(shape: Sequence[int], kernel_size: Sequence[int]) -> float:
    """``beta = THW / ((T + T_K - 1)(H + H_K - 1)(W + W_K - 1))`` of Eq. 8."""
    t, h, w = shape
    tk, hk, wk = kernel_size
    return t * h * w / ((t + tk - 1) * (h + hk - 1) * (w + wk - 1))


def effective_kernel_size(shape: Sequence[int], kernel_size: Sequence[int]) -> tuple[int, int, int]:
    """The kernel size used on a clip of ``shape``: each side clipped to the clip's side."""
    return tuple(max(1, min(int(k), int(s))) for k, s in zip(kernel_size, shape))  # type: ignore[return-value]


def smoothness_loss(
    mask: Tensor, areas: Sequence[float], kernel: Tensor, stride: Sequence[int], beta: float
) -> Tensor:
    """``L_K^v(M) = L_S^{beta v}(M * K)`` of Eq. 7 (3D convolution with stride, no padding).

    Parameters
    ----------
    mask : Tensor
        ``float[A, T, H, W]``.
    areas : sequence of float
        ``v`` per mask.
    kernel : Tensor
        ``float[T_K, H_K, W_K]`` (:func:`ellipsoid_kernel`).
    stride : (int, int, int)
        Convolution stride (journal: 1 in time, 11 in space).
    beta : float
        Eq. 8.

    Returns
    -------
    Tensor
        ``float[A]``.
    """
    conv = F.conv3d(mask.unsqueeze(1), kernel[None, None].to(mask), stride=tuple(stride))
    return area_loss(conv.reshape(mask.shape[0], -1), [beta * v for v in areas])


def eccvw_kernel(size: Sequence[int], radius: float = 0.5) -> Tensor:
    """The binary kernel ``K`` of ECCV-W Eq. 9, ``float[T_K+1, H_K+1, W_K+1]`` of 0 and 1.

    ``K[t,i,j] = 1`` iff ``sqrt((i/H_K - 0.5)^2 + (j/W_K - 0.5)^2 + (t/T_K - 0.5)^2) <= radius``;
    an axis of one element (``H_K = 0``) contributes 0. Eq. 9 prints ``radius = 1``, which
    no position exceeds (each term is at most 0.25), so the printed kernel is the full box;
    ``radius = 0.5`` is the ellipsoid inscribed in the box that the text names.
    """
    axes = []
    for n in size:
        c = torch.arange(n, dtype=torch.float64)
        axes.append((c / (n - 1) - 0.5) ** 2 if n > 1 else torch.zeros(1, dtype=torch.float64))
    d = axes[0][:, None, None] + axes[1][None, :, None] + axes[2][None, None, :]
    return (d.sqrt() <= radius + 1e-12).float()


def eccvw_shape_loss(mask: Tensor, kernel: Tensor) -> Tensor:
    """``L_K(M) = (max(M * K) - sum K)^2`` of ECCV-W Eq. 8 for each row, ``float[A]``.

    ``M * K`` is the 3D convolution of ``mask`` (``float[A, T, H, W]``) with the binary
    ``kernel`` (:func:`eccvw_kernel`; symmetric, so convolution and correlation agree), stride
    1 and no padding; the max runs over every position of each row. The loss is 0 when some
    window of ``K``'s shape is entirely kept, and pulls the best window towards that.
    """
    conv = F.conv3d(mask.unsqueeze(1), kernel[None, None].to(mask))
    peak = conv.reshape(mask.shape[0], -1).amax(dim=1)
    return (peak - kernel.sum().to(mask)) ** 2


# -- the optimisation -------------------------------------------------------------------------
#: A kernel side, bounded at validation.
_KSide = Annotated[int, Field(ge=1, le=4096, strict=True)]

Reward = Literal["probability", "logit", "log_probability"]


class ExtremalConfig(PluginConfig):
    """Settings shared by ``ep3d`` and ``step`` (EP-3D = STEP without ``L_K``).

    Defaults follow the journal (Sec. III, V-A.3) where it gives them and the STEP authors'
    released code elsewhere (the journal names no optimiser). The ``step_torchray`` recipe
    sets TorchRay's optimiser instead (800 iterations, learning rate 0.01, growth 1.0035,
    sigma 21).
    """

    areas: tuple[float, ...] = Field(
        (0.05, 0.10, 0.15, 0.20),
        description="preservation ratios v of Eq. 3/5, optimised as one batch (journal Sec. V-A.3)",
    )
    iterations: int = Field(
        1200,
        gt=0,
        description="SGD iterations for Eq. 5/11 (authors: 1200; TorchRay: 800); at most 100,000",
        le=100_000,
        strict=True,
    )
    learning_rate: float = Field(
        0.05, gt=0, description="SGD step size (authors: 0.05; TorchRay: 0.01); at most 1000", le=1000
    )
    momentum: float = Field(
        0.9, ge=0, lt=1, description="SGD momentum and dampening (authors and TorchRay: 0.9)"
    )
    lambda1: float = Field(
        300.0,
        gt=0,
        description="lambda_1 at iteration 0, weight of the area loss L_S (Eq. 5/11; 300); at most 1e9",
        le=1e9,
    )
    lambda_growth: float = Field(
        1.0008668,
        ge=1,
        description="lambda_1 at iteration i is lambda1 x lambda_growth^i (authors: 1.0008668; TorchRay: 1.0035); at most 10",
        le=10,
    )
    step: int = Field(
        7,
        gt=0,
        description="seed-mask stride: H = 7 Hbar, W = 7 Wbar (journal Sec. V-A.3); at most 4096",
        le=4096,
        strict=True,
    )
    sigma: float = Field(
        11.0,
        gt=0,
        description="smooth-max kernel radius in px (authors: 11 on 112-px clips; TorchRay: 21); at most 1000",
        le=1000,
    )
    coldness: float = Field(
        20.0, gt=0, description="smooth-max coldness (authors and TorchRay: 20); at most 10,000", le=10_000
    )
    levels: int = Field(
        8,
        ge=2,
        description="levels of the per-frame blur pyramid of Eq. 2 (8); at most 64",
        le=64,
        strict=True,
    )
    max_blur: float = Field(
        20.0, gt=0, description="sigma in px of the blur k of Eq. 2 (20); at most 1000", le=1000
    )
    blur_padding: BlurPadding = Field(
        "zeros",
        description="frame border of the blur k of Eq. 2: zeros (TorchRay imsmooth), replicate, reflect",
    )
    reward: Reward = Field(
        "probability",
        description="Phi_c of Eq. 1/11: softmax probability (journal), the logit, or log-probability "
        "(the authors' code minimises -log Phi_c)",
    )
    init: Literal["ones", "uniform"] = Field(
        "ones", description="seed-mask init: all ones (authors, TorchRay) or U(0,1) from the recipe generator"
    )
    jitter: bool = Field(
        False, description="flip frames horizontally every other iteration (TorchRay; not in STEP)"
    )
    smooth_sigma: float = Field(
        10.0,
        ge=0,
        description="per-frame Gaussian sigma (px) on the summed masks (journal Sec. V-A.3: 10); at most 1000",
        le=1000,
    )
    area_scope: Literal["clip", "frame"] = Field(
        "clip",
        description="where the preservation ratio v is imposed: clip (EP-3D, journal Eq. 6) or every frame "
        "separately (EP-3D-Evenly, WACV Eq. 10-11; ECCV-W extremal perturbation sync./unsync.)",
    )
    temporal_smoothing: int = Field(
        0,
        ge=0,
        le=64,
        description="Delta t of the temporal Gaussian smoothing of WACV Eq. 12 / ECCV-W Eq. 7, "
        "k(u) = exp(-u^2 / (0.6 Delta t)), inside the optimisation; 0 = off (the plain method)",
        strict=True,
    )
    temporal_smoothing_on: Literal["seed", "mask"] = Field(
        "seed",
        description="what is smoothed in time: the seed masks before upsampling (WACV Sec. 4.4) or the "
        "upsampled masks",
    )
    phi0: float = Field(
        1.0,
        gt=0,
        description="probability bound Phi_0 of Eq. 4 (v* = smallest area whose mask reaches it); "
        "with phi0_relative, a share of Phi_c of the clean clip; at most 1e6",
        le=1_000_000,
    )
    phi0_relative: bool = Field(
        True,
        description="Phi_0 = phi0 x Phi_c(clean clip) (WACV Sec. 4.2: 'without decreasing the output "
        "probabilities'); false: phi0 is the reward itself",
    )
    final: Literal["sum", "min_ratio"] = Field(
        "sum",
        description="heat map: sum of the area masks blurred (journal Sec. V-A.3) or the mask at v* of "
        "Eq. 4 (journal Sec. III-A: 'M_v* is taken as the final solution')",
    )
    eccvw_weight: float = Field(
        0.0,
        ge=0,
        le=1e9,
        description="weight w of the ECCV-W shape loss (Eq. 8), added as w L_K / (sum K)^2 to every "
        "iteration's energy; 0 = off (the paper gives no weight); at most 1e9",
    )
    eccvw_kernel: tuple[_KSide, _KSide, _KSide] = Field(
        (8, 11, 11),
        description="each in [1, 4096]; (T_K+1, H_K+1, W_K+1) of the ECCV-W kernel of Eq. 9 (the paper gives "
        "no size: the journal's T_K = 8 and 11 px), clipped to the clip",
    )
    eccvw_radius: float = Field(
        0.5,
        gt=0,
        le=2,
        description="threshold of ECCV-W Eq. 9: 0.5 = the inscribed ellipsoid; 1 = the printed value, "
        "which keeps the whole box",
    )

    @field_validator("areas")
    @classmethod
    def _areas_in_range(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(not 0 < a <= 1 for a in v):
            raise ValueError("areas must be a non-empty list of preservation ratios in (0, 1]")
        return v


def lambda_schedule(
    iteration: int,
    lambda1: float,
    growth: float,
    lambda2: float = 0.0,
    lambda2_start: int = 0,
    lambda2_grows: bool = False,
) -> tuple[float, float]:
    """``(lambda_1, lambda_2)`` of Eq. 11 at ``iteration`` (0-based).

    ``lambda_1 = lambda1 x growth^i``. ``lambda_2 = 0`` for ``i < lambda2_start`` ("much
    smaller than lambda_1 in the first few iterations", Sec. III-B), then ``lambda2``
    (``x growth^i`` if ``lambda2_grows``). The STEP authors' code: 300 x 1.0008668^i and
    ``lambda_2`` = 0 up to iteration 100, then 300.
    """
    lam1 = lambda1 * growth**iteration
    if iteration < lambda2_start:
        return lam1, 0.0
    return lam1, lambda2 * (growth**iteration if lambda2_grows else 1.0)


def _reward(logits: Tensor, target: int, kind: str) -> Tensor:
    """``float[A]`` reward ``Phi_c`` of each perturbed clip."""
    if kind == "probability":
        return torch.softmax(logits, 1)[:, target]
    if kind == "log_probability":
        return torch.log_softmax(logits, 1)[:, target]
    return logits[:, target]


def frame_area_loss(mask: Tensor, areas: Sequence[float]) -> Tensor:
    """``L_S^v`` imposed on every frame (WACV Eq. 10-11): ``float[A, T]``.

    Each frame's sorted values are matched to the template ``r_v`` of ``round(v H W)`` ones
    then zeros (:func:`area_loss` per frame); the energy sums (or averages) over frames.
    """
    a, t = mask.shape[:2]
    per = area_loss(mask.reshape(a * t, -1), [v for v in areas for _ in range(t)])
    return per.reshape(a, t)


def _one_frame_masks(mask: Tensor) -> Tensor:
    """``[A, T, H, W] -> [A, T, T, H, W]``: row ``(a, t)`` keeps frame ``t``'s mask, the others 0."""
    t = mask.shape[1]
    eye = torch.eye(t, dtype=mask.dtype, device=mask.device)
    return mask.unsqueeze(1) * eye[None, :, :, None, None]


def _check_unsync(cfg: ExtremalConfig, unsync: bool) -> None:
    if unsync and cfg.eccvw_weight > 0:
        raise ConfigError(
            "Unsynchronous extremal perturbation optimises each frame alone, but the ECCV-W shape loss "
            f"(eccvw_weight {cfg.eccvw_weight:g}) couples the frames of a mask.",
            "Set explainer.eccvw_weight=0, or use the synchronous variant (sync: true).",
        )
    if unsync and (cfg.area_scope != "frame" or cfg.temporal_smoothing > 0):
        raise ConfigError(
            "Unsynchronous extremal perturbation optimises each frame alone: it needs area_scope 'frame' "
            f"and no temporal smoothing (got area_scope {cfg.area_scope!r}, "
            f"temporal_smoothing {cfg.temporal_smoothing}).",
            "Set explainer.area_scope=frame and explainer.temporal_smoothing=0, or use sync.",
        )


def _initial_seeds(
    cfg: ExtremalConfig, a: int, t: int, seed_shape: tuple[int, int], generator: torch.Generator, device: Any
) -> Tensor:
    """The seed masks ``Mbar`` to optimise, ``float[A, T, hbar, wbar]`` (``cfg.init``)."""
    sh, sw = seed_shape
    if cfg.init == "uniform":
        seed0 = torch.rand(a, t, sh, sw, generator=generator)
    else:
        seed0 = torch.ones(a, t, sh, sw)
    return seed0.to(device).requires_grad_(True)


@dataclass
class _SmoothnessTerm:
    """``lambda_2 L_K`` of Eq. 11 on clips of one shape; ``kernel`` None: no ``L_K`` (Eq. 5)."""

    kernel: Tensor | None
    beta: float
    size: tuple[int, int, int] | None
    stride: Sequence[int]
    lambda2: float
    lambda2_start: int
    lambda2_grows: bool

    @classmethod
    def build(
        cls,
        shape: tuple[int, int, int],
        kernel_size: Sequence[int] | None,
        stride: Sequence[int],
        lambda2: float,
        lambda2_start: int,
        lambda2_grows: bool,
        device: Any,
    ) -> _SmoothnessTerm:
        kernel, beta, ks = None, 1.0, None
        if kernel_size is not None:
            ks = effective_kernel_size(shape, kernel_size)
            kernel = ellipsoid_kernel(ks).to(device)
            beta = kernel_beta(shape, ks)
        return cls(kernel, beta, ks, stride, lambda2, lambda2_start, lambda2_grows)

    def weights(self, iteration: int, cfg: ExtremalConfig) -> tuple[float, float]:
        """``(lambda_1, lambda_2)`` at ``iteration`` (:func:`lambda_schedule`)."""
        return lambda_schedule(
            iteration, cfg.lambda1, cfg.lambda_growth, self.lambda2, self.lambda2_start, self.lambda2_grows
        )

    def loss(self, mask: Tensor, areas: Sequence[float]) -> Tensor:
        assert self.kernel is not None
        return smoothness_loss(mask, areas, self.kernel, self.stride, self.beta)


@dataclass
class _History:
    """Per-iteration records of the optimisation (``meta["*_history"]``)."""

    losses: list[Tensor] = field(default_factory=list)
    rewards: list[Tensor] = field(default_factory=list)
    lam1s: list[float] = field(default_factory=list)
    lam2s: list[float] = field(default_factory=list)

    def record(self, total: Tensor, score: Tensor, lam1: float, lam2: float) -> None:
        self.losses.append(total.detach())  # kept on the device: no sync per iteration
        self.rewards.append(score.detach().mean())
        self.lam1s.append(lam1)
        self.lam2s.append(lam2)

    def meta(self) -> dict[str, Any]:
        return {
            "loss_history": torch.stack(self.losses).cpu().tolist() if self.losses else [],
            "reward_history": torch.stack(self.rewards).cpu().tolist() if self.rewards else [],
            "lambda1_history": self.lam1s,
            "lambda2_history": self.lam2s,
        }


@dataclass
class _Solution:
    """The optimised masks and what Eq. 4 makes of them."""

    mask: Tensor
    values: Tensor
    area_rewards: list[float]
    clean_reward: float
    eq4: MinRatio


class _ExtremalRun:
    """One optimisation of Eq. 11 on one clip: mask parameterisation, perturbation, energy."""

    def __init__(
        self,
        model: VideoClassifier,
        video: Tensor,
        target: int,
        cfg: ExtremalConfig,
        generator: torch.Generator,
        unsync: bool,
    ) -> None:
        self.model, self.target, self.cfg, self.unsync = model, target, cfg, unsync
        self.device = device = model.device
        self.video = video = video.to(device, torch.float32)
        self.t, self.h, self.w, _ = (int(s) for s in video.shape)
        self.a = len(cfg.areas)
        self.up = SmoothMaxUpsampler((self.h, self.w), cfg.step, cfg.sigma, cfg.coldness, device=device)
        self.pyramid = BlurPyramid(video, cfg.levels, cfg.max_blur, cfg.blur_padding)
        self.seed = _initial_seeds(cfg, self.a, self.t, self.up.seed_shape, generator, device)
        self.areas = list(cfg.areas)
        self.shape_kernel: Tensor | None = None
        if cfg.eccvw_weight > 0:
            size = effective_kernel_size((self.t, self.h, self.w), cfg.eccvw_kernel)
            self.shape_kernel = eccvw_kernel(size, cfg.eccvw_radius).to(device)

    def make_mask(self, s: Tensor) -> Tensor:
        """Seeds ``float[A, T, hbar, wbar]`` -> masks ``float[A, T, H, W]`` (with WACV Eq. 12)."""
        from removalx_plugins.machinery.temporal_smoothing import temporal_smooth

        dt = self.cfg.temporal_smoothing
        if dt and self.cfg.temporal_smoothing_on == "seed":
            return self.up(temporal_smooth(s, dt, dim=1))
        m = self.up(s)
        return temporal_smooth(m, dt, dim=1) if dt else m

    def one_frame_clips(self, mask: Tensor) -> Tensor:
        """The unsync batch: one clip per (area, frame), every other frame fully blurred."""
        return self.pyramid(_one_frame_masks(mask).reshape(self.a * self.t, self.t, self.h, self.w))

    def reward(self, clips: Tensor) -> Tensor:
        return _reward(self.model(clips), self.target, self.cfg.reward)

    def energy(self, mask: Tensor, score: Tensor, lam1: float, lam2: float, lk: _SmoothnessTerm) -> Tensor:
        """One energy per batch row: ``lambda_1 L_S + lambda_2 L_K - Phi_c``."""
        if self.unsync:  # one energy per (area, frame): lambda_1 L_S of that frame - Phi_c of its clip
            energy = lam1 * frame_area_loss(mask, self.areas).reshape(-1) - score
        elif self.cfg.area_scope == "frame":
            energy = lam1 * frame_area_loss(mask, self.areas).mean(1) - score
        else:
            energy = lam1 * area_loss(mask, self.areas) - score
        if lk.kernel is not None and lam2 > 0:
            energy = energy + lam2 * lk.loss(mask, self.areas)
        if self.shape_kernel is not None:  # ECCV-W Eq. 8, weight relative to (sum K)^2
            norm = float(self.shape_kernel.sum()) ** 2
            energy = energy + self.cfg.eccvw_weight / norm * eccvw_shape_loss(mask, self.shape_kernel)
        return energy

    def optimise(self, lk: _SmoothnessTerm) -> _History:
        """``cfg.iterations`` SGD steps on the seeds, clamped to [0, 1] after each step."""
        cfg, seed = self.cfg, self.seed
        opt = torch.optim.SGD([seed], lr=cfg.learning_rate, momentum=cfg.momentum, dampening=cfg.momentum)
        rows = self.a * self.t if self.unsync else self.a
        history = _History()
        for it in range(cfg.iterations):
            lam1, lam2 = lk.weights(it, cfg)
            mask = self.make_mask(seed)  # [A, T, H, W]
            x = self.one_frame_clips(mask) if self.unsync else self.pyramid(mask)
            if cfg.jitter and it % 2 == 0:
                x = torch.flip(x, dims=(3,))
            score = self.reward(x)
            total = self.energy(mask, score, lam1, lam2, lk).sum()
            # gradient w.r.t. the seeds only: no parameter gradients of the model
            (seed.grad,) = torch.autograd.grad(total, seed)
            self.model.n_backward += rows
            opt.step()
            with torch.no_grad():
                seed.clamp_(0, 1)
            history.record(total, score, lam1, lam2 if lk.kernel is not None else 0.0)
        return history

    def solve(self) -> _Solution:
        """The final masks, ``Phi_c`` of each preserved clip and of the clip, and the heat map."""
        from removalx_plugins.machinery.min_ratio import min_preservation_ratio, phi0_bound

        cfg, a = self.cfg, self.a
        with torch.no_grad():
            mask = self.make_mask(self.seed)
            logits = self.model(torch.cat([self.pyramid(mask), self.video[None]]))
            score = _reward(logits[:a], self.target, cfg.reward)
            clean = float(_reward(logits[a:], self.target, cfg.reward)[0])
            rewards_a = score.detach().cpu().tolist()
            bound = phi0_bound(cfg.phi0, cfg.phi0_relative, clean)
            eq4 = min_preservation_ratio(self.areas, rewards_a, bound)
            if cfg.final == "min_ratio":
                values = (
                    torch.ones(self.t, self.h, self.w, device=self.device)
                    if eq4.index is None
                    else mask[eq4.index]
                )
            else:
                values = gaussian_blur(mask.sum(0)[..., None], cfg.smooth_sigma, "replicate")[..., 0]
        return _Solution(mask, values, rewards_a, clean, eq4)

    def meta(
        self, sol: _Solution, history: _History, method: str, n0: tuple[int, int], t0: float
    ) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "method": method,
            "areas": self.areas,
            "masks": sol.mask.detach().cpu(),
            "seeds": self.seed.detach().cpu(),
            "area_rewards": sol.area_rewards,
            "clean_reward": sol.clean_reward,
            "v_star": sol.eq4.v_star,
            "phi0": sol.eq4.phi0,
            "phi0_reached": sol.eq4.reached,
            "reward": cfg.reward,
            "area_scope": cfg.area_scope,
            "temporal_smoothing": cfg.temporal_smoothing,
            "unsync": self.unsync,
            **history.meta(),
            "n_forward_method": self.model.n_forward - n0[0],
            "n_backward_method": self.model.n_backward - n0[1],
            "iterations": cfg.iterations,
            "seed_shape": self.up.seed_shape,
            "optimize_seconds": time.perf_counter() - t0,
        }


def extremal_perturbation(
    model: VideoClassifier,
    video: Tensor,
    target: int,
    cfg: ExtremalConfig,
    generator: torch.Generator,
    *,
    kernel_size: Sequence[int] | None = None,
    kernel_stride: Sequence[int] = (1, 11, 11),
    lambda2: float = 0.0,
    lambda2_start: int = 0,
    lambda2_grows: bool = False,
    unsync: bool = False,
    method: str = "ep3d",
) -> Attribution:
    """Optimise Eq. 11 (Eq. 5 when ``kernel_size`` is None) for all ``cfg.areas`` at once.

    Iteration ``i`` minimises ``sum_v lambda_1 L_S^v + lambda_2 L_K^v - Phi_c`` with the
    weights of :func:`lambda_schedule` (``lambda2*`` are ignored without a kernel), by SGD
    on the seed masks (dampening = momentum), which are clamped to [0, 1] after each step.

    ``cfg.area_scope == "frame"`` imposes ``L_S^v`` on every frame (:func:`frame_area_loss`,
    the mean over frames: EP-3D-Evenly, WACV Eq. 10-11). ``cfg.temporal_smoothing = dt > 0``
    smooths the seeds (or the masks) in time with WACV Eq. 12 at every iteration
    (:func:`removalx_plugins.machinery.temporal_smoothing.temporal_smooth`). ``unsync`` (ECCV-W Sec. 4.2,
    "Extm. Ptb. Unsync.") optimises each frame's mask alone: the batch holds one clip per
    (area, frame) in which every other frame's mask is 0 (fully blurred); as the energies of
    different frames share no variable, this equals ``T`` separate optimisations.

    Returns
    -------
    Attribution
        ``values``: the area masks summed and blurred per frame (sigma ``cfg.smooth_sigma``,
        replicated borders, as the authors' scikit-image ``gaussian``), or with
        ``cfg.final == "min_ratio"`` the mask at ``v*`` of Eq. 4; ``meta["masks"]``
        (``float[A, T, H, W]``), ``meta["area_rewards"]`` (``Phi_c`` of each preserved clip),
        ``meta["clean_reward"]`` (``Phi_c`` of the clip), ``meta["v_star"]`` / ``meta["phi0"]``
        / ``meta["phi0_reached"]`` (Eq. 4 with ``cfg.phi0``), ``meta["seeds"]`` (the seed
        masks), ``meta["loss_history"]`` (total energy per iteration),
        ``meta["reward_history"]`` (mean ``Phi_c`` per iteration), ``meta["lambda1_history"]``
        / ``meta["lambda2_history"]`` (the weights used) and counts.
    """
    require_differentiable(model, method, "a removal recipe such as 'rise3d' or 'occlusion3d'")
    _check_unsync(cfg, unsync)
    t0 = time.perf_counter()
    run = _ExtremalRun(model, video, target, cfg, generator, unsync)
    shape = (run.t, run.h, run.w)
    lk = _SmoothnessTerm.build(
        shape, kernel_size, kernel_stride, lambda2, lambda2_start, lambda2_grows, run.device
    )
    n0 = (model.n_forward, model.n_backward)
    history = run.optimise(lk)
    sol = run.solve()
    meta = run.meta(sol, history, method, n0, t0)
    if unsync:
        with torch.no_grad():
            meta["frame_rewards"] = (
                run.reward(run.one_frame_clips(sol.mask)).reshape(run.a, run.t).cpu().tolist()
            )
    if lk.size is not None:
        meta.update(kernel_size=lk.size, beta=lk.beta, kernel_stride=tuple(kernel_stride))
    if run.shape_kernel is not None:
        with torch.no_grad():
            final = eccvw_shape_loss(sol.mask, run.shape_kernel).cpu().tolist()
        meta["eccvw_loss"] = {
            "weight": cfg.eccvw_weight,
            "kernel_size": tuple(int(k) for k in run.shape_kernel.shape),
            "kernel_ones": int(run.shape_kernel.sum()),
            "radius": cfg.eccvw_radius,
            "final": final,
        }
    return Attribution(values=sol.values.detach().cpu(), target=int(target), meta=meta)
