"""Argument types of the command line: a bad value is a usage error (exit code 2) at parse time.

``argparse`` calls these with the raw string; they return the parsed value or raise
:class:`argparse.ArgumentTypeError`, which argparse turns into ``usage: ... error: ...``.
"""

from __future__ import annotations

import argparse
import math

from removalx.errors import truncate

__all__ = ["non_negative_float", "non_negative_int", "positive_float", "positive_int"]


def _shown(text: str) -> str:
    return repr(truncate(text, 40))


def _whole(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {_shown(text)}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (``--batch-size``, ``--frames``, ``--n-videos`` ...)."""
    return _whole(text, 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0 (``--max-videos``)."""
    return _whole(text, 0)


def _finite(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {_shown(text)}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {_shown(text)}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (``--start`` in seconds)."""
    value = _finite(text, "a number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value:g}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (``--duration`` in seconds)."""
    value = _finite(text, "a number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value:g}")
    return value
