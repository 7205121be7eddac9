"""EB-R through an LSTM: Bargal et al., "Excitation Backprop for RNNs" (CVPR 2018).

The rules are those of the authors' released Caffe code (``sbargal/Caffe-ExcitationBP-RNNs``),
which fixes what the paper's text leaves to the implementation. Its LSTM is unrolled into, per
step ``t``: ``gate_input_t = W_hh h_{t-1} + (W_ih x_t + b)`` (an element-wise sum), then the
LSTM unit (``i, f, o = sigmoid``, ``g = relu``, ``c_t = f c_{t-1} + i g``, ``h_t = o relu(c_t)``;
:class:`removalx.plugin.ReLULSTM`). In excitation-backprop mode:

1. the LSTM unit passes the signal as its ordinary backward does (``LSTMUnit::Backward_eb``):
   with ``P(h_t)`` from above and ``P(c_t)`` from step ``t + 1``,
   ``s_c = P(c_t) + P(h_t) o [c_t > 0]``, ``P(c_{t-1}) = s_c f``, and the four gate inputs get
   ``s_i = s_c g i (1 - i)``, ``s_f = s_c c_{t-1} f (1 - f)``, ``s_o = P(h_t) relu(c_t) o (1 - o)``,
   ``s_g = s_c i [g' > 0]``;
2. the element-wise sum gives the whole signal to its second operand, ``W_ih x_t + b``
   (``Eltwise::Backward_eb``, SUM), so nothing reaches ``h_{t-1}`` through the gates: the
   signal travels back in time through the cell state only;
3. the input projection applies Zhang et al.'s rule (Eq. 5-7, ``InnerProduct::Backward_eb``):
   ``P(x_t) = x_t * (W_ih^+)^T (s / (W_ih^+ x_t))``, zero where the denominator is zero.

The top signal is a one-hot at the classifier's output; in the authors' demo it is put on the
last time step's logits (``propLastFrameOnly``), which is what a model that classifies from its
last hidden state receives.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from removalx.plugin import ReLULSTM, relu_lstm_gates

__all__ = ["LSTMExcitation", "lstm_sequence_mwp", "lstm_step_mwp"]


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), torch.zeros_like(num))


def lstm_step_mwp(
    p_h: Tensor, p_c: Tensor, x: Tensor, h_prev: Tensor, c_prev: Tensor, lstm: ReLULSTM
) -> tuple[Tensor, Tensor]:
    """EB-R through one LSTM step (module docstring, rules 1-3).

    Parameters
    ----------
    p_h, p_c : Tensor
        ``[B, H]`` signal at ``h_t`` (from above) and at ``c_t`` (from step ``t + 1``).
    x, h_prev, c_prev : Tensor
        ``[B, D]`` input and ``[B, H]`` states the step was computed from.
    lstm : ReLULSTM
        The layer (its ``weight_ih_l0`` is the input projection).

    Returns
    -------
    p_x, p_c_prev : Tensor
        The MWP of ``x_t`` and the signal carried to ``c_{t-1}``.
    """
    i, f, g_pre, o, c, _ = relu_lstm_gates(x, h_prev, c_prev, lstm)
    g = torch.relu(g_pre)
    s_c = p_c + p_h * o * (c > 0).to(o.dtype)
    s_i = s_c * g * i * (1 - i)
    s_f = s_c * c_prev * f * (1 - f)
    s_g = s_c * i * (g_pre > 0).to(i.dtype)
    s_o = p_h * torch.relu(c) * o * (1 - o)
    s = torch.cat([s_i, s_f, s_g, s_o], dim=1)  # PyTorch's gate order i, f, g, o
    wp = lstm.weight_ih_l0.detach().clamp_min(0)
    q = _safe_div(s, F.linear(x, wp))
    return x * (q @ wp), s_c * f


def lstm_sequence_mwp(p_out: Tensor, x: Tensor, h0: Tensor, c0: Tensor, lstm: ReLULSTM) -> Tensor:
    """EB-R through a whole sequence: ``p_out`` ``[B, T, H]`` at the outputs -> MWP of ``x`` ``[B, T, D]``.

    The states are recomputed from ``x``, ``h0`` and ``c0`` (``[B, H]``); the signal at ``h_t``
    is only what arrives from above (rule 2: none comes back through the gates).
    """
    with torch.no_grad():
        hs, cs = [h0], [c0]
        for t in range(x.shape[1]):
            *_, c, h = relu_lstm_gates(x[:, t], hs[-1], cs[-1], lstm)
            hs.append(h)
            cs.append(c)
        p_x = torch.zeros_like(x)
        carry = torch.zeros_like(c0)
        for t in range(x.shape[1] - 1, -1, -1):
            p_x[:, t], carry = lstm_step_mwp(p_out[:, t], carry, x[:, t], hs[t], cs[t], lstm)
    return p_x


class LSTMExcitation(torch.autograd.Function):
    """Autograd function whose backward is :func:`lstm_sequence_mwp` (batch-first tensors)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, out: Tensor, h0: Tensor, c0: Tensor, module: ReLULSTM) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, h0, c0)
        ctx.module = module
        return out.clone()

    @staticmethod
    def backward(ctx: Any, p_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, h0, c0 = ctx.saved_tensors
        return lstm_sequence_mwp(p_out, x, h0, c0, ctx.module), None, None, None, None
