"""Record the tensor operations of one forward pass (the graph incremental inference replays).

``torch.fx`` symbolic tracing fails on models whose ``forward`` branches on shapes (the zoo
models check and resize their input), so the graph is recorded from a *concrete* forward pass
of the reference clip under a :class:`~torch.overrides.TorchFunctionMode`: every
``torch``/``Tensor``/``torch.nn.functional`` call whose arguments depend on the model input
becomes one :class:`Op`, with those arguments replaced by :class:`Ref` placeholders; calls
that do not depend on the input (parameters, buffers, constants) are not recorded and their
results enter the graph as constants. Python control flow is resolved by the reference run,
which is valid for every clip of the same shape unless the model converts an input-dependent
tensor to a Python value (``item``, ``bool``, ...): such a model is refused
(:class:`TraceUnsupported`), as are in-place writes into constants or views.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_unflatten

from removalx.errors import ModelError

__all__ = ["Graph", "Op", "Ref", "TraceUnsupported", "func_name", "record"]

#: Calls that read metadata only (their result does not depend on the tensor's values).
_METADATA = frozenset(
    {
        "dim",
        "size",
        "numel",
        "__len__",
        "stride",
        "is_contiguous",
        "is_floating_point",
        "ndimension",
        "nelement",
    }
    | {"element_size", "get_device", "__get__", "__format__", "__repr__", "__hash__"}
)
#: In-place dunder methods (``x += y``).
_IOPS = frozenset({"__iadd__", "__isub__", "__imul__", "__itruediv__", "__setitem__"})


class TraceUnsupported(ModelError):
    """The model cannot be replayed exactly (the reason is the message).

    The pipeline turns it into full forward passes with a notice; it reaches a user only
    through :class:`~removalx.incremental.IncrementalModel` called directly.
    """

    def __init__(self, what: str) -> None:
        super().__init__(
            f"Incremental inference cannot replay this model: {what}.",
            "Run full forward passes (behavior.incremental=false), which removalx does by itself in explanations.",
        )
        self.reason = what


@dataclass(frozen=True)
class Ref:
    """Placeholder for an input-dependent tensor: the output of node ``node``."""

    node: int


@dataclass
class Op:
    """One recorded call: ``outputs = func(*args, **kwargs)``.

    ``args``/``kwargs`` hold :class:`Ref` where the call read an input-dependent tensor;
    ``out_spec`` and ``out_nodes`` rebuild the output structure (``-1``: not a tensor).
    """

    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    out_nodes: list[int]
    out_leaves: list[Any]
    out_spec: Any
    inplace: bool

    @property
    def name(self) -> str:
        return func_name(self.func)


@dataclass
class Graph:
    """The recorded forward pass of the reference input.

    Attributes
    ----------
    ops : list of Op
        Input-dependent calls in execution order.
    values : list of Tensor
        ``values[n]`` is node ``n``'s value on the reference input (node 0 is the input).
    output : Any
        The model's output structure with :class:`Ref` leaves (or constants).
    """

    ops: list[Op] = field(default_factory=list)
    values: list[Tensor] = field(default_factory=list)
    output: Any = None


def func_name(func: Any) -> str:
    """``relu``, ``conv3d``, ``add_``, ``__iadd__``, ... (the last part of the qualified name)."""
    name = getattr(func, "__name__", None) or getattr(func, "__qualname__", None) or repr(func)
    return str(name).rsplit(".", 1)[-1]


_INPLACE_PARAM: dict[Any, bool] = {}


def _has_inplace_param(func: Any) -> bool:
    if func not in _INPLACE_PARAM:
        try:
            _INPLACE_PARAM[func] = "inplace" in inspect.signature(func).parameters
        except (TypeError, ValueError):
            _INPLACE_PARAM[func] = False
    return _INPLACE_PARAM[func]


def is_inplace(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """True when ``func`` writes into its first argument."""
    name = func_name(func)
    if name in _IOPS or (name.endswith("_") and not name.startswith("_")):
        return True
    if kwargs.get("inplace") is True:
        return True
    if "inplace" not in kwargs and _has_inplace_param(func):
        try:
            bound = inspect.signature(func).bind(*args, **kwargs)
        except TypeError:
            return False
        return bound.arguments.get("inplace") is True
    return False


class _Recorder(TorchFunctionMode):
    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self.node_of: dict[int, int] = {}  # id(tensor) -> node holding that object
        self.objects: list[Tensor] = []  # the live object of each node (keeps ids unique)

    def add(self, t: Tensor) -> int:
        n = len(self.graph.values)
        self.graph.values.append(t)
        self.objects.append(t)
        self.node_of[id(t)] = n
        return n

    def ref_of(self, x: Any) -> Ref | None:
        if isinstance(x, Tensor):
            n = self.node_of.get(id(x))
            if n is not None and self.objects[n] is x:
                return Ref(n)
        return None

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = dict(kwargs or {})
        leaves, spec = tree_flatten((args, kwargs))
        refs = [self.ref_of(x) for x in leaves]
        if not any(r is not None for r in refs):
            return func(*args, **kwargs)
        name = func_name(func)
        inplace = is_inplace(func, args, kwargs)
        writes = ("copy_", "set_", "resize_", "put_", "index_put_", "masked_fill_")
        if name == "__setitem__" or (name in writes and refs[0] is None):
            raise TraceUnsupported(f"writes into a tensor with {name}")
        if inplace:
            target = leaves[0]
            if refs[0] is None:
                raise TraceUnsupported(f"{name} writes an input-dependent value into a constant tensor")
            if target._is_view():
                raise TraceUnsupported(f"{name} writes into a view of an input-dependent tensor")
            # The reference value of every node holding this object must survive the write.
            for n, obj in enumerate(self.objects):
                if obj is target and self.graph.values[n] is target:
                    self.graph.values[n] = target.clone()
        out = func(*args, **kwargs)
        out_leaves, out_spec = tree_flatten(out)
        if not any(isinstance(o, Tensor) for o in out_leaves) and name not in _METADATA:
            raise TraceUnsupported(f"converts an input-dependent tensor to a Python value ({name})")
        if name in _METADATA and not any(isinstance(o, Tensor) for o in out_leaves):
            return out
        rec_leaves = [r if r is not None else x for r, x in zip(refs, leaves)]
        rec_args, rec_kwargs = tree_unflatten(rec_leaves, spec)
        out_nodes = [self.add(o) if isinstance(o, Tensor) else -1 for o in out_leaves]
        self.graph.ops.append(
            Op(func, tuple(rec_args), dict(rec_kwargs), out_nodes, list(out_leaves), out_spec, inplace)
        )
        return out


def record(fn: Callable[[Tensor], Any], x: Tensor) -> tuple[Graph, Any]:
    """Run ``fn(x)`` once and record its input-dependent operations.

    Returns the graph and ``fn``'s output. Raises :class:`TraceUnsupported` when the
    forward pass cannot be replayed exactly on other inputs of the same shape.
    """
    graph = Graph()
    rec = _Recorder(graph)
    rec.add(x)
    with rec:
        out = fn(x)
    leaves, spec = tree_flatten(out)
    graph.output = tree_unflatten([rec.ref_of(o) or o for o in leaves], spec)
    if not any(isinstance(r, Ref) for r in tree_flatten(graph.output)[0]):
        raise TraceUnsupported("the output does not depend on the input through torch operations")
    del rec
    return graph, out
