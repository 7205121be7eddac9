"""Incremental inference: replay a recorded forward pass, recomputing only what a box changes.

Krypton (Nakandala et al., "Incremental and Approximate Inference for Faster Occlusion-based
Deep CNN Explanations", SIGMOD 2019, Sec. 3.1-3.2): when a batch of inputs differs from a
reference input only inside a box per sample, each layer's output differs from the cached
reference output only inside the propagated box (:func:`~removalx.incremental.boxes.window_output_box`).
Convolutions and pooling recompute that box from the cached input around it (the window's
halo, zero- or minus-infinity padding outside the map); element-wise operations (batch norm
in eval mode, activations, arithmetic with per-channel constants, residual additions over
the union of the operands' boxes) run on the boxes only. Every other operation, and every
sample whose box covers (almost) the whole map, sees the full tensors (the reference with the
boxes pasted in) and runs as usual, so the result equals the full forward pass up to float
rounding. A model with any operation outside the allow-list of local operations before the
point where its computation becomes global (indexing by computed indices, sorting, ...) is
refused (:mod:`removalx.incremental.locality`); :meth:`IncrementalModel.check` also compares
one perturbed batch with the full forward pass before the engine is used.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils._pytree import tree_flatten, tree_unflatten

from removalx.incremental.boxes import Box, changed_boxes, is_empty, union, volume, window_output_box
from removalx.incremental.locality import unsafe_operation
from removalx.incremental.trace import Graph, Op, Ref, TraceUnsupported, func_name, record

__all__ = ["IncrementalModel", "TraceUnsupported"]

#: A sample whose box covers at least this fraction of a map is recomputed over the whole map.
DEFAULT_FULL_FRACTION = 0.9
#: After its first batch the engine turns itself off when it saved less than this fraction of
#: the multiply-adds (the bookkeeping would then cost more than it saves).
MIN_SAVING = 0.25

_CONV = {"conv1d": 1, "conv2d": 2, "conv3d": 3}
_MAXPOOL = {
    "max_pool1d": 1,
    "max_pool2d": 2,
    "max_pool3d": 3,
    "_max_pool1d": 1,
    "_max_pool2d": 2,
    "_max_pool3d": 3,
}
_AVGPOOL = {"avg_pool1d": 1, "avg_pool2d": 2, "avg_pool3d": 3}
_UNARY = frozenset(
    {"relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "gelu", "silu", "elu", "elu_", "hardtanh"}
    | {"hardtanh_", "hardswish", "hardsigmoid", "sigmoid", "sigmoid_", "tanh", "tanh_", "mish", "softplus"}
    | {"batch_norm", "float", "contiguous", "clone", "dropout", "dropout2d", "dropout3d", "neg", "abs", "exp"}
)
#: Binary element-wise operations: name -> (out-of-place function, operands swapped).
_BINARY: dict[str, tuple[Callable[..., Tensor], bool]] = {
    **{n: (torch.add, False) for n in ("add", "add_", "__add__", "__iadd__")},
    "__radd__": (torch.add, True),
    **{n: (torch.sub, False) for n in ("sub", "sub_", "subtract", "__sub__", "__isub__")},
    "__rsub__": (torch.sub, True),
    **{n: (torch.mul, False) for n in ("mul", "mul_", "multiply", "__mul__", "__imul__")},
    "__rmul__": (torch.mul, True),
    **{
        n: (torch.div, False) for n in ("div", "div_", "divide", "true_divide", "__truediv__", "__itruediv__")
    },
    "__rtruediv__": (torch.div, True),
}


def _arguments(*required: str, **optional: Any) -> Callable[..., dict[str, Any]]:
    """``bind(*args, **kwargs) -> {name: value}`` by a signature: ``required``, then ``optional`` with defaults.

    A call the signature does not accept raises ``TypeError``, like calling the function.
    """
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = inspect.Signature(
        [inspect.Parameter(name, kind) for name in required]
        + [inspect.Parameter(name, kind, default=value) for name, value in optional.items()]
    )

    def bind(*args: Any, **kwargs: Any) -> dict[str, Any]:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    return bind


#: The arguments of ``F.conv*d``, ``F.max_pool*d`` and ``F.avg_pool*d`` calls, by name.
_conv_args = _arguments("input", "weight", bias=None, stride=1, padding=0, dilation=1, groups=1)
_maxpool_args = _arguments(
    "input", "kernel_size", stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
)
_avgpool_args = _arguments(
    "input",
    "kernel_size",
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
)


def _tuple(v: Any, n: int) -> tuple[int, ...] | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,) * n
    if isinstance(v, (tuple, list)) and all(isinstance(x, int) for x in v):
        if len(v) == 1:
            return (int(v[0]),) * n
        if len(v) == n:
            return tuple(int(x) for x in v)
    return None


@dataclass
class _Window:
    """A sliding-window layer (convolution or pooling) in the form the replay needs."""

    run: Callable[[Tensor], Tensor]  # the layer with padding 0 on a region of the padded input
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    pad_value: float
    macs_per_output: int  # multiply-adds per output element


class _Patch:
    """A ``[B, C, *S]`` value equal to the reference ``ref`` outside one box per sample.

    ``groups`` hold the boxes' contents: samples whose boxes have the same shape are stacked
    into one ``[n, C, *shape]`` tensor.
    """

    def __init__(self, ref: Tensor, boxes: list[Box], groups: list[tuple[list[int], Tensor]]) -> None:
        self.ref = ref
        self.boxes = boxes
        self.groups = groups
        self.where: dict[int, tuple[int, int]] = {}
        for g, (samples, _) in enumerate(groups):
            for k, i in enumerate(samples):
                self.where[i] = (g, k)

    @property
    def size(self) -> tuple[int, ...]:
        return tuple(self.ref.shape[2:])

    def data(self, i: int) -> Tensor:
        g, k = self.where[i]
        return self.groups[g][1][k]

    def full_box(self) -> Box:
        return (0,) * len(self.size), self.size

    def all_full(self) -> bool:
        fb = self.full_box()
        return all(b == fb for b in self.boxes)

    def paste(
        self,
        out: Tensor,
        samples: Sequence[int],
        lo: Sequence[tuple[int, ...]],
        shape: tuple[int, ...],
        offset: tuple[int, ...],
    ) -> None:
        """Write each sample's box content into ``out[j]`` (a region starting at ``lo[j]`` of a
        map whose coordinates are this value's plus ``offset``)."""
        for j, i in enumerate(samples):
            box = self.boxes[i]
            if is_empty(box):
                continue
            a = [max(bl + o, tl) for bl, o, tl in zip(box[0], offset, lo[j])]
            b = [min(bh + o, tl + s) for bh, o, tl, s in zip(box[1], offset, lo[j], shape)]
            if any(x >= y for x, y in zip(a, b)):
                continue
            dst = (slice(None), *tuple(slice(x - tl, y - tl) for x, y, tl in zip(a, b, lo[j])))
            src = (
                slice(None),
                *tuple(slice(x - bl - o, y - bl - o) for x, y, bl, o in zip(a, b, box[0], offset)),
            )
            out[j][dst] = self.data(i)[src]

    def region(
        self,
        samples: Sequence[int],
        lo: Sequence[tuple[int, ...]],
        shape: tuple[int, ...],
        base: Tensor,
        offset: tuple[int, ...],
    ) -> Tensor:
        """``[n, C, *shape]``: ``base`` (the reference, maybe padded) from ``lo[j]`` with the boxes pasted in."""
        parts = [base[0][(slice(None), *tuple(slice(a, a + s) for a, s in zip(l, shape)))] for l in lo]  # noqa: E741
        out = torch.stack(parts) if parts else base.new_empty((0, base.shape[1], *shape))
        self.paste(out, samples, lo, shape, offset)
        return out

    def materialize(self, n: int) -> Tensor:
        if self.all_full() and len(self.groups) == 1 and self.groups[0][0] == list(range(n)):
            return self.groups[0][1]
        out = self.ref.expand(n, *self.ref.shape[1:]).clone()
        for i, box in enumerate(self.boxes):
            if not is_empty(box):
                out[i][(slice(None), *tuple(slice(a, b) for a, b in zip(*box)))] = self.data(i)
        return out


