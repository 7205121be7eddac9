"""What the commands share: exit codes, defaults, argument types, option groups and JSON output.

Argument types: a bad value is a usage error (exit code 2) at parse time.

``argparse`` calls these with the raw string; they return the parsed value or raise
:class:`argparse.ArgumentTypeError`, which argparse turns into ``usage: ... error: ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

from removalx.errors import truncate

#: Exit codes: success, a bug, a usage error (bad flags), invalid input (a ``RemovalxError``).
EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INPUT = 0, 1, 2, 3
DEFAULT_MODEL = "zoo:r3d_tiny"
DEFAULT_RECIPE = "lime3d"
#: Clip size of ``removalx explain`` for a model that does not declare its native size.
DEFAULT_SIZE = 112
DEFAULT_FRAMES = 16

__all__ = [
    "DEFAULT_FRAMES",
    "DEFAULT_MODEL",
    "DEFAULT_RECIPE",
    "DEFAULT_SIZE",
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_action_parser",
    "add_model_options",
    "add_overrides",
    "from_args",
    "json_clean",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
]


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


def json_clean(o: Any) -> Any:
    """JSON-safe copy: NaN / infinity become ``null``, tuple keys become strings."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): json_clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_clean(v) for v in o]
    return o


# -- option groups ---------------------------------------------------------------------------
def add_action_parser(subparsers: Any, name: str, help: str, description: str) -> tuple[Any, Any]:
    """Add command ``name`` with actions of its own; returns its parser and its ``ACTION`` subparsers."""
    parser = subparsers.add_parser(name, help=help, description=description)
    return parser, parser.add_subparsers(dest="action", metavar="ACTION")


def add_overrides(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``: recipe overrides."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def add_model_options(
    parser: argparse.ArgumentParser, model: str, weights: str, device: str, default: str = DEFAULT_MODEL
) -> None:
    """``--model/-m`` (spec, default ``default``), ``--weights`` and ``--device``, with these helps."""
    parser.add_argument("--model", "-m", default=default, help=model)
    parser.add_argument("--weights", help=weights)
    parser.add_argument("--device", help=device)


def from_args(cls: Any, args: argparse.Namespace, **given: Any) -> Any:
    """``cls(**given)`` (a dataclass) with every other field the argument of the same name."""
    same = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.name not in given}
    return cls(**same, **given)
