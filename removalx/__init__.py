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
from removalx.hookspecs import hookimpl
from removalx.models import VideoClassifier, load_model
from removalx.pipeline import Explainer
from removalx.recipe import Recipe, builtin_recipes, load_recipe
from removalx.registry import PluginFailure, get_registry
from removalx.stages import PluginConfig
from removalx.types import Attribution, FeatureSpace, PartitionSpace, SamplePlan

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
    return Explainer.from_recipe(recipe, seed=seed, overrides=overrides).explain(
        model, video, target, **kwargs
    )
