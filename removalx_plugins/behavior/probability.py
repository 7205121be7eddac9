"""``probability``: softmax probability of the target class.

The model behavior of all six recipes in "removal-based video explanations"
(Sec. 3.5, Table 2 "Prediction").
"""

from __future__ import annotations

from torch import Tensor

from removalx.plugin import Behavior, BehaviorConfig, hookimpl


class ProbabilityConfig(BehaviorConfig):
    """Only the option every behavior has (``incremental``, see BehaviorConfig)."""


class Probability(Behavior):
    """``softmax(logits)[target]``."""

    def __init__(self, config: ProbabilityConfig) -> None:
        self.config = config

    def score(self, logits: Tensor, target: int) -> Tensor:
        return logits.float().softmax(dim=-1)[:, target]


@hookimpl
def removalx_register_behaviors(registry):  # type: ignore[no-untyped-def]
    registry.add("probability", ProbabilityConfig, Probability)
