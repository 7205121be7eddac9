"""``mask_mean``: RISE's importance, the model output averaged over the masks that keep a pixel.

The summary of 3D RISE ("removal-based video explanations", Sec. 2.2 and Table 2: "Mean
when included"). Two normalisations of the weighted mask sum ``sum_i y_i m_i(p)``:

- ``coverage`` (default, the paper's "mean when included"):
  ``S(p) = sum_i y_i m_i(p) / sum_i m_i(p)``, the mean output over the samples weighted by
  how much they keep ``p``; per feature ``sum_i y_i z_ij / sum_i z_ij``;
- ``p`` (Petsiuk et al.'s original RISE): ``S(p) = sum_i y_i m_i(p) / (N p_keep)``; per
  feature ``sum_i y_i z_ij / (N p_keep)``.

``include_original`` adds the unperturbed clip as one more sample whose mask keeps
everything (``m = 1``, ``z = 1``). Accumulated at pixel level batch by batch (memory
``T x H x W``, independent of ``N``).

For adaptive sampling (:meth:`MaskMean.estimate`) the standard error of feature ``j`` is that
of a mean: the running variance of the outputs of the samples keeping ``j``, over their
number (``coverage``), or of ``y z_j`` over ``N`` divided by ``p_keep`` (``p``).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import ChunkedPlan, FeatureSpace, PluginConfig, Summary, hookimpl


class MaskMeanConfig(PluginConfig):
    """Normalisation of the weighted mask sum, and whether the clean clip is a sample."""

    normalize: Literal["coverage", "p"] = Field(
        "coverage",
        description="'coverage': divide by the sum of masks (mean when included); 'p': divide by N p_keep (RISE)",
    )
    include_original: bool = Field(
        False, description="add the unperturbed clip as a sample keeping everything"
    )


class MaskMean(Summary):
    """``values = sum_i y_i m_i / sum_i m_i`` (``coverage``) or ``sum_i y_i m_i / (N p)`` (``p``)."""

    needs_keep = True

    def __init__(self, config: MaskMeanConfig) -> None:
        self.config = config
        self.requires = ("full",) if config.include_original else ()  # type: ignore[misc]
        self.meta: dict[str, float | str] = {}

    def begin(self, space: FeatureSpace, plan: ChunkedPlan, base: dict[str, float]) -> None:
        self.p = float(plan.meta.get("p", 0.0)) or None
        self.acc: Tensor | None = None
        self.cover: Tensor | None = None
        self.facc = torch.zeros(space.n_features, dtype=torch.float64)
        self.fcover = torch.zeros(space.n_features, dtype=torch.float64)
        self.fsq = torch.zeros(space.n_features, dtype=torch.float64)
        self.n = 0
        self.full = base["full"] if self.config.include_original else None

    def update(self, z: Tensor, keep: Tensor | None, y: Tensor, weights: Tensor | None) -> None:
        assert keep is not None  # needs_keep guarantees it
        yk = torch.einsum("b,bthw->thw", y.float(), keep.float())
        cover = keep.float().sum(0)
        self.acc = yk if self.acc is None else self.acc + yk
        self.cover = cover if self.cover is None else self.cover + cover
        # float64 feature sums on the CPU, or on the batch's CUDA device without a copy back per
        # batch (a host-device sync); the same operations in the same order on the CPU
        dev = y.device if y.device.type == "cuda" else torch.device("cpu")
        self.facc, self.fcover, self.fsq = self.facc.to(dev), self.fcover.to(dev), self.fsq.to(dev)
        zd = z.to(dev, torch.float64)
        yd = y.to(dev, torch.float64)
        self.facc += (yd[:, None] * zd).sum(0)
        self.fcover += zd.sum(0)
        self.fsq += (yd[:, None] ** 2 * zd).sum(0)
        self.n += int(y.shape[0])

    def _feature_sums(self) -> tuple[Tensor, Tensor, Tensor, int]:
        """Per-feature sums of ``y z``, ``z`` and ``y^2 z`` and the sample count, clean clip included.

        On the CPU (one copy from the device, once per estimate or at the end).
        """
        facc, fcover, fsq = self.facc.cpu(), self.fcover.cpu(), self.fsq.cpu()
        if self.full is None:
            return facc, fcover, fsq, self.n
        return facc + self.full, fcover + 1.0, fsq + self.full**2, self.n + 1

    def estimate(self) -> tuple[Tensor, Tensor] | None:
        facc, fcover, fsq, n = self._feature_sums()
        n = max(n, 1)
        if self.config.normalize == "p":
            p = (
                self.p
                if self.p is not None
                else float(self.fcover.cpu().sum()) / (max(self.n, 1) * fcover.numel())
            )
            mean = facc / n
            var = (fsq / n - mean**2).clamp_min(0.0) * n / max(n - 1, 1)
            return mean / p, (var / n).sqrt() / p
        cover = fcover.clamp_min(1.0)
        mean = facc / cover
        var = (fsq / cover - mean**2).clamp_min(0.0) * cover / (cover - 1).clamp_min(1.0)
        se = torch.where(fcover > 1, (var / cover).sqrt(), torch.full_like(mean, float("inf")))
        return mean, se

    def finalize(self, space: FeatureSpace) -> tuple[Tensor, Tensor]:
        assert self.acc is not None and self.cover is not None
        acc, cover = self.acc, self.cover
        p_sampled = self.p if self.p is not None else float(cover.mean()) / self.n
        facc, fcover, _, n = self._feature_sums()
        if self.full is not None:  # the clean clip: keep = 1 everywhere, z = 1
            acc, cover = acc + self.full, cover + 1.0
        if self.config.normalize == "p":
            values = acc / (n * p_sampled)
            fv = facc / (n * p_sampled)
        else:
            values = torch.where(cover > 0, acc / cover.clamp_min(1e-12), torch.zeros_like(acc))
            fv = torch.where(fcover > 0, facc / fcover.clamp_min(1e-12), torch.zeros_like(facc))
        self.meta = {"p_keep": p_sampled, "normalize": self.config.normalize}
        return values, fv.float()


@hookimpl
def removalx_register_summaries(registry):  # type: ignore[no-untyped-def]
    registry.add("mask_mean", MaskMeanConfig, MaskMean)
