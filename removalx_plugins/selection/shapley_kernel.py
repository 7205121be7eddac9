"""``shapley_kernel``: coalitions drawn from the Shapley kernel, as in Kernel SHAP.

Lundberg & Lee's Kernel SHAP sampling, used by 3D Kernel SHAP ("removal-based video
explanations", Sec. 3.2-3.3, Table 2): coalition sizes follow the Shapley kernel
``pi(s) = (F - 1) / (C(F, s) s (F - s))``. Sizes whose every coalition fits in the budget
are enumerated with their exact kernel mass (smallest and largest sizes first); the rest of
the budget is sampled, each coalition paired with its complement (antithetic sampling),
duplicates merged (their weight is their count). With a budget of ``2**F - 2`` or more
every coalition is enumerated and the Shapley values come out exact.

Unlike ``bernoulli``, the plan is built in memory (a :class:`~removalx.core.plans.SamplePlan`):
merging duplicates needs every draw at once, and the weights are normalised over all of
them. Drawing takes about 70 bytes per sample and feature at its peak, so a sampled plan
is limited to ``n_samples x F <= 2**24`` (:data:`MAX_SAMPLED_ENTRIES`, about 1.2 GB), e.g.
80,000 samples of 200 features; larger budgets are a configuration error. Enumerated plans
are bounded by the enumeration limit (20 features) instead.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field

from removalx.plugin import (
    MAX_ENUMERATE_FEATURES,
    ChunkedPlan,
    ConfigError,
    FeatureSelector,
    PluginConfig,
    SamplePlan,
    all_coalitions,
    first_unique_rows,
    hookimpl,
    random_subsets,
    shapley_kernel_weight,
    subsets_of_size,
)
from removalx_plugins.machinery.streamed_pairs import STREAM_ENUMERATION_SHARE, PairedSizePlan

__all__ = ["MAX_SAMPLED_ENTRIES", "ShapleyKernel", "ShapleyKernelConfig"]

#: Largest ``n_samples x F`` of a sampled plan (drawing peaks at ~70 bytes per entry).
MAX_SAMPLED_ENTRIES = 2**24


class ShapleyKernelConfig(PluginConfig):
    """Pairing of sampled coalitions with their complements."""

    paired: bool = Field(True, description="add the complement of every sampled coalition")


class ShapleyKernel(FeatureSelector):
    """Kernel SHAP coalitions with weights (enumerate what fits, sample the rest).

    The skeleton of every Shapley-kernel selector: at least 2 features, every proper
    coalition when the budget covers them (exact Shapley values), the in-memory limit, then
    :meth:`_sampled` (Lundberg & Lee's sampling here; Leverage SHAP's in a subclass).
    """

    #: The plugin name used in error messages.
    name = "shapley_kernel"
    #: The end of the advice when the plan would not fit in memory.
    too_big_fix = (
        ", fewer features, or feature_selection: {name: bernoulli}, whose plans are drawn chunk by chunk."
    )

    def __init__(self, config: ShapleyKernelConfig) -> None:
        self.paired = config.paired

    def max_samples(self, n_features: int) -> int | None:
        return 2**n_features - 2 if n_features <= MAX_ENUMERATE_FEATURES else None

    def check_features(self, m: int) -> int:
        """``m``, or a :class:`ConfigError` when there are fewer than 2 features."""
        if m < 2:
            raise ConfigError(
                f"{self.name} needs at least 2 features, got {m}.", "Use a segmentation with more features."
            )
        return m

    def plan(self, n_features: int, n_samples: int | None, generator: torch.Generator) -> SamplePlan:
        m = self.check_features(n_features)
        total = 2**m - 2 if m <= 62 else None
        if n_samples is None or (total is not None and n_samples >= total):
            z = all_coalitions(m, proper=True)
            w = shapley_kernel_weight(z.sum(1), m)
            return SamplePlan(z, (w / w.sum()).float(), meta={"exhaustive": True, "n_enumerated": z.shape[0]})
        if n_samples * m > MAX_SAMPLED_ENTRIES:
            raise ConfigError(
                f"{self.name} draws its whole plan in memory: {n_samples:,} samples x {m} features "
                f"is more than the limit of {MAX_SAMPLED_ENTRIES:,} coalition entries (about 1.2 GB).",
                f"Use at most {MAX_SAMPLED_ENTRIES // m:,} samples for {m} features{self.too_big_fix}",
            )
        return self._sampled(m, n_samples, generator)

    def streamed_plan(self, n_features: int, n_samples: int, generator: torch.Generator) -> ChunkedPlan:
        """Enumerated small sizes, then independent complement pairs (adaptive sampling).

        The sizes that this selector's fixed plan would enumerate with
        :data:`~removalx_plugins.machinery.streamed_pairs.STREAM_ENUMERATION_SHARE` of ``n_samples`` come first
        (every coalition once, no sampling error); then complement pairs drawn independently
        from the other sizes (:meth:`_stream_size_probs`), so that every prefix of the
        sampled part is an i.i.d. sample (Covert & Lee 2021, Sec. 3.3). Always paired.
        """
        m = self.check_features(n_features)
        sizes = torch.arange(1, m, dtype=torch.float64)
        kernel = (m - 1) / (sizes * (m - sizes))
        kernel /= kernel.sum()
        budget = int(n_samples * STREAM_ENUMERATION_SHARE)
        return PairedSizePlan(
            n_samples,
            m,
            self._stream_size_probs(kernel),
            kernel,
            generator,
            enumerate_sizes=self._enumerated_sizes(m, budget),
            meta=self.stream_meta,
        )

    #: Extra ``meta`` entries of the streamed plan.
    stream_meta: ClassVar[dict[str, str]] = {}

    def _stream_size_probs(self, kernel: torch.Tensor) -> torch.Tensor:
        """Probability of each size ``1 .. F-1`` for a sampled pair: the Shapley kernel's."""
        return kernel

    def _enumerated_sizes(self, m: int, budget: int) -> list[int]:
        """Sizes ``s <= F / 2`` that :meth:`_sampled` enumerates with ``budget`` samples."""
        return list(range(1, self._n_full_sizes(m, budget) + 1)) if budget > 0 else []

    @staticmethod
    def _size_mass(m: int) -> torch.Tensor:
        """Kernel mass of each size pair ``{s, F - s}``, ``s = 1 .. ceil((F - 1) / 2)``, summing to 1."""
        n_sizes = math.ceil((m - 1) / 2)
        n_paired = math.floor((m - 1) / 2)
        sizes = torch.arange(1, n_sizes + 1, dtype=torch.float64)
        mass = (m - 1) / (sizes * (m - sizes))
        mass[:n_paired] *= 2
        return mass / mass.sum()

    def _n_full_sizes(self, m: int, budget: int) -> int:
        """How many size pairs, smallest first, Lundberg & Lee's rule enumerates with ``budget``.

        A size pair is enumerated while its share of the kernel mass still left, times the
        samples still left, covers all of its coalitions.
        """
        mass = self._size_mass(m)
        n_paired = math.floor((m - 1) / 2)
        left = budget
        for i, s in enumerate(range(1, mass.numel() + 1)):
            count = math.comb(m, s) * (2 if s <= n_paired else 1)
            share = mass[i] / mass[i:].sum()
            if left * share < count - 1e-8 or count > left:
                return i
            left -= count
        return int(mass.numel())

    def _sampled(self, m: int, budget: int, generator: torch.Generator) -> SamplePlan:
        n_sizes = math.ceil((m - 1) / 2)
        n_paired = math.floor((m - 1) / 2)
        mass = self._size_mass(m)
        n_full = self._n_full_sizes(m, budget)
        rows: list[torch.Tensor] = []
        weights: list[torch.Tensor] = []
        left = budget
        for i, s in enumerate(range(1, n_full + 1)):
            paired = s <= n_paired
            count = math.comb(m, s) * (2 if paired else 1)
            subsets = subsets_of_size(m, s)
            rows.append(subsets)
            if paired:
                rows.append(1.0 - subsets)
            weights.append(torch.full((count,), float(mass[i] / count), dtype=torch.float64))
            left -= count
        enumerated = sum(r.shape[0] for r in rows)
        if left > 0 and n_full < n_sizes:
            rest = mass[n_full:]
            z, counts = self._draw(m, left, n_full, rest / rest.sum(), generator)
            rows.append(z)
            weights.append(counts / counts.sum() * rest.sum())
        z = torch.cat(rows) if rows else torch.zeros(0, m)
        w = torch.cat(weights) if weights else torch.zeros(0, dtype=torch.float64)
        return SamplePlan(
            z.float(),
            (w / w.sum()).float(),
            meta={"exhaustive": False, "n_enumerated": enumerated, "paired": self.paired},
        )

    def _draw(
        self, m: int, budget: int, first_size: int, probs: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``budget`` distinct coalitions with sizes from the remaining kernel mass, and counts."""
        n_paired = math.floor((m - 1) / 2)
        draws: list[torch.Tensor] = []
        n_unique = 0
        chunk = max(2 * budget, 64)
        for _ in range(1000):
            size_idx = torch.multinomial(probs.float(), chunk, replacement=True, generator=generator)
            sizes = size_idx + first_size + 1
            subsets = random_subsets(sizes, m, generator)
            if self.paired:
                subsets = torch.stack([subsets, 1.0 - subsets], dim=1).reshape(-1, m)
            else:  # the mass of size s covers s and F - s: pick either side at random
                flip = (torch.rand(chunk, generator=generator) < 0.5) & (sizes <= n_paired)
                subsets = torch.where(flip[:, None], 1.0 - subsets, subsets)
            draws.append(subsets)
            all_draws = torch.cat(draws)
            uniq, first, inverse = first_unique_rows(all_draws)
            n_unique = uniq.shape[0]
            if n_unique >= budget:
                cut = int(first[budget - 1])
                counts = torch.bincount(inverse[: cut + 1], minlength=n_unique)[:budget]
                return uniq[:budget], counts.double()
        uniq, first, inverse = first_unique_rows(torch.cat(draws))
        return uniq, torch.bincount(inverse, minlength=uniq.shape[0]).double()


@hookimpl
def removalx_register_feature_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("shapley_kernel", ShapleyKernelConfig, ShapleyKernel)
