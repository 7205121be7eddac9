"""removalx: explain video classifiers by removing parts of the video.

Every removal-based method is a composition of seven stages (segmentation, feature
selection, sample selection, feature removal, model behavior, summary, visualization);
a recipe names one plugin per stage. Quick start::

    import removalx
    ex = removalx.Explainer.from_recipe("lime3d", seed=0)
    attr = ex.explain(model, video)      # video: float32[T, H, W, C] in [0, 1]
    attr.values                          # float32[T, H, W]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from removalx import _compat

_compat.install()  # the flat layout's old import paths, with a DeprecationWarning

if TYPE_CHECKING:  # the static view of the names ``__getattr__`` below imports on first use
    from removalx.core.classifier import VideoClassifier
    from removalx.core.hookspecs import hookimpl
    from removalx.core.recipe import Recipe, builtin_recipes, load_recipe
    from removalx.core.registry import PluginFailure, get_registry
    from removalx.core.stages import PluginConfig
    from removalx.core.types import Attribution, FeatureSpace, PartitionSpace, SamplePlan
    from removalx.errors import (
        ConfigError,
        ModelError,
        PluginError,
        PluginLoadWarning,
        PluginNotFoundError,
        PluginUnavailableError,
        RecipeError,
        RemovalxError,
        TargetError,
        VideoError,
    )
    from removalx.models import load_model
    from removalx.pipeline import Explainer

#: Public name -> the module defining it. Importing ``removalx`` imports none of them (so the
#: CLI's parser comes up without torch); ``removalx.X`` imports X's module on first use (PEP 562).
_LAZY: dict[str, str] = {
    "ConfigError": "removalx.errors",
    "ModelError": "removalx.errors",
    "PluginError": "removalx.errors",
    "PluginLoadWarning": "removalx.errors",
    "PluginNotFoundError": "removalx.errors",
    "PluginUnavailableError": "removalx.errors",
    "RecipeError": "removalx.errors",
    "RemovalxError": "removalx.errors",
    "TargetError": "removalx.errors",
    "VideoError": "removalx.errors",
    "hookimpl": "removalx.core.hookspecs",
    "VideoClassifier": "removalx.core.classifier",
    "load_model": "removalx.models",
    "Explainer": "removalx.pipeline",
    "Recipe": "removalx.core.recipe",
    "builtin_recipes": "removalx.core.recipe",
    "load_recipe": "removalx.core.recipe",
    "PluginFailure": "removalx.core.registry",
    "get_registry": "removalx.core.registry",
    "PluginConfig": "removalx.core.stages",
    "Attribution": "removalx.core.types",
    "FeatureSpace": "removalx.core.types",
    "PartitionSpace": "removalx.core.types",
    "SamplePlan": "removalx.core.types",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562) and cache the name here."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'removalx' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    if module != "removalx.errors":  # torch is loaded now: attributions show as overlays in Jupyter
        import removalx.display.notebook  # noqa: F401
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__version__ = "0.1.0"

__all__ = [
    "Attribution",
    "ConfigError",
    "Explainer",
    "FeatureSpace",
    "ModelError",
    "PartitionSpace",
    "PluginConfig",
    "PluginError",
    "PluginFailure",
    "PluginLoadWarning",
    "PluginNotFoundError",
    "PluginUnavailableError",
    "Recipe",
    "RecipeError",
    "RemovalxError",
    "SamplePlan",
    "TargetError",
    "VideoClassifier",
    "VideoError",
    "__version__",
    "builtin_recipes",
    "explain",
    "get_registry",
    "hookimpl",
    "load_model",
    "load_recipe",
]


def explain(model, video, recipe="lime3d", target=None, seed=0, overrides=None, **kwargs):  # type: ignore[no-untyped-def]
    """One-call form of ``Explainer.from_recipe(recipe, seed, overrides).explain(model, video, target)``."""
    import removalx.display.notebook  # noqa: F401  (attributions show as overlays in Jupyter)
    from removalx.pipeline import Explainer

    return Explainer.from_recipe(recipe, seed=seed, overrides=overrides).explain(
        model, video, target, **kwargs
    )
