"""``adaptive``: draw samples in rounds and stop when the estimate has converged.

After every round of ``round_size`` samples (and at least ``min_rounds`` rounds) the summary
estimates the standard error (SE) of every feature value from the samples so far; sampling
stops when the SE of every feature (``criterion: all``) or of the ``top_k`` features with the
largest ``|value|`` (``criterion: top_k``) is at most ``tolerance``, or at ``max_samples``.
The estimates come from the summary (``Summary.estimate``):

* ``shapley`` (Kernel SHAP): the variance of independent complement pairs (Covert & Lee,
  "Improving KernelSHAP: Practical Shapley Value Estimation via Linear Regression",
  AISTATS 2021, Sec. 3.3-4), applied to the regression's linearisation, for the sampled
  part of the plan (the smallest and largest sizes are enumerated first, without error);
* ``mask_mean`` (RISE): the running variance of the outputs of the masks keeping a feature;
* ``linear`` (LIME): an online Poisson bootstrap (every sample weighted Poisson(1) per replicate).

The feature selection gives a streamed plan (``FeatureSelector.streamed_plan``) of
``max_samples`` rows, read in rounds: memory does not depend on the number of samples, and
round boundaries are sample counts, so the same seed gives the same stopping point and
result whatever the batch size. ``Attribution.meta["adaptive"]`` reports the samples used,
the SE of every feature and whether the tolerance was met.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import MAX_SAMPLES, FeatureSelector, PluginConfig, SampleSelector, hookimpl


class AdaptiveConfig(PluginConfig):
    """Tolerance, stopping criterion and sample bounds."""

    tolerance: float = Field(
        0.01,
        gt=0,
        description="largest standard error of a feature value to stop at; at most 1e6",
        le=1_000_000,
    )
    criterion: Literal["all", "top_k"] = Field(
        "all", description="'all': every feature's SE; 'top_k': the SE of the top_k features by |value|"
    )
    top_k: int = Field(
        10,
        ge=1,
        description="features checked by criterion top_k; at most the sample cap",
        le=MAX_SAMPLES,
        strict=True,
    )
    max_samples: int = Field(
        10_000,
        ge=2,
        le=MAX_SAMPLES,
        description=f"stop here at the latest (at most {MAX_SAMPLES:,})",
        strict=True,
    )
    round_size: int = Field(
        100,
        ge=2,
        multiple_of=2,
        le=MAX_SAMPLES,
        description="samples per round (even: complement pairs); at most the sample cap",
        strict=True,
    )
    min_rounds: int = Field(
        2,
        ge=2,
        description="rounds before the first check (variance estimates need 2); at most 10,000",
        le=10_000,
        strict=True,
    )


class Adaptive(SampleSelector):
    """Rounds of ``round_size`` samples until the SE criterion holds or ``max_samples``."""

    adaptive = True

    def __init__(self, config: AdaptiveConfig) -> None:
        self.config = config
        self.round_size = config.round_size
        self.min_rounds = config.min_rounds

    def n_samples(self, n_features: int, selector: FeatureSelector) -> int | None:
        return self.config.max_samples

    def converged(self, values: Tensor, se: Tensor) -> bool:
        se = torch.nan_to_num(se.double(), nan=float("inf"))
        if self.config.criterion == "top_k":
            k = min(self.config.top_k, int(values.numel()))
            se = se[values.double().abs().topk(k).indices]
        return bool(se.max() <= self.config.tolerance)


@hookimpl
def removalx_register_sample_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("adaptive", AdaptiveConfig, Adaptive)
