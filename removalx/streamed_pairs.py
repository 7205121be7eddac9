"""Streamed Kernel SHAP plans: independent complement pairs, row ``i`` a function of ``i``.

Adaptive sample selection (``adaptive``) stops a plan after any round, so every prefix of
the plan must be a valid sample and the samples must be independent to estimate their
variance (Covert & Lee, "Improving KernelSHAP: Practical Shapley Value Estimation via
Linear Regression", AISTATS 2021, Sec. 3.3-4). :class:`PairedSizePlan` draws pair ``k``
(rows ``2k`` and ``2k + 1``: a coalition and its complement) from counter-based random
numbers of ``(seed, k)`` (:mod:`removalx.rng`), so the rows do not depend on the chunk size
and memory is ``O(chunk x F)`` whatever the number of samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from removalx.plans import LazyPlan, PlanChunk
from removalx.rng import hash_uniform

__all__ = ["PairedSizePlan"]


class PairedSizePlan(LazyPlan):
    """``S`` rows of independent complement pairs with sizes drawn from ``probs``.

    Parameters
    ----------
    n_samples, n_features : int
        Shape ``S x F`` (an odd ``S`` ends with an unpaired coalition).
    probs : Tensor
        ``float64[F - 1]`` probability of each size ``1 .. F-1`` (symmetric: ``probs[s-1]``
        equals ``probs[F-s-1]``, so a pair's two rows share their weight).
    ratio : Tensor
        ``float64[F - 1]`` weight of a row of each size (Shapley kernel / ``probs``; all ones
        for Kernel SHAP's own sampling).
    generator : torch.Generator
        Draws the seed of the counter-based stream.
    meta : dict, optional
        Extra entries for :attr:`meta` (``paired`` and ``iid`` are set).
    """

    def __init__(
        self,
        n_samples: int,
        n_features: int,
        probs: Tensor,
        ratio: Tensor,
        generator: torch.Generator,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self._n, self._f = int(n_samples), int(n_features)
        self._cdf = torch.cumsum(probs.double(), 0)
        self._cdf[-1] = 1.0
        self._ratio = ratio.double()
        self._seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        self.meta = {"exhaustive": False, "paired": True, "iid": True, **(meta or {})}

    @property
    def n_samples(self) -> int:
        return self._n

    @property
    def n_features(self) -> int:
        return self._f

    @property
    def weighted(self) -> bool:
        return True

    def _rows(self, index: Tensor) -> tuple[Tensor, Tensor]:
        pair = index // 2
        u = hash_uniform(self._seed, pair, (self._f + 1,)).double()
        size_idx = torch.searchsorted(self._cdf, u[:, 0].contiguous(), right=True).clamp_max(self._f - 2)
        ranks = u[:, 1:].argsort(dim=1).argsort(dim=1)
        z = (ranks < (size_idx + 1)[:, None]).float()
        odd = (index % 2 == 1)[:, None]
        z = torch.where(odd, 1.0 - z, z)
        return z, self._ratio[size_idx].float()

    def chunks(self, size: int) -> Iterator[PlanChunk]:
        if int(size) < 1:
            raise ValueError(f"chunk size must be at least 1, got {size}")
        for start in range(0, self._n, int(size)):
            z, w = self._rows(torch.arange(start, min(start + int(size), self._n)))
            yield PlanChunk(start, z, w)

    def rows(self, index: Tensor) -> tuple[Tensor, Tensor | None]:
        index = index.detach().cpu().long().reshape(-1)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self._n):
            raise IndexError(
                f"plan rows {int(index.min())}..{int(index.max())} requested from a plan of {self._n} rows"
            )
        return self._rows(index)
