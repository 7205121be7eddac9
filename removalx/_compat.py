"""The import paths of removalx 0.1's flat layout, kept working for one release.

The modules that stood at the package root (``removalx.types``, ``removalx.io``, ...) moved
into wings (docs/architecture.md). Importing an old path still works: it returns the
module at its new place (the same module object, so ``isinstance`` and monkeypatching
agree) and warns with a :class:`DeprecationWarning` naming the new path. The aliases go
in the next release.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

__all__ = ["MOVED", "install"]

#: Old module path -> new module path.
MOVED: dict[str, str] = {
    "removalx.atomic": "removalx.files.atomic",
    "removalx.attribution_file": "removalx.files.attribution_file",
    "removalx.outputs": "removalx.files.outputs",
    "removalx.torchfile": "removalx.files.torchfile",
    "removalx.coalitions": "removalx.core.coalitions",
    "removalx.devices": "removalx.core.devices",
    "removalx.hookspecs": "removalx.core.hookspecs",
    "removalx.plans": "removalx.core.plans",
    "removalx.progress": "removalx.core.progress",
    "removalx.recipe": "removalx.core.recipe",
    "removalx.registry": "removalx.core.registry",
    "removalx.rng": "removalx.core.rng",
    "removalx.stages": "removalx.core.stages",
    "removalx.types": "removalx.core.types",
    "removalx.hf": "removalx.models.hf",
    "removalx.filters": "removalx.video.filters",
    "removalx.io": "removalx.video.io",
    "removalx.layouts": "removalx.video.layouts",
    "removalx.mp4": "removalx.video.mp4",
    "removalx.colorbar": "removalx.display.colorbar",
    "removalx.visualize": "removalx.display.visualize",
    "removalx.cli_types": "removalx.cli.common",
    "removalx.explain_command": "removalx.cli.explain",
    "removalx.experiments.cli": "removalx.cli.experiments",
    "removalx.experiments.study.cli": "removalx.cli.study",
    "removalx.experiments.datasets": "removalx.data.datasets",
    "removalx.experiments.formats": "removalx.data.formats",
    "removalx.colors": "removalx_plugins.machinery.colors",
    "removalx.excitation": "removalx_plugins.machinery.excitation",
    "removalx.extremal": "removalx_plugins.machinery.extremal",
    "removalx.gradients": "removalx_plugins.machinery.gradients",
    "removalx.min_ratio": "removalx_plugins.machinery.min_ratio",
    "removalx.streamed_pairs": "removalx_plugins.machinery.streamed_pairs",
    "removalx.temporal_smoothing": "removalx_plugins.machinery.temporal_smoothing",
    "removalx.wls": "removalx_plugins.machinery.wls",
}


def _importer_stacklevel() -> int:
    """The ``stacklevel`` that points a warning raised in :meth:`_AliasLoader.create_module` at
    the code that imported the old path, so that Python's default filters show it where that
    code is ``__main__``.

    ``warnings.warn`` already skips the import system's ``importlib._bootstrap`` frames when it
    counts; ``importlib.import_module`` adds one frame of ``importlib/__init__.py`` it does not.
    """
    frame = sys._getframe(2)  # 0: this function, 1: create_module (stacklevel 1), 2: its caller
    level = 1
    while frame is not None:
        name = frame.f_code.co_filename
        if "importlib" in name and "_bootstrap" in name:  # not counted by warnings.warn
            frame = frame.f_back  # type: ignore[assignment]
            continue
        level += 1
        if not name.endswith(("importlib/__init__.py", "importlib\\__init__.py")):
            break
        frame = frame.f_back  # type: ignore[assignment]
    return level


class _AliasLoader(importlib.abc.Loader):
    """Loads an old path as the module at its new path (warning once per import)."""

    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new}; import it from there "
            "(the old path goes in the next release of removalx)",
            DeprecationWarning,
            stacklevel=_importer_stacklevel(),
        )
        module = importlib.import_module(self.new)
        self._spec = module.__spec__  # the import system overwrites it; exec_module restores it
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds the old module paths of :data:`MOVED` (and nothing else)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Put the alias finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.append(_AliasFinder())
