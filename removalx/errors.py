"""Error types of removalx.

Every error a user can cause is a :class:`RemovalxError` subclass whose message says
what was expected, what was given and how to fix it (DESIGN.md §7).
"""

from __future__ import annotations


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
