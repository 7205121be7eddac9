"""``min_preservation_ratio``: v* of STEP's Eq. 4 per clip (STEP WACV Sec. 4.2, Tab. 2).

STEP's second step (journal Sec. III-A, Eq. 4) is ``v* = min {v : Phi_c(M_v (x) X) >= Phi_0}``
over the ratios whose masks ``M_v`` were optimised. The WACV paper compares networks by the mean
``v*`` over a dataset "without decreasing the output probabilities" (Sec. 4.2, Tab. 2: a network
that needs a larger share of the clip to keep its prediction has a larger ``v*``). This metric
reads the extremal explainer's optimised ratios and rewards (``meta["areas"]``,
``meta["area_rewards"]``, ``meta["clean_reward"]``): it costs no forward pass, and several
bounds can be scored on one set of explanations. Attributions of other methods (no optimised
masks) score NaN.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field
from torch import Tensor

from removalx.plugin import Attribution, Metric, PluginConfig, hookimpl
from removalx_plugins.machinery.min_ratio import min_preservation_ratio, phi0_bound


class MinPreservationRatioConfig(PluginConfig):
    """The bound ``Phi_0`` of Eq. 4."""

    phi0: float = Field(
        1.0,
        gt=0,
        description="Phi_0 (with relative: the share of the clean clip's Phi_c to keep); at most 1e6",
        le=1_000_000,
    )
    relative: bool = Field(
        True,
        description="Phi_0 = phi0 x Phi_c(clean clip) (WACV Sec. 4.2: 'without decreasing the output "
        "probabilities'); false: phi0 is the reward bound itself",
    )


class MinPreservationRatio(Metric):
    """``v*`` of Eq. 4 (lower: the model needs less of the clip)."""

    higher_is_better = False

    def __init__(self, config: MinPreservationRatioConfig) -> None:
        self.config = config

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        cfg = self.config
        meta = attribution.meta
        areas, rewards = meta.get("areas"), meta.get("area_rewards")
        base = {"higher_is_better": False, "phi0": cfg.phi0, "relative": cfg.relative, "n_forward": 0}
        if not areas or not rewards:
            return {"value": math.nan, **base, "applicable": False}
        bound = phi0_bound(cfg.phi0, cfg.relative, meta.get("clean_reward"))
        r = min_preservation_ratio([float(v) for v in areas], [float(x) for x in rewards], bound)
        return {
            "value": r.v_star,
            **base,
            "applicable": True,
            "bound": r.phi0,
            "reached": r.reached,
            "areas": [float(v) for v in areas],
            "area_rewards": [float(x) for x in rewards],
        }


@hookimpl
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add("min_preservation_ratio", MinPreservationRatioConfig, MinPreservationRatio)
