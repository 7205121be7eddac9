"""Which recorded operations incremental inference may replay: the allow-list of local operations.

Incremental inference is exact only when every operation between the model input and the point
where the computation becomes *global* (a reduction over all positions: global pooling, a
spatial mean, a linear layer on the flattened map) is one whose effect on a changed box is
known. :data:`LOCALITY` lists them, with how a changed box propagates. Any other operation on a
value that still holds per-position features -- indexing or gathering by computed indices,
sorting, ``topk``, ``nonzero``, ``masked_select``, comparisons feeding ``torch.where``,
concatenation, resizing, ... -- makes :func:`unsafe_operation` return a reason, and the engine
refuses the model (full forward passes, the usual one-line notice). Such an operation may pick
positions the one safety batch never changes (a frame chosen by ``argmax``, a batch index
baked in at recording), so "exact or a fallback" holds by construction rather than by the
check. After the global point every operation runs on full values and the check of
:meth:`~removalx.incremental.engine.IncrementalModel.check` compares them with full passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch.utils._pytree import tree_flatten

from removalx.incremental.trace import Graph, Op, Ref

__all__ = ["GLOBAL_POOLS", "LAYOUT", "LOCALITY", "REDUCTIONS", "unsafe_operation"]

#: How a changed box propagates through each kind of operation the engine replays on boxes
#: (the kind is decided by ``IncrementalModel._classify``).
LOCALITY: dict[str, str] = {
    "window": "convolution, max/avg pooling: output o changes iff its window meets the box "
    "(Krypton Eq. 1-4, with dilation)",
    "unary": "element-wise (activations, batch norm in eval, dropout in eval, casts): the same box",
    "binary": "add/sub/mul/div with per-channel constants or between two maps: the union of the boxes",
}

#: Layout operations: they move values without reading them; the result still holds per-position
#: features (materialised, replayed on full maps), so what follows them is checked like the map.
LAYOUT = frozenset(
    {"flatten", "view", "reshape", "permute", "transpose", "contiguous", "squeeze", "unsqueeze"}
    | {"float", "to", "type_as", "clone", "detach", "dropout", "dropout2d", "dropout3d", "identity"}
)

#: Reductions that make the computation global when they reduce over every position axis.
REDUCTIONS = frozenset(
    {"mean", "sum", "amax", "amin", "max", "min", "logsumexp", "std", "var", "prod", "nanmean", "nansum"}
)

#: Adaptive pools: global when their output has one position per axis.
GLOBAL_POOLS = frozenset(
    {
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "adaptive_max_pool1d",
        "adaptive_max_pool2d",
        "adaptive_max_pool3d",
    }
)

#: Linear maps of a flattened ``[B, F]`` map (every output reads every position).
_LINEAR = frozenset({"linear", "matmul", "mm", "addmm"})


def _dims(op: Op) -> Any:
    """The ``dim`` argument of a reduction (``None``: all dimensions)."""
    if "dim" in op.kwargs:
        return op.kwargs["dim"]
    return op.args[1] if len(op.args) > 1 else None


def _is_global(op: Op, value: Any, out: Sequence[Any]) -> bool:
    """True when ``op`` reduces the per-position map ``value`` over all its position axes."""
    name = op.name.lstrip("_")
    n = value.dim()
    if name in GLOBAL_POOLS:
        return bool(out) and all(int(s) == 1 for s in out[0].shape[2:])
    if name in _LINEAR:
        return n == 2
    if name not in REDUCTIONS:
        return False
    dims = _dims(op)
    if dims is None:
        return len(op.args) <= 1
    if isinstance(dims, int) and not isinstance(dims, bool):
        dims = (dims,)
    if not isinstance(dims, (tuple, list)) or not all(isinstance(d, int) for d in dims):
        return False  # a tensor "dim" (binary max/min): element-wise, not a reduction
    have = {d % n for d in dims} if n else set()
    need = set(range(2, n)) if n >= 3 else set(range(1, n))
    return need <= have


def unsafe_operation(graph: Graph, kinds: Sequence[str]) -> str | None:
    """The first operation before the global point that is not on the allow-list, or ``None``.

    Parameters
    ----------
    graph : Graph
        The recorded forward pass (node 0 is the model input).
    kinds : sequence of str
        Per operation, ``window``, ``unary``, ``binary`` (replayed on boxes, :data:`LOCALITY`)
        or ``generic``.

    Returns
    -------
    str or None
        A reason for the notice (``"gather on a feature map before the global pooling ..."``),
        ``None`` when the model may be replayed incrementally.
    """
    local = {0}  # nodes that still hold per-position features of the input
    for op, kind in zip(graph.ops, kinds):
        refs = [a.node for a in tree_flatten((op.args, op.kwargs))[0] if isinstance(a, Ref)]
        spatial = [n for n in refs if n in local]
        if not spatial:
            continue  # reads global values only: replayed on full values
        outs = [graph.values[n] for n in op.out_nodes if n >= 0]
        name = op.name.lstrip("_")
        if kind in LOCALITY or name in LAYOUT:
            local.update(n for n in op.out_nodes if n >= 0)
        elif len(spatial) == 1 and len(refs) == 1 and _is_global(op, graph.values[spatial[0]], outs):
            continue
        else:
            return f"{op.name} on a feature map before the global pooling (not of known locality)"
    return None
