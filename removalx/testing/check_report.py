"""How :func:`removalx.testing.check_plugin` reports a broken plugin."""

from __future__ import annotations

from removalx.errors import PluginError, truncate

__all__ = ["PluginCheckError", "Reporter"]


class PluginCheckError(PluginError, AssertionError):
    """A plugin broke its stage's contract in one of ``check_plugin``'s checks.

    A :class:`~removalx.errors.PluginError` and an ``AssertionError`` (so that a failed check
    reads as a failed test).

    Attributes
    ----------
    stage, name : str
        The plugin checked.
    check : str
        The check that failed, e.g. ``"determinism"`` or ``"kept pixels"``.
    """

    def __init__(self, stage: str, name: str, check: str, what: str, fix: str | None = None) -> None:
        self.stage = stage
        self.name = name
        self.check = check
        super().__init__(f"{stage} plugin {truncate(repr(name), 80)} fails check '{check}': {what}", fix)


class Reporter:
    """Builds the :class:`PluginCheckError` of one plugin: ``raise report("check", "what", "fix")``."""

    def __init__(self, stage: str, name: str) -> None:
        self.stage = stage
        self.name = name

    def __call__(self, check: str, what: str, fix: str | None = None) -> PluginCheckError:
        return PluginCheckError(self.stage, self.name, check, what, fix)
