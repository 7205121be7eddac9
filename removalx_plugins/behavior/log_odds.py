"""``log_odds``: ``log p / (1 - p)`` of the target class, computed stably from logits.

A model-behavior option of "removal-based video explanations" (Sec. 3.5):
``logit_target - logsumexp(other logits)``, finite even when ``p`` rounds to 0 or 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from removalx.plugin import Behavior, BehaviorConfig, ConfigError, hookimpl


class LogOddsConfig(BehaviorConfig):
    """Only the option every behavior has (``incremental``, see BehaviorConfig)."""


class LogOdds(Behavior):
    """``logit_t - log sum_{k != t} exp(logit_k)``."""

    def __init__(self, config: LogOddsConfig) -> None:
        self.config = config

    def score(self, logits: Tensor, target: int) -> Tensor:
        x = logits.float()
        if x.shape[1] < 2:
            raise ConfigError("log_odds needs at least two classes.", "Use behavior probability or logit.")
        others = torch.cat([x[:, :target], x[:, target + 1 :]], dim=1)
        return x[:, target] - torch.logsumexp(others, dim=1)


@hookimpl
def removalx_register_behaviors(registry):  # type: ignore[no-untyped-def]
    registry.add("log_odds", LogOddsConfig, LogOdds)
