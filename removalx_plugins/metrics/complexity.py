"""``sparseness``, ``complexity`` and ``effective_complexity``: how concentrated a map is.

Sparseness is the Gini index of ``|a|`` (Chalasani et al., ICML 2020, Sec. 5.1; higher is
sparser), complexity the entropy of ``|a| / sum |a|`` (Bhatt et al., IJCAI 2020, Sec. 4; lower
is simpler), effective complexity the number of values with ``|a| / max |a| > eps`` (Nguyen &
Martinez 2020, in Quantus' form; lower is simpler). No forward pass. ``pool=frames`` measures
the concentration in time (per-frame sums of ``|a|``) instead of over all ``T * H * W`` pixels.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field
from torch import Tensor

from removalx.plugin import (
    Attribution,
    Metric,
    PluginConfig,
    complexity,
    effective_complexity,
    hookimpl,
    sparseness,
)

POOL_HELP = "pixels: all T*H*W values; frames: the T per-frame sums of |a| (concentration in time)"


class SparsenessConfig(PluginConfig):
    """Which values the Gini index sees."""

    pool: Literal["pixels", "frames"] = Field("pixels", description=POOL_HELP)


class ComplexityConfig(PluginConfig):
    """Which values the entropy sees."""

    pool: Literal["pixels", "frames"] = Field("pixels", description=POOL_HELP)


class EffectiveComplexityConfig(PluginConfig):
    """Threshold on the max-normalised magnitudes, and which values are counted."""

    eps: float = Field(1e-5, ge=0, le=1, description="count |a| / max|a| > eps (Quantus: 1e-5)")
    pool: Literal["pixels", "frames"] = Field("pixels", description=POOL_HELP)


def _n_values(attribution: Attribution, pool: str) -> int:
    """Number of values the measure sees (``T * H * W`` or ``T``)."""
    shape = tuple(attribution.importance().shape)
    return int(shape[0]) if pool == "frames" else math.prod(shape)


def _result(value: float, cfg: PluginConfig, higher: bool, value_range: list[float]) -> dict[str, Any]:
    return {
        "value": value,
        "value_range": value_range,
        "higher_is_better": higher,
        "preset": None,
        "settings": cfg.model_dump(),
        "n_forward": 0,
    }


class Sparseness(Metric):
    """Gini index of ``|a|`` in [0, 1) (higher is sparser)."""

    higher_is_better = True
    n_forward = 0

    def __init__(self, config: SparsenessConfig) -> None:
        self.config = config

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        value = sparseness(attribution.importance(), pool=self.config.pool)
        return _result(value, self.config, True, [0.0, 1.0])


class Complexity(Metric):
    """Entropy of the fractional contributions, in [0, ln N] nats (lower is simpler)."""

    higher_is_better = False
    n_forward = 0

    def __init__(self, config: ComplexityConfig) -> None:
        self.config = config

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        value = complexity(attribution.importance(), pool=self.config.pool)
        top = math.log(max(1, _n_values(attribution, self.config.pool)))
        return _result(value, self.config, False, [0.0, top])


class EffectiveComplexity(Metric):
    """Count of values above ``eps`` of the maximum, in [0, N] (lower is simpler)."""

    higher_is_better = False
    n_forward = 0

    def __init__(self, config: EffectiveComplexityConfig) -> None:
        self.config = config

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        cfg = self.config
        value = effective_complexity(attribution.importance(), eps=cfg.eps, pool=cfg.pool)
        n = _n_values(attribution, cfg.pool)
        out = _result(float(value), cfg, False, [0.0, float(n)])
        out["fraction"] = value / n if n else 0.0
        return out


@hookimpl
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add("sparseness", SparsenessConfig, Sparseness)
    registry.add("complexity", ComplexityConfig, Complexity)
    registry.add("effective_complexity", EffectiveComplexityConfig, EffectiveComplexity)
