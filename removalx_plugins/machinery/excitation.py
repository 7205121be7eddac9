"""Excitation Backprop: marginal winning probabilities propagated top-down with module hooks.

Zhang et al., "Top-down Neural Attention by Excitation Backprop" (IJCV 2018), Sec. 3, Eq. 2-7:
a neuron's marginal winning probability (MWP) ``P(a_j)`` is passed to the neurons ``a_i``
below it in proportion to their *excitatory* input,

``P(a_i) = sum_j a_i w_ij^+ / (sum_i' a_i' w_i'j^+) P(a_j)``  (``w^+ = max(w, 0)``, ``a >= 0``),

starting from a one-hot ``P`` at the target output unit. The map is the MWP of a chosen layer's
output neurons summed over its channels. Bargal et al., "Excitation Backprop for RNNs"
(CVPR 2018) carry the MWP back through time (EB-R): their LSTM rules, for the ReLU LSTM of
their code, are in :mod:`removalx_plugins.machinery.eb_lstm`; :func:`gru_step_mwp` is removalx's
analogue for a GRU (docs/explainers.md, "Excitation Backprop").

How it runs: the parameters are frozen and the output of the reading layer is made a leaf
that requires a gradient, so autograd only records what lies above it. Every supported module
above it is replaced, through a forward hook, by an autograd function whose backward is its EB
rule; a :class:`torch.overrides.TorchFunctionMode` sees the Python code between modules
(reshapes, ``cat``, indexing pass the MWP unchanged; an element-wise sum ``a + b`` splits it
with the EB rule). Anything else met above the reading layer is reported as unsupported in one
:class:`~removalx.errors.ModelError` listing the layers it met.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from removalx.plugin import ModelError, ReLULSTM
from removalx_plugins.machinery.eb_lstm import LSTMExcitation

__all__ = ["AFFINE", "PASS", "PLAIN", "Excitation", "gru_step_mwp", "mwp_linear", "safe_div"]


def _nd(*names: str) -> tuple[type[nn.Module], ...]:
    """``nn.<name>1d``, ``nn.<name>2d`` and ``nn.<name>3d`` of every name, in that order."""
    return tuple(getattr(nn, f"{name}{d}d") for name in names for d in (1, 2, 3))


AFFINE = (*_nd("Conv"), nn.Linear)
POOL_AVG = _nd("AvgPool", "AdaptiveAvgPool")
#: Modules that pass the MWP of a neuron unchanged to the neuron below it (element-wise layers).
PASS = (*_nd("BatchNorm"), nn.ReLU)
#: Modules whose ordinary backward is already the EB rule (routing, winner-take-all pooling).
PLAIN = (nn.Flatten, nn.Identity, nn.Dropout, nn.Dropout2d, nn.Dropout3d, *_nd("MaxPool", "AdaptiveMaxPool"))
RECURRENT = (nn.GRU, nn.LSTM, nn.RNN, ReLULSTM)

#: Functions between modules that only move values around: the MWP follows the values.
ROUTING = {
    "view", "reshape", "flatten", "unflatten", "transpose", "permute", "contiguous", "squeeze",
    "unsqueeze", "__getitem__", "cat", "concat", "stack", "split", "chunk", "unbind", "select",
    "narrow", "view_as", "reshape_as", "clone", "float", "to", "type_as", "dim", "size", "numel",
    "__get__", "__len__", "__iter__", "detach", "requires_grad_", "register_hook", "relu", "relu_",
    "dropout", "identity", "movedim", "swapaxes",
}  # fmt: skip
SUM = {"add", "__add__", "__radd__", "__iadd__", "add_"}


def safe_div(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` where ``den > 0``, else 0 (a neuron without excitatory input passes nothing)."""
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), torch.zeros_like(num))


