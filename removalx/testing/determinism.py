"""Run a stage twice with the same seed while torch's global random generator moves.

A plugin must draw every random number from the generator, seed or sample index the
pipeline gives it (docs/plugins.md): one drawing from torch's global generator gives
different results for the same seed. :func:`run_twice` seeds and draws from the global
generator differently before each run (restoring its state afterwards), and
:func:`difference` says how the two outputs differ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["difference", "flatten", "run_twice"]


def run_twice(fn: Callable[[], Any]) -> tuple[Any, Any]:
    """``(fn(), fn())`` with torch's global generator seeded and drawn from differently before each."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        torch.rand(17)
        first = fn()
        torch.manual_seed(987_654)
        torch.rand(5)
        second = fn()
    return first, second


def flatten(value: Any) -> list[Tensor | None]:
    """The tensors (and ``None``) in nested tuples/lists/dicts, numbers as 0-d tensors."""
    if value is None or isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in flatten(v)]
    if isinstance(value, dict):
        return [t for k in sorted(value, key=str) for t in flatten(value[k])]
    return [torch.as_tensor(value)]


def difference(a: Any, b: Any) -> str | None:
    """``None`` when ``a`` and ``b`` are exactly equal, else which part differs and by how much."""
    fa, fb = flatten(a), flatten(b)
    if len(fa) != len(fb):
        return f"the runs returned {len(fa)} and {len(fb)} values"
    for i, (x, y) in enumerate(zip(fa, fb)):
        where = f"output {i}: " if len(fa) > 1 else ""
        if x is None or y is None:
            if x is not y:
                return f"{where}one run returned None"
            continue
        if x.shape != y.shape:
            return f"{where}shapes {tuple(x.shape)} and {tuple(y.shape)}"
        if not torch.equal(x, y):
            if x.is_floating_point() or y.is_floating_point():
                d = (x.double() - y.double()).abs().nan_to_num(nan=float("inf"))
                return f"{where}max |difference| {float(d.max()):.3g} ({int((d > 0).sum())} of {d.numel()} values)"
            return f"{where}{int((x != y).sum())} of {x.numel()} values differ"
    return None
