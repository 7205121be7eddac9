"""``eb_r``: Excitation Backprop through time for CNN-RNNs (Bargal et al., CVPR 2018).

EB with a rule for a one-layer ``nn.GRU``: the MWP of each hidden state is split between the
frame's input and the previous hidden state, back to the first frame
(:func:`removalx_plugins.machinery.excitation.gru_step_mwp`; Bargal et al. give the rule for LSTMs, the GRU
analogue is removalx's, docs/explainers.md). The map is read per frame, by default at the frame
CNN's output that its pooling feeds to the recurrent model
(``features`` of ``zoo:cnn_gru``; :mod:`removalx_plugins.machinery.target_layer`). On a model
without a recurrent layer it equals ``excitation_backprop``.
"""

from __future__ import annotations

from pydantic import Field

from removalx_plugins.explainers.excitation_backprop import (
    ExcitationBackprop,
    ExcitationConfig,
    register_hook,
)


class EBRConfig(ExcitationConfig):
    """:class:`ExcitationConfig` with ``recurrent`` on."""

    recurrent: bool = Field(True, description="carry the MWP through a one-layer nn.GRU (EB-R)")


class EBR(ExcitationBackprop):
    """EB-R: EB through the frames of a CNN-RNN."""

    method = "eb_r"


removalx_register_explainers = register_hook("eb_r", EBRConfig, EBR)