#: Boxes of one batch are enlarged to a common shape when that adds at most this factor of
#: volume (one batched call instead of one per shape; larger boxes are as exact).
GROUP_SLACK = 1.3


def _group(boxes: list[Box]) -> list[tuple[tuple[int, ...], list[int]]]:
    """Samples grouped by box shape (first appearance order)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (lo, hi) in enumerate(boxes):
        groups.setdefault(tuple(b - a for a, b in zip(lo, hi)), []).append(i)
    return list(groups.items())


def _harmonize(boxes: list[Box], size: tuple[int, ...], slack: float = GROUP_SLACK) -> list[Box]:
    """Enlarge boxes to shared shapes (greedy, largest first) while the volume grows <= ``slack``.

    An enlarged box keeps its start unless it would leave the map, then it is shifted inwards;
    it always contains the original box.
    """
    order = sorted((i for i, b in enumerate(boxes) if not is_empty(b)), key=lambda i: -volume(boxes[i]))
    clusters: list[tuple[list[int], list[int], int]] = []  # (shape, samples, own volume)
    for i in order:
        shape_i = [b - a for a, b in zip(*boxes[i])]
        v_i = volume(boxes[i])
        for k, (shape, members, v) in enumerate(clusters):
            merged = [max(x, y) for x, y in zip(shape, shape_i)]
            if math.prod(merged) * (len(members) + 1) <= slack * (v + v_i):
                clusters[k] = (merged, [*members, i], v + v_i)
                break
        else:
            clusters.append((shape_i, [i], v_i))
    out = list(boxes)
    for shape, members, _ in clusters:
        for i in members:
            lo = tuple(min(a, n - s) for a, n, s in zip(boxes[i][0], size, shape))
            out[i] = (lo, tuple(a + s for a, s in zip(lo, shape)))
    return out


def _mkldnn_ok(x: Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available()


def _conv(
    name: str,
    x: Tensor,
    w: Tensor,
    b: Tensor | None,
    stride: tuple[int, ...],
    dil: tuple[int, ...],
    groups: int,
) -> Tensor:
    """``conv(x, w, b, stride, padding=0, dilation, groups)``; on CPU always through oneDNN.

    PyTorch picks its slow reference convolution for a single small input (its heuristic
    favours it for batch 1), which is the common case of a box's region.
    """
    if _mkldnn_ok(x) and x.shape[0] >= 1:
        return torch.mkldnn_convolution(
            x.contiguous(), w, b, [0] * len(stride), list(stride), list(dil), groups
        )
    return getattr(torch, name)(x, w, b, stride, 0, dil, groups)


def _empty_like(ref: Tensor, data: Tensor) -> Tensor:
    return ref.new_empty((data.shape[0], ref.shape[1], *data.shape[2:]))


class _Full:
    """A value computed over the whole batch."""

    def __init__(self, value: Any) -> None:
        self.value = value


_INPLACE_SIG: dict[Any, inspect.Signature | None] = {}


def _out_of_place(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None:
    """The out-of-place form of an element-wise call (``relu_`` -> ``relu``, ``inplace=False``)."""
    name = func_name(func)
    if name.endswith("_") and not name.startswith("_"):
        base = getattr(torch.Tensor, name[:-1], None)
        return None if base is None else (base, args, kwargs)
    if func not in _INPLACE_SIG:
        try:
            sig: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            sig = None
        _INPLACE_SIG[func] = sig if sig is not None and "inplace" in sig.parameters else None
    sig = _INPLACE_SIG[func]
    if sig is None:
        return func, args, kwargs
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        return None
    bound.arguments["inplace"] = False
    return func, tuple(bound.args), dict(bound.kwargs)


class IncrementalModel:
    """A module that reuses a reference input's activations for inputs that differ in a box.

    Parameters
    ----------
    module : callable
        The model, ``Tensor[B, ...] -> output`` (in eval mode; called once here to record).
    reference : Tensor
        ``[1, C, *S]``: the module input every later batch is compared with.
    full_fraction : float
        A sample whose changed box covers at least this fraction of a map is recomputed over
        the whole map from that layer on (Krypton's stopping rule, Sec. 3.2).

    Raises
    ------
    TraceUnsupported
        When the forward pass cannot be replayed exactly (see :mod:`removalx.incremental.trace`).

    Attributes
    ----------
    macs_full, macs_done : int
        Multiply-adds of convolutions and linear layers that full forward passes of every
        sample seen would take, and those the replay took.
    follow : bool
        When true, the last sample of every batch becomes the reference of the next batch
        (insertion / deletion curves: each step differs from the previous one).
    """

    def __init__(
        self, module: Callable[[Tensor], Any], reference: Tensor, full_fraction: float = DEFAULT_FULL_FRACTION
    ) -> None:
        self.module = module
        self.full_fraction = float(full_fraction)
        self.macs_full = 0
        self.macs_done = 0
        self.samples = 0
        self.follow = False
        #: Set (with the reason) when the first batch saved less than :data:`MIN_SAVING`.
        self.stopped = ""
        self._set_reference(reference)

    def _set_reference(self, reference: Tensor) -> None:
        if reference.dim() < 3 or reference.shape[0] != 1:
            raise TraceUnsupported(f"the model input has shape {tuple(reference.shape)}, not [1, C, *S]")
        with torch.inference_mode():
            graph, out = record(self.module, reference)
        self.graph: Graph = graph
        self.reference_output = out
        self._padded: dict[tuple[int, tuple[int, ...], float], Tensor] = {}
        self._kinds = [self._classify(op) for op in graph.ops]
        unsafe = unsafe_operation(graph, self._kinds)
        if unsafe is not None:  # exact or a fallback by construction (removalx.incremental.locality)
            raise TraceUnsupported(unsafe)
        self._macs = [self._full_macs(op) for op in graph.ops]

    # -- static analysis of the recorded graph --------------------------------------------------
    def _value(self, x: Any) -> Any:
        return self.graph.values[x.node] if isinstance(x, Ref) else x

    def _classify(self, op: Op) -> str:
        """``window``, ``unary``, ``binary`` or ``generic`` (materialise and call)."""
        name = op.name
        if len(op.out_nodes) != 1 or op.out_nodes[0] < 0:
            return "generic"
        out = self.graph.values[op.out_nodes[0]]
        if name in _CONV or name in _MAXPOOL or name in _AVGPOOL:
            return "window" if self._window(op) is not None else "generic"
        if name in _UNARY:
            x = op.args[0] if op.args else None
            others = [a for a in tree_flatten((op.args[1:], op.kwargs))[0] if isinstance(a, Ref)]
            if (
                not isinstance(x, Ref)
                or others
                or tuple(self._value(x).shape) != tuple(out.shape)
                or out.dim() < 3
            ):
                return "generic"
            if name == "batch_norm":
                training = op.kwargs.get("training", op.args[5] if len(op.args) > 5 else False)
                return "generic" if training else "unary"
            if name.startswith("dropout"):
                training = op.kwargs.get("training", op.args[2] if len(op.args) > 2 else True)
                return "generic" if training else "unary"
            if name == "float" and self._value(x).dtype != out.dtype:
                return "generic"
            return "unary" if _out_of_place(op.func, op.args, op.kwargs) is not None else "generic"
        if name in _BINARY and len(op.args) == 2 and "out" not in op.kwargs and out.dim() >= 3:
            for a in op.args:
                if isinstance(a, Ref):
                    if tuple(self._value(a).shape) != tuple(out.shape):
                        return "generic"
                elif isinstance(a, Tensor):
                    if a.dim() > out.dim() or a.dim() == 0:
                        if a.dim() == 0:
                            continue
                        return "generic"
                    shape = (1,) * (out.dim() - a.dim()) + tuple(a.shape)
                    if shape[0] != 1 or any(s != 1 for s in shape[2:]):
                        return "generic"
                elif not isinstance(a, (int, float, bool)):
                    return "generic"
            return "binary"
        return "generic"

    def _window(self, op: Op) -> _Window | None:
        name = op.name
        x = op.args[0] if op.args else op.kwargs.get("input")
        if not isinstance(x, Ref):
            return None
        n = self._value(x).dim() - 2
        try:
            if name in _CONV:
                a = _conv_args(*op.args, **op.kwargs)
                if _CONV[name] != n or isinstance(a["weight"], Ref) or isinstance(a["bias"], Ref):
                    return None
                pad = (0,) * n if a["padding"] == "valid" else _tuple(a["padding"], n)
                stride, dil = _tuple(a["stride"], n), _tuple(a["dilation"], n)
                if pad is None or stride is None or dil is None:
                    return None
                w, b, g = a["weight"], a["bias"], int(a["groups"])
                return _Window(
                    lambda r: _conv(name, r, w, b, stride, dil, g),  # type: ignore[arg-type]
                    tuple(w.shape[2:]), stride, pad, dil, 0.0, int(w[0].numel()),
                )  # fmt: skip
            if name in _MAXPOOL:
                a = _maxpool_args(*op.args, **op.kwargs)
                k = _tuple(a["kernel_size"], n)
                stride = k if a["stride"] is None or a["stride"] == [] else _tuple(a["stride"], n)
                pad, dil = _tuple(a["padding"], n), _tuple(a["dilation"], n)
                if (
                    _MAXPOOL[name] != n
                    or a["ceil_mode"]
                    or a["return_indices"]
                    or None in (k, stride, pad, dil)
                ):
                    return None
                pool = getattr(F, f"max_pool{n}d")
                return _Window(lambda r: pool(r, k, stride, 0, dil), k, stride, pad, dil, -math.inf, 0)  # type: ignore[arg-type]
            if name in _AVGPOOL:
                a = _avgpool_args(*op.args, **op.kwargs)
                k = _tuple(a["kernel_size"], n)
                stride = k if a["stride"] is None or a["stride"] == [] else _tuple(a["stride"], n)
                pad = _tuple(a["padding"], n)
                if (
                    _AVGPOOL[name] != n
                    or a["ceil_mode"]
                    or a["divisor_override"] is not None
                    or None in (k, stride, pad)
                ):
                    return None
                if any(pad) and not a["count_include_pad"]:  # type: ignore[arg-type]
                    return None
                pool = getattr(F, f"avg_pool{n}d")
                return _Window(lambda r: pool(r, k, stride, 0), k, stride, pad, (1,) * n, 0.0, 0)  # type: ignore[arg-type]
        except TypeError:
            return None
        return None

    @property
    def macs_per_sample(self) -> int:
        """Multiply-adds of one full forward pass of one clip (convolutions and linear layers)."""
        return int(sum(self._macs))

    def _full_macs(self, op: Op) -> int:
        """Multiply-adds of ``op`` for one sample on a full pass (convolutions and linear layers)."""
        name = op.name
        if len(op.out_nodes) != 1 or op.out_nodes[0] < 0:
            return 0
        out = self.graph.values[op.out_nodes[0]]
        if name in _CONV:
            w = op.args[1] if len(op.args) > 1 else op.kwargs.get("weight")
            if isinstance(w, Tensor):
                return int(out.numel() * w[0].numel())
        if name == "linear":
            w = op.args[1] if len(op.args) > 1 else op.kwargs.get("weight")
            if isinstance(w, Tensor):
                return int(out.numel() * w.shape[-1])
        return 0

    # -- replay ---------------------------------------------------------------------------------
    def accepts(self, x: Tensor) -> bool:
        ref = self.graph.values[0]
        if self.stopped:  # the caller runs a full pass: count it
            per_sample = sum(self._macs)
            self.macs_full += int(x.shape[0]) * per_sample
            self.macs_done += int(x.shape[0]) * per_sample
            return False
        return x.dim() == ref.dim() and tuple(x.shape[1:]) == tuple(ref.shape[1:]) and x.dtype == ref.dtype

    @property
    def saved_fraction(self) -> float:
        return 0.0 if self.macs_full == 0 else 1.0 - self.macs_done / self.macs_full

    def __call__(self, x: Tensor) -> Any:
        """The module's output on ``x`` (``[B, C, *S]``), computed incrementally."""
        b = int(x.shape[0])
        ref0 = self.graph.values[0]
        size0 = tuple(ref0.shape[2:])
        boxes = self._harmonize([self._maybe_full(bx, size0) for bx in changed_boxes(x, ref0)], size0)
        state: dict[int, _Patch | _Full] = {0: self._patch_from(x, ref0, boxes)}
        for op, kind, macs in zip(self.graph.ops, self._kinds, self._macs):
            self.macs_full += b * macs
            inputs = [state[a.node] for a in tree_flatten((op.args, op.kwargs))[0] if isinstance(a, Ref)]
            if kind != "generic" and all(isinstance(s, _Patch) for s in inputs):
                out_node = op.out_nodes[0]
                if kind == "window":
                    result = self._run_window(op, state, out_node)
                elif kind == "unary":
                    result = self._run_unary(op, state)
                else:
                    result = self._run_binary(op, state, out_node)
                if result.all_full():
                    state[out_node] = _Full(result.materialize(b))
                else:
                    state[out_node] = result
                continue
            self.macs_done += b * macs
            self._run_generic(op, state, b)
        leaves, spec = tree_flatten(self.graph.output)
        out = tree_unflatten(
            [self._materialize(state[o.node], b) if isinstance(o, Ref) else o for o in leaves], spec
        )
        if self.samples == 0 and self.saved_fraction < MIN_SAVING:
            self.stopped = f"the first batch saved {100 * self.saved_fraction:.0f} % of the multiply-adds"
        self.samples += b
        if self.follow and not self.stopped:
            self._adopt(state, b - 1)
        return out

    def _maybe_full(self, box: Box, size: tuple[int, ...]) -> Box:
        full = math.prod(size)
        if full and volume(box) >= self.full_fraction * full:
            return (0,) * len(size), size
        return box

    def _harmonize(self, boxes: list[Box], size: tuple[int, ...]) -> list[Box]:
        return [self._maybe_full(bx, size) for bx in _harmonize(boxes, size)]

    def _patch_from(self, x: Tensor, ref: Tensor, boxes: list[Box]) -> _Patch:
        groups = []
        for _shape, samples in _group(boxes):
            parts = [x[i][(slice(None), *tuple(slice(a, b) for a, b in zip(*boxes[i])))] for i in samples]
            groups.append((samples, torch.stack(parts)))
        return _Patch(ref, boxes, groups)

    def _materialize(self, s: _Patch | _Full, b: int) -> Any:
        return s.value if isinstance(s, _Full) else s.materialize(b)

    def _padded_ref(self, node: int, pad: tuple[int, ...], value: float) -> Tensor:
        key = (node, pad, value)
        if key not in self._padded:
            ref = self.graph.values[node]
            pads: list[int] = []
            for p in reversed(pad):
                pads += [p, p]
            self._padded[key] = F.pad(ref, pads, value=value) if any(pad) else ref
        return self._padded[key]

    def _run_window(self, op: Op, state: dict[int, _Patch | _Full], out_node: int) -> _Patch:
        win = self._window(op)
        assert win is not None
        x_ref = op.args[0] if op.args else op.kwargs["input"]
        src = state[x_ref.node]
        assert isinstance(src, _Patch)
        out_ref = self.graph.values[out_node]
        size_out = tuple(out_ref.shape[2:])
        boxes = [
            self._maybe_full(
                window_output_box(bx, size_out, win.kernel, win.stride, win.padding, win.dilation), size_out
            )
            for bx in src.boxes
        ]
        boxes = self._harmonize(boxes, size_out)
        base = self._padded_ref(x_ref.node, win.padding, win.pad_value)
        groups = []
        for shape, samples in _group(boxes):
            if 0 in shape:
                groups.append((samples, out_ref.new_empty((len(samples), out_ref.shape[1], *shape))))
                continue
            rshape = tuple(
                (n - 1) * s + d * (k - 1) + 1
                for n, s, d, k in zip(shape, win.stride, win.dilation, win.kernel)
            )
            lo = [tuple(a * s for a, s in zip(boxes[i][0], win.stride)) for i in samples]
            region = src.region(samples, lo, rshape, base, win.padding)
            out = win.run(region)
            self.macs_done += int(out.numel()) * win.macs_per_output
            groups.append((samples, out))
        return _Patch(out_ref, boxes, groups)

    def _run_unary(self, op: Op, state: dict[int, _Patch | _Full]) -> _Patch:
        src = state[op.args[0].node]
        assert isinstance(src, _Patch)
        oop = _out_of_place(op.func, op.args, op.kwargs)
        assert oop is not None
        func, args, kwargs = oop
        out_ref = self.graph.values[op.out_nodes[0]]
        groups = [
            (samples, func(data, *args[1:], **kwargs) if data.numel() else _empty_like(out_ref, data))
            for samples, data in src.groups
        ]
        return _Patch(out_ref, src.boxes, groups)

    def _run_binary(self, op: Op, state: dict[int, _Patch | _Full], out_node: int) -> _Patch:
        func, swap = _BINARY[op.name]
        a, b = op.args
        if swap:
            a, b = b, a
        kwargs = dict(op.kwargs)
        out_ref = self.graph.values[out_node]
        pa = state[a.node] if isinstance(a, Ref) else None
        pb = state[b.node] if isinstance(b, Ref) else None
        patches = [p for p in (pa, pb) if p is not None]
        n = len(patches[0].boxes)  # type: ignore[union-attr]
        boxes = [patches[0].boxes[i] for i in range(n)]  # type: ignore[union-attr]
        if isinstance(pa, _Patch) and isinstance(pb, _Patch):
            size = tuple(out_ref.shape[2:])
            boxes = self._harmonize(
                [self._maybe_full(union(pa.boxes[i], pb.boxes[i]), size) for i in range(n)], size
            )
        groups = []
        for shape, samples in _group(boxes):
            lo = [boxes[i][0] for i in samples]
            zero = (0,) * len(shape)

            def operand(
                p: _Patch | _Full | None,
                const: Any,
                samples: list[int] = samples,
                lo: list[tuple[int, ...]] = lo,
                shape: tuple[int, ...] = shape,
                zero: tuple[int, ...] = zero,
            ) -> Any:
                if p is None:
                    return const
                assert isinstance(p, _Patch)
                g, _ = p.where[samples[0]]
                if p.groups[g][0] == samples and all(p.boxes[i] == boxes[i] for i in samples):
                    return p.groups[g][1]
                return p.region(samples, lo, shape, p.ref, zero)

            if 0 in shape:
                groups.append((samples, out_ref.new_empty((len(samples), out_ref.shape[1], *shape))))
                continue
            x, y = operand(pa, a), operand(pb, b)
            groups.append((samples, func(x, y, **kwargs)))
        return _Patch(out_ref, boxes, groups)

    def _run_generic(self, op: Op, state: dict[int, _Patch | _Full], b: int) -> None:
        leaves, spec = tree_flatten((op.args, op.kwargs))
        vals = [self._materialize(state[x.node], b) if isinstance(x, Ref) else x for x in leaves]
        args, kwargs = tree_unflatten(vals, spec)
        out = op.func(*args, **kwargs)
        outs, _ = tree_flatten(out)
        for node, value in zip(op.out_nodes, outs):
            if node >= 0:
                state[node] = _Full(value)

    def _adopt(self, state: dict[int, _Patch | _Full], j: int) -> None:
        """Make sample ``j`` of the last batch the reference of the next one."""
        values = self.graph.values
        new: list[Tensor] = []
        for node, old in enumerate(values):
            s = state.get(node)
            if isinstance(s, _Patch):
                box = s.boxes[j]
                if is_empty(box):
                    new.append(old)
                else:
                    v = old.clone()
                    v[0][(slice(None), *tuple(slice(a, c) for a, c in zip(*box)))] = s.data(j)
                    new.append(v)
            elif (
                isinstance(s, _Full)
                and isinstance(s.value, Tensor)
                and tuple(s.value.shape[1:]) == tuple(old.shape[1:])
            ):
                new.append(s.value[j : j + 1].clone())
            else:
                raise TraceUnsupported("a value of the last batch cannot become the next reference")
        self.graph.values = new
        self._padded.clear()

    # -- verification -----------------------------------------------------------------------------
    def check(self, rtol: float = 1e-4, seed: int = 0) -> None:
        """Compare the replay with full forward passes on a batch of three perturbed inputs.

        The reference with noise in a box at the map's corner, in a box in its middle, and
        unchanged; raises :class:`TraceUnsupported` when they differ by more than ``rtol``
        (relative to the largest output).
        """
        ref = self.graph.values[0]
        size = tuple(ref.shape[2:])
        g = torch.Generator(device="cpu").manual_seed(seed)
        x = ref.expand(3, *ref.shape[1:]).clone()
        corner = tuple(slice(0, max(1, s // 4)) for s in size)
        middle = tuple(slice(s // 3, max(s // 3 + 1, s // 2 + 1)) for s in size)
        for i, box in ((0, corner), (1, middle)):
            view = x[i][(slice(None), *box)]
            view.copy_(torch.rand(view.shape, generator=g).to(ref) * 2 - 1)
        macs = (self.macs_full, self.macs_done, self.samples, self.follow, self.stopped)
        self.follow = False
        try:
            with torch.inference_mode():
                want = self.module(x)
                try:
                    got = self(x)
                except Exception as exc:  # e.g. a reshape that baked in the batch size of 1
                    raise TraceUnsupported(
                        f"the replay fails on a batch of 3 ({type(exc).__name__})"
                    ) from exc
        finally:
            self.macs_full, self.macs_done, self.samples, self.follow, self.stopped = macs
        gl, wl = tree_flatten(got)[0], tree_flatten(want)[0]
        if len(gl) != len(wl):
            raise TraceUnsupported("the replayed output has another structure than the model's")
        for a, w in zip(gl, wl):
            if isinstance(w, Tensor):
                if not isinstance(a, Tensor) or a.shape != w.shape:
                    raise TraceUnsupported("the replayed output has another shape than the model's")
                scale = float(w.abs().max()) if w.numel() else 0.0
                err = float((a.float() - w.float()).abs().max()) if w.numel() else 0.0
                if err > rtol * max(scale, 1e-6):
                    raise TraceUnsupported(f"the replay differs from the full forward pass by {err:.3g}")


def build(
    module: Callable[[Tensor], Any], reference: Tensor, full_fraction: float = DEFAULT_FULL_FRACTION
) -> IncrementalModel:
    """An :class:`IncrementalModel` of ``module`` at ``reference``, checked against full passes."""
    model = IncrementalModel(module, reference, full_fraction)
    model.check()
    return model
