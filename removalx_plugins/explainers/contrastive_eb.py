"""``contrastive_eb``: contrastive Excitation Backprop (Zhang et al., IJCV 2018, Sec. 3.2).

The map of the target minus the map of its *dual* unit, the classifier whose target weights
are negated (its excitatory connections are the target's inhibitory ones); everything below the
classifier is shared, so the difference is the MWP of ``P_target - P_dual`` propagated with the
EB rules. Two backward passes after one forward pass. The positive part is kept (``relu``).
"""

from __future__ import annotations

from pydantic import Field

from removalx_plugins.explainers.excitation_backprop import (
    ExcitationBackprop,
    ExcitationConfig,
    register_hook,
)


class ContrastiveEBConfig(ExcitationConfig):
    """:class:`ExcitationConfig` with ``contrastive`` and ``relu`` on."""

    contrastive: bool = Field(True, description="subtract the MWP map of the dual (negated) classifier")
    relu: bool = Field(True, description="keep only the positive part of the contrastive map")


class ContrastiveEB(ExcitationBackprop):
    """Contrastive EB: EB(target) - EB(dual), positive part."""

    method = "contrastive_eb"


removalx_register_explainers = register_hook("contrastive_eb", ContrastiveEBConfig, ContrastiveEB)
