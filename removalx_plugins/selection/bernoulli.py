"""``bernoulli``: keep each feature independently with probability ``p``.

The feature selection of 3D LIME and 3D RISE ("removal-based video explanations",
Sec. 3.2, Table 2 "Multiple"): about half of the regions are removed in each sample.

Plans are lazy: rows are drawn chunk by chunk when the pipeline reads them, so memory does
not depend on the number of samples. Row ``i`` is the same as in one
``torch.rand(S, F, generator=generator) < p`` call at plan time: the plan saves the
generator's state and restarts from it at every reading, and torch's CPU generator fills a
tensor element by element in order, so consecutive ``torch.rand(k, F)`` calls continue
exactly where the previous chunk stopped (checked by the tests for several chunk sizes).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from pydantic import Field

from removalx.plugin import (
    MAX_ENUMERATE_FEATURES,
    ComputedPlan,
    FeatureSelector,
    PlanChunk,
    PluginConfig,
    UnweightedLazyPlan,
    all_coalitions,
    hookimpl,
)

__all__ = ["Bernoulli", "BernoulliConfig", "BernoulliPlan", "all_coalitions_plan"]


class BernoulliConfig(PluginConfig):
    """Keep probability of each feature."""

    p: float = Field(0.5, gt=0, lt=1, description="probability of keeping a feature")


class BernoulliPlan(UnweightedLazyPlan):
    """``S`` rows of independent Bernoulli(``p``) keeps, drawn when read.

    Parameters
    ----------
    n_samples, n_features : int
        Shape ``S x F`` of the plan.
    p : float
        Keep probability.
    generator : torch.Generator
        Its current state is saved; the generator itself is neither used nor advanced.
    """

    def __init__(self, n_samples: int, n_features: int, p: float, generator: torch.Generator) -> None:
        super().__init__(n_samples, n_features, {"p": float(p)})
        self.p = float(p)
        self._device = generator.device
        self._state = generator.get_state()

    def chunks(self, size: int) -> Iterator[PlanChunk]:
        gen = torch.Generator(device=self._device)
        gen.set_state(self._state)
        for start in range(0, self._n, size):
            k = min(size, self._n - start)
            yield PlanChunk(start, (torch.rand(k, self._f, generator=gen) < self.p).float(), None)


def all_coalitions_plan(n_features: int, meta: dict[str, object]) -> ComputedPlan:
    """All ``2**F`` coalitions, the rows of :func:`removalx.core.coalitions.all_coalitions`, computed when read."""
    if n_features > MAX_ENUMERATE_FEATURES:
        all_coalitions(n_features)  # raises the ConfigError for too many features to enumerate
    bits = torch.arange(n_features)

    def make(index: torch.Tensor) -> torch.Tensor:
        return ((index[:, None] >> bits) & 1).float()

    return ComputedPlan(2**n_features, n_features, make, meta)


class Bernoulli(FeatureSelector):
    """Independent Bernoulli(``p``) coalitions; exhaustive = all ``2**F`` coalitions."""

    def __init__(self, config: BernoulliConfig) -> None:
        self.p = config.p

    def max_samples(self, n_features: int) -> int | None:
        return 2**n_features if n_features <= MAX_ENUMERATE_FEATURES else None

    def plan(self, n_features: int, n_samples: int | None, generator: torch.Generator) -> UnweightedLazyPlan:
        if n_samples is None:
            return all_coalitions_plan(n_features, meta={"p": self.p, "exhaustive": True})
        return BernoulliPlan(n_samples, n_features, self.p, generator)


@hookimpl
def removalx_register_feature_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("bernoulli", BernoulliConfig, Bernoulli)
