"""``logit``: the raw logit of the target class.

A model-behavior option of "removal-based video explanations" (Sec. 3.5); linear in
the last layer, so additive attributions of the logit are exact for linear heads.
"""

from __future__ import annotations

from torch import Tensor

from removalx.plugin import Behavior, BehaviorConfig, hookimpl


class LogitConfig(BehaviorConfig):
    """Only the option every behavior has (``incremental``, see BehaviorConfig)."""


class Logit(Behavior):
    """``logits[target]``."""

    def __init__(self, config: LogitConfig) -> None:
        self.config = config

    def score(self, logits: Tensor, target: int) -> Tensor:
        return logits.float()[:, target]


@hookimpl
def removalx_register_behaviors(registry):  # type: ignore[no-untyped-def]
    registry.add("logit", LogitConfig, Logit)
