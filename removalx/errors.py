"""Error types of removalx.

Every error a user can cause is a :class:`RemovalxError` subclass whose message says
what was expected, what was given and how to fix it (docs/cli.md, exit codes).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

#: Scalars whose ``repr`` is short and cheap whatever their value.
_SMALL_SCALARS = (type(None), bool, float, complex)


def truncate(text: str, limit: int = 80) -> str:
    """``text`` cut to at most ``limit`` characters (an ellipsis marks the cut)."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)] + "..."


def short_repr(value: Any, limit: int = 80) -> str:
    """A ``repr`` of ``value`` of at most ``limit`` characters, for error messages.

    Unlike ``repr`` it never walks a large or deeply nested structure: containers show
    their first few items (two levels deep) and their length, long strings are cut and
    huge integers are described by their size. Use it whenever a message quotes user input.

    Examples
    --------
    >>> short_repr(list(range(10**6)))
    'list of 1000000 items [0, 1, 2, ...]'
    >>> short_repr("x" * 1000, limit=12)
    "'xxxxxxxx..."
    """
    return truncate(_bounded_repr(value, 2, limit), limit)


def _bounded_repr(value: Any, depth: int, limit: int) -> str:
    if isinstance(value, _SMALL_SCALARS):
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 128:  # repr of a huge int is slow (and may raise)
            return f"<int of {value.bit_length()} bits>"
        return repr(value)
    if isinstance(value, (str, bytes, bytearray)):
        return repr(value[: limit + 1])  # the caller truncates the result
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        name = type(value).__name__
        n = len(value)
        if depth <= 0:
            return f"{name} of {_items(n)}"
        if isinstance(value, Mapping):
            shown = [
                f"{_item_repr(k, 0)}: {_item_repr(v, depth - 1)}"
                for k, v in itertools.islice(value.items(), 3)
            ]
            inner = "{" + ", ".join(shown) + (", ..." if n > 3 else "") + "}"
        else:
            shown = [_item_repr(v, depth - 1) for v in itertools.islice(value, 3)]
            inner = "[" + ", ".join(shown) + (", ..." if n > 3 else "") + "]"
        return inner if n <= 3 and len(inner) <= limit else f"{name} of {_items(n)} {inner}"
    return truncate(repr(value), limit)


def _items(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def _item_repr(value: Any, depth: int) -> str:
    return truncate(_bounded_repr(value, depth, 20), 20)


class RemovalxError(Exception):
    """Base class of every error removalx raises on bad input.

    Parameters
    ----------
    what : str
        What went wrong (what was expected and what was given).
    fix : str, optional
        How to fix it. Appended to the message as ``Fix: ...``.
    """

    def __init__(self, what: str, fix: str | None = None) -> None:
        self.what = what
        self.fix = fix
        super().__init__(what if not fix else f"{what}\nFix: {fix}")


class PluginNotFoundError(RemovalxError, KeyError):
    """A recipe or call named a plugin that no installed package registers."""

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return Exception.__str__(self)


class PluginError(RemovalxError):
    """A plugin is malformed (bad registration, broken factory, contract violation)."""


class PluginUnavailableError(PluginNotFoundError):
    """A recipe or call named a plugin whose package is installed but failed to load.

    The message names the distribution, the entry point and the error it raised.
    """


class PluginLoadWarning(UserWarning):
    """An installed plugin failed to load and was skipped; every other plugin still works.

    Raised as an error instead when ``REMOVALX_STRICT_PLUGINS=1`` or ``removalx --strict-plugins``.
    """


class RecipeError(RemovalxError, ValueError):
    """A recipe file or override is invalid."""


class VideoError(RemovalxError, ValueError):
    """A video has the wrong shape, dtype, range, or cannot be read."""


class ModelError(RemovalxError, ValueError):
    """A model returned something other than finite logits ``[B, K]``, or cannot be loaded."""


class TargetError(RemovalxError, ValueError):
    """The target class index is outside the model's classes."""


class ConfigError(RemovalxError, ValueError):
    """A plugin configuration is invalid for the data it was given."""


class StorageError(RemovalxError, ValueError):
    """A file or database removalx wrote is missing, damaged, foreign or unsafe to read."""


class DatasetError(RemovalxError, ValueError):
    """A dataset folder or its labels file is invalid (the message names the file and entry)."""


class OutputError(RemovalxError, ValueError):
    """An output path cannot be written (an existing file where a folder is needed, no permission)."""


class MissingExtraError(RemovalxError, ImportError):
    """A feature needs an optional dependency that is not installed (``pip install removalx[extra]``)."""


def require_extra(module: str, extra: str, feature: str) -> Any:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``pip install removalx[extra]``.

    Parameters
    ----------
    module : str
        The module to import (e.g. ``"transformers"``).
    extra : str
        The removalx extra that installs it (e.g. ``"hf"``).
    feature : str
        What needs it, for the message (e.g. ``"the hf: model spec"``).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{feature} needs the Python package {module!r}, which is not installed "
            f"({type(exc).__name__}: {truncate(str(exc), 120)}).",
            f"Install the extra: pip install 'removalx[{extra}]'.",
        ) from exc