def mwp_linear(fn: Any, x: Tensor, p_out: Tensor) -> Tensor:
    """EB rule through a linear map ``fn`` with non-negative weights: ``x * fn^T(p / fn(x))``.

    ``fn`` takes the (non-negative) input and applies the layer with its excitatory weights
    ``w^+`` and no bias (Zhang et al. Eq. 5-7). Returns the input's MWP, same shape as ``x``.
    """
    with torch.enable_grad():
        xx = x.detach().requires_grad_(True)
        z = fn(xx)
        (c,) = torch.autograd.grad(z, xx, safe_div(p_out, z.detach()))
    return x * c


@dataclass
class _State:
    dual: bool = False
    recurrent: bool = False
    residual: str = "proportional"
    depth: int = 0
    inside: bool = False
    stack: list[str] = field(default_factory=list)
    reads: list[Tensor] = field(default_factory=list)
    affine_calls: list[nn.Module] = field(default_factory=list)
    met: dict[str, str] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)

    def where(self) -> str:
        return self.stack[-1] if self.stack else "<top>"


class _Affine(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, out: Tensor, module: nn.Module, state: _State) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.module, ctx.state = module, state
        return out.clone()

    @staticmethod
    def backward(ctx: Any, p_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        m, state = ctx.module, ctx.state
        w = m.weight.detach()
        if state.dual and state.affine_calls and m is state.affine_calls[-1]:
            w = -w  # the dual classifier: the target's weights negated (Zhang et al. Sec. 3.2)
        wp = w.clamp_min(0)
        if isinstance(m, nn.Linear):
            fn = lambda v: F.linear(v, wp)  # noqa: E731
        else:
            fn = lambda v: m._conv_forward(v, wp, None)  # noqa: E731
        return mwp_linear(fn, x.clamp_min(0), p_out), None, None, None


class _AvgPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, out: Tensor, module: nn.Module) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.module = module
        return out.clone()

    @staticmethod
    def backward(ctx: Any, p_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return mwp_linear(ctx.module, x.clamp_min(0), p_out), None, None


class _Pass(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, out: Tensor) -> Tensor:  # type: ignore[override]
        return out.clone()

    @staticmethod
    def backward(ctx: Any, p_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        return p_out, None


class _Sum(torch.autograd.Function):
    """``a + b`` (same shape): the MWP is split in proportion to ``a^+`` and ``b^+`` (or all to ``a``)."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, how: str) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(a, b)
        ctx.how = how
        return a + b

    @staticmethod
    def backward(ctx: Any, p_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        a, b = ctx.saved_tensors
        if ctx.how == "first":
            return p_out, torch.zeros_like(p_out), None
        ap, bp = a.clamp_min(0), b.clamp_min(0)
        q = safe_div(p_out, ap + bp)
        return q * ap, q * bp, None


def gru_step_mwp(p_h: Tensor, x: Tensor, h_prev: Tensor, gru: nn.GRU) -> tuple[Tensor, Tensor]:
    """EB-R through one GRU step: the MWP of ``h_t`` -> (MWP of ``x_t``, MWP of ``h_{t-1}``).

    ``h_t = (1 - z) n + z h_{t-1}``, ``n = tanh(W_in x + b_in + r (W_hn h_{t-1} + b_hn))``
    (PyTorch's GRU). The gates ``r``, ``z`` act as fixed non-negative connection weights:

    1. ``P(h_t)`` is split between the candidate ``n`` and the carried state in proportion to
       ``((1 - z) n)^+`` and ``(z h_{t-1})^+`` (the EB rule on the gated sum);
    2. ``P(n)`` goes to ``x_t`` and ``h_{t-1}`` in proportion to their excitatory input
       ``W_in^+ x^+`` and ``r W_hn^+ h_{t-1}^+`` (Zhang et al. Eq. 5-7 on the concatenated input).

    No MWP flows into the gates. ``p_h``, ``x``, ``h_prev``: ``[B, H]``, ``[B, D]``, ``[B, H]``.
    """
    hid = gru.hidden_size
    zeros = torch.zeros(3 * hid, dtype=x.dtype, device=x.device)
    w_ih: Tensor = gru.get_parameter("weight_ih_l0").detach()
    w_hh: Tensor = gru.get_parameter("weight_hh_l0").detach()
    b_ih: Tensor = gru.get_parameter("bias_ih_l0").detach() if gru.bias else zeros
    b_hh: Tensor = gru.get_parameter("bias_hh_l0").detach() if gru.bias else zeros
    gi = F.linear(x, w_ih, b_ih)
    gh = F.linear(h_prev, w_hh, b_hh)
    r = torch.sigmoid(gi[:, :hid] + gh[:, :hid])
    z = torch.sigmoid(gi[:, hid : 2 * hid] + gh[:, hid : 2 * hid])
    n = torch.tanh(gi[:, 2 * hid :] + r * gh[:, 2 * hid :])
    a, c = ((1 - z) * n).clamp_min(0), (z * h_prev).clamp_min(0)
    q = safe_div(p_h, a + c)
    p_n, p_carry = q * a, q * c
    wx, wh = w_ih[2 * hid :].clamp_min(0), w_hh[2 * hid :].clamp_min(0)
    xp, hp = x.clamp_min(0), h_prev.clamp_min(0)
    s = safe_div(p_n, F.linear(xp, wx) + r * F.linear(hp, wh))
    return xp * (s @ wx), p_carry + hp * ((s * r) @ wh)


class _GRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, out: Tensor, h0: Tensor, module: nn.GRU) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, out, h0)
        ctx.module = module
        return out.clone()

    @staticmethod
    def backward(ctx: Any, p_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, out, h0 = ctx.saved_tensors
        m: nn.GRU = ctx.module
        if not m.batch_first:  # [T, B, ...] -> [B, T, ...]
            x, out, p_out = x.transpose(0, 1), out.transpose(0, 1), p_out.transpose(0, 1)
        t_len = x.shape[1]
        p_x = torch.zeros_like(x)
        carry = torch.zeros_like(out[:, 0])
        for t in range(t_len - 1, -1, -1):
            h_prev = out[:, t - 1] if t > 0 else h0
            p_x[:, t], carry = gru_step_mwp(p_out[:, t] + carry, x[:, t], h_prev, m)
        if not m.batch_first:
            p_x = p_x.transpose(0, 1)
        return p_x, None, None, None


def _lstm_outputs(m: ReLULSTM, inputs: Any, out: Any) -> Any:
    """``(seq, (h_T, c_T))`` of a :class:`ReLULSTM` with the EB-R rule on the sequence path."""
    x = inputs[0] if m.batch_first else inputs[0].transpose(0, 1)
    seq = out[0] if m.batch_first else out[0].transpose(0, 1)
    state = inputs[1] if len(inputs) > 1 and isinstance(inputs[1], tuple) else None
    zeros = torch.zeros(x.shape[0], m.hidden_size, dtype=x.dtype, device=x.device)
    h0, c0 = (zeros, zeros) if state is None else (state[0][0].detach(), state[1][0].detach())
    new = LSTMExcitation.apply(x, seq.detach(), h0, c0, m)
    last = new[:, -1]
    if not m.batch_first:
        new = new.transpose(0, 1)
    return new, (last[None], out[1][1].detach())


def _requires(args: Any) -> bool:
    return any(isinstance(a, Tensor) and a.requires_grad for a in tree_flatten(args)[0])


class _Mode(TorchFunctionMode):
    """Sees the torch calls between modules above the reading layer."""

    def __init__(self, state: _State) -> None:
        super().__init__()
        self.state = state

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        st = self.state
        if st.inside and st.depth == 0 and _requires((args, kwargs)):
            name = getattr(func, "__name__", str(func))
            if name in SUM and len(args) == 2 and not kwargs:
                a, b = args
                if isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape:
                    return _Sum.apply(a, b, st.residual)
                if (
                    not (isinstance(a, Tensor) and isinstance(b, Tensor))
                    or a.requires_grad != b.requires_grad
                ):
                    return func(*args, **kwargs)  # a constant or broadcast bias: EB ignores biases
            if name not in ROUTING:
                st.unsupported.setdefault(f"{st.where()}: {name}", name)
        return func(*args, **kwargs)


class Excitation:
    """One EB forward with the rules installed; :meth:`mwp` then gives the reading layer's MWP.

    Parameters
    ----------
    module : nn.Module
        The model's module (eval mode).
    layer : str
        Dotted name of the module whose output neurons' MWP is read.
    recurrent : bool
        Allow ``nn.GRU`` above the reading layer (EB-R); plain EB refuses recurrent layers.
    residual : {"proportional", "first"}
        How an element-wise sum ``a + b`` splits the MWP: by ``a^+ : b^+``, or all to ``a``.
    """

    def __init__(self, module: nn.Module, layer: str, recurrent: bool, residual: str) -> None:
        self.module = module
        self.layer = layer
        self.state = _State(recurrent=recurrent, residual=residual)
        self.logits: Tensor | None = None

    @contextmanager
    def installed(self) -> Iterator[_State]:
        """Freeze the parameters, hook every module and enter the function mode."""
        st = self.state
        handles: list[Any] = []
        frozen = [p for p in self.module.parameters() if p.requires_grad]
        modules = dict(self.module.named_modules())
        target = modules[self.layer]

        def pre(name: str, m: nn.Module) -> Any:
            def hook(_m: nn.Module, _inputs: Any) -> None:
                st.stack.append(name or "<model>")
                if m is self.module:
                    st.inside = True
                if st.depth or m is target:
                    st.depth += 1
                elif self._ruled(m) and _requires(_inputs):
                    st.depth += 1
                    self._check(name, m)

            return hook

        def post(name: str, m: nn.Module) -> Any:
            def hook(_m: nn.Module, inputs: Any, out: Any) -> Any:
                st.stack.pop()
                if m is self.module:
                    st.inside = False
                if m is target:
                    st.depth -= 1
                    if st.depth == 0:
                        if not isinstance(out, Tensor):
                            raise ModelError(
                                f"excitation backprop: layer {self.layer[:100]!r} returned "
                                f"{type(out).__name__}, not a tensor.",
                                "Choose a convolution layer or block (explainer.layer).",
                            )
                        leaf = out.detach().requires_grad_(True)
                        st.reads.append(leaf)
                        return leaf
                    return None
                if not st.depth:
                    return None
                st.depth -= 1
                if st.depth or not _requires(inputs):
                    return None
                return self._apply(m, inputs, out)

            return hook

        try:
            for p in frozen:
                p.requires_grad_(False)
            for name, m in modules.items():
                handles.append(m.register_forward_pre_hook(pre(name, m)))
                handles.append(m.register_forward_hook(post(name, m)))
            with torch.enable_grad(), _Mode(st):
                yield st
        finally:
            for h in handles:
                h.remove()
            for p in frozen:
                p.requires_grad_(True)
            st.depth, st.inside, st.stack = 0, False, []

    def _ruled(self, m: nn.Module) -> bool:
        return isinstance(m, AFFINE + POOL_AVG + PASS + PLAIN + RECURRENT)

    def _check(self, name: str, m: nn.Module) -> None:
        st = self.state
        label = name or "<model>"
        if isinstance(m, RECURRENT) and not (isinstance(m, (nn.GRU, ReLULSTM)) and st.recurrent):
            if isinstance(m, (nn.GRU, ReLULSTM)):
                why = "recurrent layer: use the eb_r explainer"
            elif isinstance(m, nn.LSTM):
                why = "EB-R's LSTM rule needs ReLU cell activations: build the model with removalx's ReLULSTM"
            else:
                why = "no EB-R rule"
            st.unsupported[label] = f"{type(m).__name__} ({why})"
        elif isinstance(m, nn.GRU) and (m.num_layers != 1 or m.bidirectional or m.proj_size):
            st.unsupported[label] = "GRU with num_layers > 1, bidirectional or proj_size (EB-R: one layer)"
        elif m.training and isinstance(m, (*PASS[:3], nn.Dropout, nn.Dropout2d, nn.Dropout3d)):
            st.unsupported[label] = f"{type(m).__name__} in training mode (call model.eval())"
        else:
            st.met[label] = type(m).__name__

    def _apply(self, m: nn.Module, inputs: Any, out: Any) -> Any:
        st = self.state
        x = inputs[0] if inputs else None
        if not isinstance(x, Tensor):
            return None
        if isinstance(m, AFFINE):
            st.affine_calls.append(m)
            return _Affine.apply(x, out.detach(), m, st)
        if isinstance(m, POOL_AVG):
            return _AvgPool.apply(x, out.detach(), m)
        if isinstance(m, PASS):
            return _Pass.apply(x, out.detach())
        if isinstance(m, nn.GRU) and st.recurrent and isinstance(out, tuple):
            seq = out[0]
            h0 = inputs[1] if len(inputs) > 1 and isinstance(inputs[1], Tensor) else None
            b = x.shape[0] if m.batch_first else x.shape[1]
            h0v = torch.zeros(b, m.hidden_size, dtype=x.dtype, device=x.device) if h0 is None else h0[0]
            new = _GRU.apply(x, seq.detach(), h0v.detach(), m)
            last = new[:, -1] if m.batch_first else new[-1]
            return new, last[None]
        if isinstance(m, ReLULSTM) and st.recurrent and isinstance(out, tuple):
            return _lstm_outputs(m, inputs, out)
        return None  # PLAIN: the ordinary backward routes the MWP

    def forward(self, run: Any) -> Tensor:
        """Run ``run()`` (the model's forward) with the rules installed; returns the logits."""
        with self.installed() as st:
            logits = run()
        if not st.reads:
            raise ModelError(
                f"excitation backprop: layer {self.layer[:100]!r} was not called in the forward pass.",
                "Set explainer.layer to a module the model runs (print(model.module) lists them).",
            )
        if st.unsupported or not logits.requires_grad:
            bad = "; ".join(
                f"{k} ({v})" if k.split(": ")[-1] != v else k for k, v in list(st.unsupported.items())[:20]
            )
            seen = ", ".join(f"{k} ({v})" for k, v in list(st.met.items())[:30]) or "none"
            raise ModelError(
                "excitation backprop has no rule for what the model computes above layer "
                f"{self.layer[:100]!r}: {bad or 'the logits do not depend on it'}. Layers it met with a "
                f"rule: {seen}.",
                "Supported: Conv1d/2d/3d, Linear, average/max/adaptive pooling, ReLU, BatchNorm (eval), "
                "Flatten, Dropout (eval), element-wise sums, reshapes and, with eb_r, a one-layer GRU or ReLULSTM. "
                "Read the map at a later layer (explainer.layer) or use grad_cam.",
            )
        self.logits = logits
        return logits

    def mwp(self, target: int, dual: bool = False) -> Tensor:
        """MWP of the reading layer's output for a one-hot ``P`` at ``target`` (one backward pass).

        ``dual=True`` negates the classifier's weights (the last Linear/Conv above the layer).
        Returns the reads concatenated along the batch axis (frame-wise calls stacked in time).
        """
        assert self.logits is not None
        st = self.state
        st.dual = dual
        onehot = torch.zeros_like(self.logits)
        onehot[:, target] = 1.0
        try:
            grads = torch.autograd.grad(self.logits, st.reads, onehot, retain_graph=True, allow_unused=True)
        finally:
            st.dual = False
        return torch.cat(
            [torch.zeros_like(r) if g is None else g for r, g in zip(st.reads, grads, strict=True)]
        )
