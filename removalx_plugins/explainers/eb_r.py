"""``eb_r``: Excitation Backprop through time for CNN-RNNs (Bargal et al., CVPR 2018).

EB with rules for the recurrent layer: on a one-layer :class:`removalx.plugin.ReLULSTM` (the
LSTM with ReLU cell activations of the authors' VGG16-LSTM; ``cnn_lstm:vgg16``,
``zoo:cnn_lstm_ls``) Bargal et al.'s LSTM rules as the authors' released code applies them
(:mod:`removalx_plugins.machinery.eb_lstm`: the signal goes back in time through the cell
state, and to each frame's input through the gates); on a one-layer ``nn.GRU`` removalx's own
analogue (:func:`removalx_plugins.machinery.excitation.gru_step_mwp`; docs/explainers.md,
docs/fidelity.md). A tanh ``nn.LSTM`` is refused. The map is read per frame, by default at the
frame CNN's output that its pooling feeds to the recurrent model (``features`` of
``zoo:cnn_gru`` / ``zoo:cnn_lstm_ls``; :mod:`removalx_plugins.machinery.target_layer`). On a
model without a recurrent layer it equals ``excitation_backprop``.
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

    recurrent: bool = Field(
        True, description="carry the MWP through a one-layer ReLULSTM (Bargal et al.) or nn.GRU (analogue)"
    )


class EBR(ExcitationBackprop):
    """EB-R: EB through the frames of a CNN-RNN."""

    method = "eb_r"


removalx_register_explainers = register_hook("eb_r", EBRConfig, EBR)
