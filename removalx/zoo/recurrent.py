"""A one-layer LSTM with ReLU cell activations, the recurrent layer of the CNN-LSTM models.

Bargal et al., "Excitation Backprop for RNNs" (CVPR 2018), explain a VGG16-LSTM whose LSTM
uses ReLU where the usual LSTM uses tanh (the authors' released Caffe code, ``LSTMUnit``:
``g = relu(.)``, ``h = o * relu(c)``), because Excitation Backprop needs non-negative
activations; the STEP journal (Li et al., Sec. V-A) makes the same change "in order to adapt to
the requirement of" EB-R. :class:`ReLULSTM` is that cell with PyTorch's parameter layout:

``[i, f, g, o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh`` (row blocks of ``4H``),
``i, f, o = sigmoid(.)``, ``g = relu(.)``, ``c_t = f c_{t-1} + i g``, ``h_t = o relu(c_t)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["ReLULSTM", "relu_lstm_gates"]


def relu_lstm_gates(
    x: Tensor, h_prev: Tensor, c_prev: Tensor, lstm: ReLULSTM
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One step of :class:`ReLULSTM` on ``[B, D]``, ``[B, H]``, ``[B, H]``.

    Returns
    -------
    i, f, g_pre, o, c, h : Tensor
        The gates (``g_pre`` before its ReLU), the new cell state and the new hidden state.
    """
    hid = lstm.hidden_size
    z = x @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + h_prev @ lstm.weight_hh_l0.T + lstm.bias_hh_l0
    i = torch.sigmoid(z[:, :hid])
    f = torch.sigmoid(z[:, hid : 2 * hid])
    g_pre = z[:, 2 * hid : 3 * hid]
    o = torch.sigmoid(z[:, 3 * hid :])
    c = f * c_prev + i * torch.relu(g_pre)
    return i, f, g_pre, o, c, o * torch.relu(c)


class ReLULSTM(nn.Module):
    """One-layer, unidirectional LSTM with ReLU cell input and output activations.

    Parameters
    ----------
    input_size : int
        Features ``D`` of ``x_t``.
    hidden_size : int
        Hidden units ``H``.
    batch_first : bool, default True
        Input ``[B, T, D]`` (else ``[T, B, D]``), like ``nn.LSTM``.

    Notes
    -----
    ``forward(x, (h0, c0)=None)`` returns ``(out, (h_T, c_T))`` with ``out`` ``[B, T, H]``
    (batch first) and ``h_T``, ``c_T`` ``[1, B, H]``, as ``nn.LSTM`` does. Parameters are named
    and initialised like ``nn.LSTM``'s (uniform in ``+-1/sqrt(H)``).
    """

    def __init__(self, input_size: int, hidden_size: int, batch_first: bool = True) -> None:
        super().__init__()
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.batch_first = bool(batch_first)
        h = self.hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(4 * h, self.input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(4 * h, h))
        self.bias_ih_l0 = nn.Parameter(torch.empty(4 * h))
        self.bias_hh_l0 = nn.Parameter(torch.empty(4 * h))
        bound = 1.0 / math.sqrt(h)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        seq = x if self.batch_first else x.transpose(0, 1)
        b, t_len, _ = seq.shape
        if state is None:
            h = seq.new_zeros(b, self.hidden_size)
            c = seq.new_zeros(b, self.hidden_size)
        else:
            h, c = state[0][0], state[1][0]
        outs = []
        for t in range(t_len):
            *_, c, h = relu_lstm_gates(seq[:, t], h, c, self)
            outs.append(h)
        out = torch.stack(outs, 1)
        if not self.batch_first:
            out = out.transpose(0, 1)
        return out, (h[None], c[None])

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, batch_first={self.batch_first}, activation=relu"
