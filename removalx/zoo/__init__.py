"""Built-in zoo: synthetic videos with known evidence and small trained demo models.

>>> from removalx.zoo import demo_clip, load_zoo_model
>>> clip = demo_clip()                       # SyntheticClip: video [16,112,112,3], evidence mask
>>> model, meta = load_zoo_model("r3d_tiny")  # BCTHW in, logits [B, 4] out

Names are imported lazily so that ``python -m removalx.zoo.data`` / ``removalx.zoo.train``
run without importing their own module twice.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "CLASS_NAMES": "data",
    "SyntheticClip": "data",
    "demo_clip": "data",
    "load_demo_gif": "data",
    "make_clip": "data",
    "make_dataset": "data",
    "make_two_part_clip": "data",
    "ZOO": "models",
    "list_zoo": "models",
    "load_zoo_model": "models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import exported names on first access (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
