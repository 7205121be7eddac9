"""``conditional``: fill removed pixels with draws from a local normal (AOSA's conditional sampling).

AOSA (Uchiyama et al.), Sec. 3.4, after Zintgraf et al. [38]: the replacement of an
occluded ``h x w`` patch is drawn from ``N(mu, Sigma)``, whose parameters are the mean and
covariance of the patches around the anchor that contain the anchor pixel and have the
occluder's size, inside a ``36 x 36`` region centred on the anchor (Sec. 4.1), leaving out
the occluded patch itself.

A patch shifted by ``s`` still contains the anchor and stays inside the region for ``s``
in ``[lo, hi]`` per axis (:func:`patch_shifts`), the same set ``S`` for every anchor. So
the mean at pixel ``q`` is ``mu(q) = 1/n sum_{s in S, s != 0} x[q + s]`` and the patch
covariance between pixels ``q``, ``q'`` of one patch is
``Sigma(q, q') = 1/n sum_s (x[q + s] - mu(q)) (x[q' + s] - mu(q'))``: both depend on the
pixels only, not on which anchor's patch they belong to. They are computed once per clip
(``prepare``, box filters), so the removal works under any segmentation (flow tubes, 3D
windows, superpixels).

``covariance: patch`` (default) draws from the full ``Sigma`` without forming it:
``v(q) = mu(q) + 1/sqrt(n) sum_s e_s (x[q + s] - mu(q))`` with ``e_s ~ N(0, 1)`` i.i.d.
per shift (one set per sample and frame, shared by the colour channels). Restricted to any
occluder box, ``v`` has exactly the mean ``mu`` and covariance ``Sigma`` of that box's
neighbouring patches (pixels and colour channels jointly). It costs one correlation of
each frame with a random ``|S|``-tap kernel per sample. ``covariance: diagonal`` keeps only
the per-pixel variances: ``v(q) = mu(q) + sigma(q) e(q)`` with ``e(q) ~ N(0, 1)`` independent
per pixel, channel and sample.

The randomness of sample ``i`` is hashed from ``(seed, i)`` (:mod:`removalx.core.rng`), so it
does not depend on batching. AOSA averages the model's score over several draws (Sec. 3.4);
removalx evaluates each mask once per draw (``cooccurrence``'s ``draws``: one plan row per
draw, and ``aosa_map`` is linear in the scores, so its map is that of the averaged score).
:meth:`expected_fill` returns ``mu``, which AOSA-approx uses in closed form (Eq. 7).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from removalx.plugin import (
    ConfigError,
    FeatureSpace,
    PluginConfig,
    Removal,
    hash_normal,
    hookimpl,
)

__all__ = ["Conditional", "ConditionalConfig", "local_patch_stats", "patch_shifts"]


#: A patch side in pixels.
_Side = Annotated[int, Field(ge=1, le=4096, strict=True)]


class ConditionalConfig(PluginConfig):
    """Region and patch size of the statistics, covariance model, and whether to sample."""

    region: int = Field(
        36,
        ge=1,
        le=4096,
        strict=True,
        description="side of the region around the anchor the patches come from (Sec. 4.1: 36; at most 4096)",
    )
    patch_size: tuple[_Side, _Side] | None = Field(
        None,
        description="patch h x w (each 1 to 4096); None = the occluder size of the feature space (Sec. 3.4: "
        "same as the occluded region), else 16 x 16 (Sec. 4.1)",
    )
    sample: bool = Field(True, description="draw from N(mu, Sigma) (Sec. 3.4); False fills the mean mu")
    covariance: Literal["patch", "diagonal"] = Field(
        "patch",
        description="'patch': the full covariance of the neighbouring patches (Sec. 3.4); 'diagonal': "
        "per-pixel variances only",
    )
    clip: bool = Field(True, description="clip draws to the pixel range [0, 1]")


def patch_shifts(patch: int, region: int) -> tuple[int, int]:
    """Range ``[lo, hi]`` of patch shifts that keep the anchor inside the patch and the patch in the region.

    A patch of size ``patch`` centred on the anchor spans ``[a - patch//2, a - patch//2 + patch)``;
    the region spans ``[a - region//2, a - region//2 + region)``.
    """
    lo = max(-(patch - 1 - patch // 2), patch // 2 - region // 2)
    hi = min(patch // 2, region - region // 2 - patch + patch // 2)
    return lo, hi


def _box_sum(x: Tensor, ly: int, hy: int, lx: int, hx: int) -> Tensor:
    """``out[..., q] = sum_{s in [ly, hy] x [lx, hx]} x[..., q + s]`` (zero outside), x: ``[N, H, W]``."""
    xp = F.pad(x[:, None], (-lx, hx, -ly, hy))  # left, right, top, bottom
    k = torch.ones(1, 1, hy - ly + 1, hx - lx + 1, dtype=x.dtype, device=x.device)
    return F.conv2d(xp, k)[:, 0]


def _check_shifts(patch: tuple[int, int], region: int) -> tuple[int, int, int, int]:
    (ly, hy), (lx, hx) = patch_shifts(patch[0], region), patch_shifts(patch[1], region)
    if region < max(patch) or ly > hy or lx > hx or (ly == hy == 0 and lx == hx == 0):
        raise ConfigError(
            f"conditional: no patch of size {tuple(patch)} other than the occluded one fits a "
            f"{region} x {region} region.",
            "Use region >= patch size + 1 (paper: 16 x 16 patches in a 36 x 36 region).",
        )
    return ly, hy, lx, hx


def _stats(video: Tensor, patch: tuple[int, int], region: int) -> tuple[Tensor, Tensor, Tensor]:
    """``mu``, ``var`` (``float[T, H, W, C]``) and the patch count ``n`` (``float[H, W]``)."""
    ly, hy, lx, hx = _check_shifts(patch, region)
    t, h, w, c = video.shape
    x = video.permute(0, 3, 1, 2).reshape(t * c, h, w).double()
    ones = torch.ones(1, h, w, dtype=x.dtype, device=x.device)
    n = (_box_sum(ones, ly, hy, lx, hx) - 1.0).clamp_min(1.0)  # leave the occluded patch (shift 0) out
    s1 = _box_sum(x, ly, hy, lx, hx) - x
    s2 = _box_sum(x * x, ly, hy, lx, hx) - x * x
    mu = s1 / n
    var = (s2 / n - mu * mu).clamp_min(0.0)

    def back(a: Tensor) -> Tensor:
        return a.reshape(t, c, h, w).permute(0, 2, 3, 1).to(video.dtype).contiguous()

    return back(mu), back(var), n[0].to(video.dtype)


def local_patch_stats(video: Tensor, patch: tuple[int, int], region: int) -> tuple[Tensor, Tensor]:
    """Per-pixel mean and variance over the shifted patches (Sec. 3.4), ``float[T, H, W, C]`` each.

    Raises
    ------
    ConfigError
        If no shifted patch fits the region (``region`` too small for ``patch``).
    """
    mu, var, _ = _stats(video, patch, region)
    return mu, var


def _patch_size(space: FeatureSpace | None) -> tuple[int, int]:
    size = None
    if space is not None:
        size = getattr(space, "mask_size", None) or space.meta.get("mask_size")
        if size is None and "window" in space.meta and len(space.meta["window"]) == 3:
            size = tuple(space.meta["window"])[1:]
    return (int(size[0]), int(size[1])) if size is not None else (16, 16)


class Conditional(Removal):
    """Fill from ``N(mu, Sigma)`` of the surrounding patches (AOSA Sec. 3.4)."""

    def __init__(self, config: ConditionalConfig) -> None:
        self.config = config
        self.seed = 0
        self.patch: tuple[int, int] = config.patch_size or (16, 16)
        self.mu: Tensor | None = None
        self.sigma: Tensor | None = None
        self.n: Tensor | None = None

    def prepare(self, video: Tensor, space: FeatureSpace, seed: int) -> None:
        self.seed = int(seed)
        self.patch = self.config.patch_size or _patch_size(space)
        self._compute(video)

    def _compute(self, video: Tensor) -> None:
        mu, var, n = _stats(video, self.patch, self.config.region)
        self.mu, self.sigma, self.n = mu, var.sqrt(), n

    def _stats(self, video: Tensor) -> tuple[Tensor, Tensor]:
        if self.mu is None or self.sigma is None or self.mu.shape != video.shape:
            self._compute(video)
        assert self.mu is not None and self.sigma is not None
        return self.mu.to(video.device), self.sigma.to(video.device)

    def _noise(self, index: Tensor, video: Tensor) -> Tensor:
        """``float[B, T, H, W, C]`` standard normal noise of samples ``index`` (diagonal covariance).

        Every value is hashed from ``(seed, index, position)`` (:func:`hash_normal`): the noise
        is i.i.d. ``N(0, 1)`` over pixels, channels and samples, and a sample's noise does not
        depend on its batch.
        """
        shape = tuple(int(s) for s in video.shape)
        return hash_normal(self.seed, index.to(video.device), shape, stream=31).to(video.dtype)

    def _patch_draw(self, index: Tensor, video: Tensor, mu: Tensor) -> Tensor:
        """``float[B, T, H, W, C]`` draws with the full patch covariance (see the module docstring).

        ``v = mu + (sum_s e_s x[q + s] - mu(q) sum_s e_s) / sqrt(n(q))`` over the shifts
        inside the frame, computed as two correlations of the frame (and of an all-ones
        frame) with the sample's random kernel ``e`` (one per frame, zero at ``s = 0``).
        """
        ly, hy, lx, hx = _check_shifts(self.patch, self.config.region)
        t, h, w, c = video.shape
        b = int(index.shape[0])
        kh, kw = hy - ly + 1, hx - lx + 1
        e = hash_normal(self.seed, index.to(video.device), (t, kh, kw), stream=33).to(video.dtype)
        e[:, :, -ly, -lx] = 0.0  # the occluded patch itself is not a neighbour
        pad = (-lx, hx, -ly, hy)
        x = F.pad(video.permute(0, 3, 1, 2).reshape(1, t * c, h, w), pad)
        weight = e.permute(1, 0, 2, 3)[:, None].expand(t, c, b, kh, kw).reshape(t * c * b, 1, kh, kw)
        sx = F.conv2d(x, weight, groups=t * c).view(t, c, b, h, w).permute(2, 0, 3, 4, 1)
        ones = F.pad(torch.ones(1, 1, h, w, dtype=video.dtype, device=video.device), pad)
        s1 = F.conv2d(ones, e.reshape(b * t, 1, kh, kw)).view(b, t, h, w, 1)
        assert self.n is not None
        scale = self.n.to(video.device).rsqrt()[None, None, :, :, None]
        return mu + (sx - mu * s1) * scale

    def fill(self, video: Tensor, keep: Tensor, index: Tensor) -> Tensor:
        mu, sigma = self._stats(video)
        if not self.config.sample:
            return mu
        if self.config.covariance == "patch":
            out = self._patch_draw(index, video, mu)
        else:
            out = mu + sigma * self._noise(index, video)
        return out.clamp_(0.0, 1.0) if self.config.clip else out

    def expected_fill(self, video: Tensor, keep: Tensor, index: Tensor) -> Tensor:
        """``mu`` (Sec. 3.5.2, Eq. 7); clipping of draws is ignored."""
        return self._stats(video)[0]


@hookimpl
def removalx_register_removals(registry):  # type: ignore[no-untyped-def]
    registry.add("conditional", ConditionalConfig, Conditional)
