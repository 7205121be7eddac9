"""``conditional``: fill removed pixels with draws from a local normal (AOSA's conditional sampling).

AOSA (Uchiyama et al.), Sec. 3.4, after Zintgraf et al. [38]: the replacement of an
occluded ``h x w`` patch is drawn from ``N(mu, Sigma)``, whose parameters are estimated from
the patches around the anchor that contain the anchor pixel and have the occluder's size,
inside a ``36 x 36`` region centred on the anchor (Sec. 4.1), leaving out the occluded
patch itself.

Per position inside the patch, those statistics are the mean and variance of the pixels at
the same relative position in the shifted patches. A patch shifted by ``s`` still contains
the anchor and stays inside the region for ``s`` in ``[lo, hi]`` per axis, so for a pixel
``q`` the samples are ``x[q + s]`` over those shifts minus ``s = 0``: a box statistic
that depends on the pixel only. It is computed once per clip (``prepare``) with two box
filters per frame and channel, so the removal works under any segmentation (flow tubes,
3D windows, superpixels). ``Sigma`` is taken diagonal (per pixel and channel). The noise of
sample ``i`` is a per-clip i.i.d. field rolled by an offset hashed from ``(seed, i)``
(:mod:`removalx.rng`), so it does not depend on batching. :meth:`expected_fill` returns ``mu``, which AOSA-approx uses in closed form (Eq. 7).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from removalx.errors import ConfigError
from removalx.hookspecs import hookimpl
from removalx.rng import hash_normal, hash_uniform
from removalx.stages import PluginConfig, Removal
from removalx.types import FeatureSpace

__all__ = ["Conditional", "ConditionalConfig", "local_patch_stats", "patch_shifts"]


class ConditionalConfig(PluginConfig):
    """Region and patch size of the statistics, and whether to sample or use the mean."""

    region: int = Field(36, ge=1, description="side of the region around the anchor the patches come from (Sec. 4.1: 36)")
    patch_size: tuple[int, int] | None = Field(
        None,
        description="patch h x w; None = the occluder size of the feature space (Sec. 3.4: same as the "
        "occluded region), else 16 x 16 (Sec. 4.1)",
    )
    sample: bool = Field(True, description="draw from N(mu, sigma^2) (Sec. 3.4); False fills the mean mu")
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


def local_patch_stats(video: Tensor, patch: tuple[int, int], region: int) -> tuple[Tensor, Tensor]:
    """Per-pixel mean and variance over the shifted patches (Sec. 3.4), ``float[T, H, W, C]`` each.

    Raises
    ------
    ConfigError
        If no shifted patch fits the region (``region`` too small for ``patch``).
    """
    (ly, hy), (lx, hx) = patch_shifts(patch[0], region), patch_shifts(patch[1], region)
    if region < max(patch) or ly > hy or lx > hx or (ly == hy == 0 and lx == hx == 0):
        raise ConfigError(
            f"conditional: no patch of size {tuple(patch)} other than the occluded one fits a "
            f"{region} x {region} region.",
            "Use region >= patch size + 1 (paper: 16 x 16 patches in a 36 x 36 region).",
        )
    t, h, w, c = video.shape
    x = video.permute(0, 3, 1, 2).reshape(t * c, h, w).double()
    ones = torch.ones(1, h, w, dtype=x.dtype, device=x.device)
    n = _box_sum(ones, ly, hy, lx, hx) - 1.0  # leave the occluded patch (shift 0) out
    s1 = _box_sum(x, ly, hy, lx, hx) - x
    s2 = _box_sum(x * x, ly, hy, lx, hx) - x * x
    n = n.clamp_min(1.0)
    mu = s1 / n
    var = (s2 / n - mu * mu).clamp_min(0.0)

    def back(a: Tensor) -> Tensor:
        return a.reshape(t, c, h, w).permute(0, 2, 3, 1).to(video.dtype).contiguous()

    return back(mu), back(var)


def _patch_size(space: FeatureSpace) -> tuple[int, int]:
    size = getattr(space, "mask_size", None) or space.meta.get("mask_size")
    if size is None and "window" in space.meta and len(space.meta["window"]) == 3:
        size = tuple(space.meta["window"])[1:]
    return (int(size[0]), int(size[1])) if size is not None else (16, 16)


class Conditional(Removal):
    """Fill from ``N(mu, sigma^2)`` of the surrounding patches (AOSA Sec. 3.4)."""

    def __init__(self, config: ConditionalConfig) -> None:
        self.config = config
        self.seed = 0
        self.mu: Tensor | None = None
        self.sigma: Tensor | None = None
        self._field: Tensor | None = None

    def prepare(self, video: Tensor, space: FeatureSpace, seed: int) -> None:
        self.seed = int(seed)
        self._field = None
        patch = self.config.patch_size or _patch_size(space)
        mu, var = local_patch_stats(video, patch, self.config.region)
        self.mu, self.sigma = mu, var.sqrt()

    def _stats(self, video: Tensor) -> tuple[Tensor, Tensor]:
        if self.mu is None or self.sigma is None or self.mu.shape != video.shape:
            mu, var = local_patch_stats(video, self.config.patch_size or (16, 16), self.config.region)
            self.mu, self.sigma = mu, var.sqrt()
        return self.mu.to(video.device), self.sigma.to(video.device)

    def _noise(self, index: Tensor, video: Tensor) -> Tensor:
        """``float[B, T, H, W, C]`` standard normal noise of samples ``index``.

        One i.i.d. field per clip (hashed once) is rolled in space by a per-sample offset
        hashed from ``(seed, index)``: every sample sees i.i.d. N(0, 1) pixels, samples see
        different draws, and a sample's noise does not depend on its batch -- at the cost of
        a gather instead of hashing ``B x T x H x W x C`` counters.
        """
        t, h, w, c = video.shape
        if self._field is None or self._field.shape != video.shape:
            pos = torch.zeros(1, dtype=torch.long, device=video.device)
            self._field = hash_normal(self.seed, pos, (t, h, w, c), stream=31)[0].to(video.dtype)
        field = self._field.to(video.device)
        off = (hash_uniform(self.seed, index.to(video.device), (2,), stream=32) * torch.tensor(
            [h, w], device=video.device)).long()
        rows = (torch.arange(h, device=video.device)[None] + off[:, :1]) % h  # [B, H]
        cols = (torch.arange(w, device=video.device)[None] + off[:, 1:]) % w  # [B, W]
        return field[:, rows[:, :, None], cols[:, None, :]].permute(1, 0, 2, 3, 4)

    def fill(self, video: Tensor, keep: Tensor, index: Tensor) -> Tensor:
        mu, sigma = self._stats(video)
        if not self.config.sample:
            return mu
        out = mu + sigma * self._noise(index, video)
        return out.clamp_(0.0, 1.0) if self.config.clip else out

    def expected_fill(self, video: Tensor, keep: Tensor, index: Tensor) -> Tensor:
        """``mu`` (Sec. 3.5.2, Eq. 7); clipping of draws is ignored."""
        return self._stats(video)[0]


@hookimpl
def removalx_register_removals(registry):  # type: ignore[no-untyped-def]
    registry.add("conditional", ConditionalConfig, Conditional)
