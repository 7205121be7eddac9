"""Streamed Kernel SHAP plans: enumerated small sizes, then independent complement pairs.

Adaptive sample selection (``adaptive``) stops a plan after any round, so every prefix of
the plan must be a valid sample and the sampled part must be independent to estimate its
variance (Covert & Lee, "Improving KernelSHAP: Practical Shapley Value Estimation via
Linear Regression", AISTATS 2021, Sec. 3.3-4). :class:`PairedSizePlan` starts with every
coalition of the sizes it enumerates (each followed by its complement; their kernel mass is
then known exactly and carries no sampling error), and continues with independent complement
pairs drawn from the other sizes: pair ``k`` of that part comes from counter-based random
numbers of ``(seed, k)`` (:mod:`removalx.core.rng`), so the rows do not depend on the chunk size
and memory is ``O(enumerated x F + chunk x F)`` whatever the number of samples.

The plan's ``meta`` tells the summary how to combine the two parts (the ``shapley``
summary): ``n_enumerated`` leading rows with weights that are their share of the Shapley
kernel's mass, and ``sampled_mass``, the kernel mass of the sampled sizes, spread over the
sampled rows in proportion to their weights (which average 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from removalx.plugin import (
    PlanChunk,
    SizedLazyPlan,
    check_chunk_size,
    checked_rows,
    hash_uniform,
    subsets_of_size,
)

__all__ = ["STREAM_ENUMERATION_SHARE", "PairedSizePlan", "complement_pairs_of_size"]

#: A streamed plan of ``S`` rows enumerates the sizes that the selector's fixed plan of
#: ``STREAM_ENUMERATION_SHARE x S`` samples enumerates: enough to stop drawing the smallest
#: sizes' few coalitions again and again, little enough that sampling starts early.
STREAM_ENUMERATION_SHARE = 0.25


def complement_pairs_of_size(m: int, s: int) -> Tensor:
    """``float[R, m]`` every coalition of ``s`` of ``m`` features, each followed by its complement.

    For ``s < m - s`` that is ``2 C(m, s)`` rows; for the middle size ``s = m / 2`` the
    coalitions holding feature 0 and their complements, ``C(m, s)`` rows (every coalition once).
    """
    if 2 * s == m:
        rest = subsets_of_size(m - 1, s - 1)  # features 1 .. m-1
        z = torch.cat([torch.ones(rest.shape[0], 1), rest], dim=1)
    else:
        z = subsets_of_size(m, s)
    return torch.stack([z, 1.0 - z], dim=1).reshape(-1, m)


class PairedSizePlan(SizedLazyPlan):
    """Enumerated sizes first, then ``S - E`` rows of independent complement pairs.

    Parameters
    ----------
    n_samples, n_features : int
        Shape ``S x F`` (an odd sampled part ends with an unpaired coalition). With nothing
        left to sample (every size enumerated) the plan has only the ``E`` enumerated rows.
    probs : Tensor
        ``float64[F - 1]`` probability of each size ``1 .. F-1`` for a sampled pair
        (symmetric: ``probs[s-1]`` equals ``probs[F-s-1]``, so a pair's two rows share their
        weight). Sizes in ``enumerate_sizes`` are never drawn.
    kernel : Tensor
        ``float64[F - 1]`` the target mass of each size (the Shapley kernel's, summing to 1).
    generator : torch.Generator
        Draws the seed of the counter-based stream.
    enumerate_sizes : sequence of int, optional
        Sizes ``s <= F / 2`` whose coalitions (and complements, sizes ``F - s``) come first.
    meta : dict, optional
        Extra entries for :attr:`meta` (``paired``, ``iid``, ``n_enumerated`` and
        ``sampled_mass`` are set).
    """

    def __init__(
        self,
        n_samples: int,
        n_features: int,
        probs: Tensor,
        kernel: Tensor,
        generator: torch.Generator,
        enumerate_sizes: tuple[int, ...] | list[int] = (),
        meta: dict[str, Any] | None = None,
    ) -> None:
        m = int(n_features)
        self._f = m
        kernel = kernel.double() / kernel.double().sum()
        probs = probs.double().clone()
        heads, head_w = [], []
        for s in sorted(set(int(s) for s in enumerate_sizes)):
            rows = complement_pairs_of_size(m, s)
            both = 1 if 2 * s == m else 2  # kernel mass of size s (and of F - s)
            heads.append(rows)
            head_w.append(torch.full((rows.shape[0],), float(kernel[s - 1]) * both / rows.shape[0]))
            probs[s - 1] = probs[m - s - 1] = 0.0
        self._head = torch.cat(heads) if heads else torch.zeros(0, m)
        self._head_w = torch.cat(head_w).float() if head_w else torch.zeros(0)
        e = int(self._head.shape[0])
        sampled = probs > 0
        self._mass = float(kernel[sampled].sum()) if bool(sampled.any()) else 0.0
        self._n = int(n_samples) if self._mass > 0 else min(int(n_samples), e)
        self._e = e
        if self._mass > 0:
            probs /= probs.sum()
            self._cdf = torch.cumsum(probs, 0)
            self._cdf[-1] = 1.0
            rest = torch.where(sampled, kernel / self._mass, torch.zeros_like(kernel))
            self._ratio = torch.where(sampled, rest / probs.clamp_min(1e-300), torch.zeros_like(probs))
        self._seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        self.meta = {
            "exhaustive": self._mass == 0 and self._n == e,
            "paired": True,
            "iid": True,
            "n_enumerated": min(e, self._n),
            "enumerated_sizes": sorted(set(int(s) for s in enumerate_sizes)),
            "sampled_mass": self._mass,
            **(meta or {}),
        }

    @property
    def weighted(self) -> bool:
        return True

    def _sampled_rows(self, index: Tensor) -> tuple[Tensor, Tensor]:
        pair = index // 2
        u = hash_uniform(self._seed, pair, (self._f + 1,)).double()
        size_idx = torch.searchsorted(self._cdf, u[:, 0].contiguous(), right=True).clamp_max(self._f - 2)
        ranks = u[:, 1:].argsort(dim=1).argsort(dim=1)
        z = (ranks < (size_idx + 1)[:, None]).float()
        odd = (index % 2 == 1)[:, None]
        z = torch.where(odd, 1.0 - z, z)
        return z, self._ratio[size_idx].float()

    def _rows(self, index: Tensor) -> tuple[Tensor, Tensor]:
        head = index < self._e
        if bool(head.all()):
            return self._head[index], self._head_w[index]
        z_s, w_s = self._sampled_rows((index - self._e).clamp_min(0))
        if not bool(head.any()):
            return z_s, w_s
        hi = index.clamp_max(max(self._e - 1, 0))
        z = torch.where(head[:, None], self._head[hi], z_s)
        return z, torch.where(head, self._head_w[hi], w_s)

    def chunks(self, size: int) -> Iterator[PlanChunk]:
        size = check_chunk_size(size)
        for start in range(0, self._n, size):
            z, w = self._rows(torch.arange(start, min(start + size, self._n)))
            yield PlanChunk(start, z, w)

    def rows(self, index: Tensor) -> tuple[Tensor, Tensor | None]:
        return self._rows(checked_rows(index, self._n))
