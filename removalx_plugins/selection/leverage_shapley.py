"""``leverage_shapley``: Leverage SHAP's coalitions -- uniform over sizes, paired, no repeats.

Musco & Witter, "Provably Accurate Shapley Value Estimation via Leverage Score Sampling"
(ICLR 2025), Sec. 3-4: in Kernel SHAP's constrained regression (the ``shapley`` summary) the
statistical leverage of a coalition of size ``s`` is proportional to ``1 / C(F, s)``, so
sampling coalitions by leverage puts the same mass on every size ``1 .. F-1`` (where Kernel
SHAP's kernel crowds the budget onto the smallest and largest sizes), and each sampled row
is reweighted by ``kernel weight / inclusion probability`` so that the weighted regression
still estimates the Shapley values (Sec. 4, Algorithm 1). Like the paper's estimator,
coalitions are paired with their complements (Sec. 4, "paired sampling") and drawn without
replacement.

The expected number of coalitions of each size is ``min(C(F, s), c)`` with ``c`` chosen so
that they add up to the budget (the paper's ``min(1, c * leverage)`` inclusion
probabilities): sizes with few coalitions are enumerated. Where the paper draws every
coalition independently (Bernoulli), here each size gets exactly its (rounded) expected
number of distinct coalitions, drawn uniformly -- stratified by size, which has the same
inclusion probabilities and no variance in the count per size (docs/fidelity.md). A row of
size ``s`` drawn ``k_s`` times among ``C(F, s)`` coalitions has weight
``pi(s) C(F, s) / k_s = (F - 1) / (s (F - s) k_s)``.

With a budget of ``2**F - 2`` or more every coalition is enumerated and the Shapley values
come out exact, as with ``shapley_kernel``. The plan is built in memory with the same limit
(:data:`~removalx_plugins.selection.shapley_kernel.MAX_SAMPLED_ENTRIES`).

For :mod:`adaptive <removalx_plugins.selection.adaptive>` sample selection the streamed
plan (:meth:`ShapleyKernel.streamed_plan <removalx_plugins.selection.shapley_kernel.ShapleyKernel.streamed_plan>`)
enumerates the sizes that the water-filling covers whole at a quarter of the budget, then
draws independent complement pairs chunk by chunk (sizes uniform, each pair weighted by the
ratio of the Shapley kernel to that distribution), so that any prefix of the plan is a valid
sample and its variance can be estimated.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from removalx.plugin import ConfigError, PluginConfig, SamplePlan, hookimpl, random_subsets, subsets_of_size
from removalx_plugins.selection.shapley_kernel import ShapleyKernel

__all__ = ["LeverageShapley", "LeverageShapleyConfig", "size_counts"]


class LeverageShapleyConfig(PluginConfig):
    """Pairing of sampled coalitions with their complements."""

    paired: bool = Field(True, description="add the complement of every sampled coalition")


def size_counts(
    n_features: int, budget: int, generator: torch.Generator, paired: bool, exponent: float = 0.0
) -> list[int]:
    """Number of distinct coalitions of each size ``1 .. F-1`` (index ``s - 1``) for ``budget``.

    Water-filling of the size distribution ``q(s)`` proportional to
    ``(1 / (s (F - s)))**exponent`` (``exponent = 0``: Leverage SHAP's equal mass per size;
    ``1``: the Shapley kernel's): a size gets ``min(C(F, s), c q(s))`` coalitions with ``c``
    such that they add up to ``budget``; sizes taken whole are enumerated; the rounding rest
    goes to sizes drawn at random by ``generator``. With ``paired``, sizes ``s`` and ``F - s``
    get the same count and the middle size an even count.
    """
    m = n_features
    # one unit per size pair {s, F-s} (paired) or per size
    units = list(range(1, m // 2 + 1)) if paired else list(range(1, m))
    width = [2 if paired and s != m - s else 1 for s in units]  # sizes per unit
    cap = [math.comb(m, s) for s in units]  # coalitions per size
    mass = [(1.0 / (s * (m - s))) ** exponent for s in units]
    counts = [0] * len(units)
    left = float(budget)
    open_units = list(range(len(units)))
    while open_units:  # water-filling: enumerate the sizes whose share covers them
        c = left / sum(width[u] * mass[u] for u in open_units)
        full = [u for u in open_units if cap[u] <= c * mass[u]]
        if not full:
            break
        for u in full:
            counts[u] = cap[u]
            left -= cap[u] * width[u]
            open_units.remove(u)
    if open_units:
        c = left / sum(width[u] * mass[u] for u in open_units)
        step = [2 if paired and units[u] == m - units[u] else 1 for u in open_units]  # middle: pairs
        for u, st in zip(open_units, step):
            counts[u] = int(c * mass[u] // st) * st
        rest = int(left) - sum(counts[u] * width[u] for u in open_units)
        order = torch.randperm(len(open_units), generator=generator).tolist()
        for j in order:  # hand out the rest one unit at a time
            u = open_units[j]
            cost = width[u] * step[j]
            if cost <= rest and counts[u] + step[j] <= cap[u]:
                counts[u] += step[j]
                rest -= cost
    out = [0] * (m - 1)
    for u, s in enumerate(units):
        out[s - 1] = counts[u]
        if paired:
            out[m - s - 1] = counts[u]
    return out


class LeverageShapley(ShapleyKernel):
    """Leverage SHAP coalitions with weights (uniform over sizes, paired, without replacement).

    Shares :class:`ShapleyKernel`'s enumeration, checks and memory limit; only the sampled
    plan (:meth:`_sampled`) and the streamed plan differ.
    """

    name = "leverage_shapley"
    too_big_fix = ", or fewer features."

    def __init__(self, config: LeverageShapleyConfig) -> None:
        self.paired = config.paired

    def _sampled(self, m: int, n_samples: int, generator: torch.Generator) -> SamplePlan:
        counts = size_counts(m, n_samples, generator, self.paired)
        rows: list[torch.Tensor] = []
        weights: list[torch.Tensor] = []
        enumerated = 0
        for s in range(1, m):
            k = counts[s - 1]
            if k == 0 or (self.paired and s > m - s):  # the larger size comes with its complement
                continue
            middle = 2 * s == m
            if k == math.comb(m, s):
                z = subsets_of_size(m, s)
                enumerated += k * (2 if self.paired and not middle else 1)
                if self.paired and not middle:
                    z = torch.stack([z, 1.0 - z], dim=1).reshape(-1, m)
            else:
                z = _distinct_subsets(m, s, k // 2 if self.paired and middle else k, generator, self.paired)
                if self.paired:
                    z = torch.stack([z, 1.0 - z], dim=1).reshape(-1, m)
            rows.append(z)
            weights.append(torch.full((z.shape[0],), (m - 1) / (s * (m - s) * k), dtype=torch.float64))
        if not rows:
            raise ConfigError(
                f"leverage_shapley pairs every coalition with its complement: {n_samples} sample(s) is too few.",
                "Ask for at least 2 samples.",
            )
        z = torch.cat(rows)
        w = torch.cat(weights)
        return SamplePlan(
            z.float(),
            (w / w.sum()).float(),
            meta={
                "exhaustive": False,
                "n_enumerated": enumerated,
                "paired": self.paired,
                "sizes": "leverage",
            },
        )

    stream_meta: ClassVar[dict[str, str]] = {"sizes": "leverage"}

    def _stream_size_probs(self, kernel: torch.Tensor) -> torch.Tensor:
        """Sampled pairs: sizes uniform on ``1 .. F-1`` (weights: the kernel over that)."""
        return torch.full_like(kernel, 1.0 / kernel.numel())

    def _enumerated_sizes(self, m: int, budget: int) -> list[int]:
        """Sizes ``s <= F / 2`` that the water-filling of :func:`size_counts` covers whole."""
        if budget < 2:
            return []
        counts = size_counts(m, budget, torch.Generator().manual_seed(0), paired=True)
        return [s for s in range(1, m // 2 + 1) if counts[s - 1] == math.comb(m, s)]


def _distinct_subsets(m: int, s: int, k: int, generator: torch.Generator, paired: bool) -> torch.Tensor:
    """``k`` distinct uniformly random subsets of size ``s`` (for the middle size with ``paired``,
    no two of them complements of each other), in order of drawing."""
    seen: set[bytes] = set()
    kept: list[torch.Tensor] = []
    for _ in range(1000):
        z = random_subsets(torch.full((k - len(kept) + 8,), s), m, generator)
        canon = torch.where(z[:, :1] > 0, z, 1.0 - z) if paired and 2 * s == m else z
        packed = np.packbits(canon.numpy().astype(bool), axis=1)
        for row, key in zip(z, packed):
            b = key.tobytes()
            if b not in seen:
                seen.add(b)
                kept.append(row)
                if len(kept) == k:
                    return torch.stack(kept)
    raise ConfigError(  # pragma: no cover - needs k close to C(m, s), which is enumerated instead
        f"leverage_shapley could not draw {k} distinct coalitions of size {s} of {m} features.",
        "Use a smaller budget.",
    )


@hookimpl
def removalx_register_feature_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("leverage_shapley", LeverageShapleyConfig, LeverageShapley)
