"""Whether the stages of a recipe fit together (``removalx recipes validate``).

A recipe can be valid stage by stage and still fail at run time because one stage needs
something another does not give: ``mean`` removal fills each removed region with the
region's mean colour, which needs a *partition* of the clip (``space.labels``), so it fails
on the overlapping tubes of ``flow_tubes``. The stages declare these needs as class
attributes (:data:`removalx.core.stages.SPACE_PROPERTIES`): a segmenter's
``space_provides`` and the ``space_requires`` of removals, feature selections and
summaries. A plugin that declares nothing is never refused (``space_provides = None`` means
"unknown", an empty ``space_requires`` means "no requirement").

Declarations are read from the class a plugin registers as its factory; a factory that is
a function declares nothing.
"""

from __future__ import annotations

from typing import Any

from removalx.core.recipe import Recipe
from removalx.core.registry import PluginSpec, Registry, get_registry
from removalx.core.stages import SPACE_PROPERTIES, Summary, space_closure
from removalx.errors import RecipeError, short_repr, truncate

__all__ = ["check_stages_fit", "segmentations_providing", "stage_fit_problems"]

#: Stages that read the feature space, in pipeline order.
SPACE_READERS = ("feature_selection", "removal", "summary")


def _declared(spec: PluginSpec, attr: str, default: Any) -> Any:
    factory = spec.factory
    return getattr(factory, attr, default) if isinstance(factory, type) else default


def _provides(spec: PluginSpec) -> frozenset[str] | None:
    value = _declared(spec, "space_provides", None)
    return None if value is None else space_closure(frozenset(value))


def _requires(spec: PluginSpec) -> frozenset[str]:
    return frozenset(_declared(spec, "space_requires", frozenset()) or frozenset())


def segmentations_providing(required: frozenset[str], registry: Registry) -> list[str]:
    """Names of the registered segmentations that declare every property in ``required``."""
    return [
        s.name for s in registry.specs("segmentation") if (p := _provides(s)) is not None and required <= p
    ]


def _names(names: list[str]) -> str:
    return truncate(", ".join(names), 160) if names else "none installed"


def _space_problems(recipe: Recipe, registry: Registry) -> list[str]:
    seg_cfg = recipe.stage("segmentation")
    if seg_cfg is None:
        return []
    seg_name = str(getattr(seg_cfg, "name", ""))
    provided = _provides(registry.get("segmentation", seg_name))
    if provided is None:
        return []
    problems = []
    for stage in SPACE_READERS:
        cfg = recipe.stage(stage)
        if cfg is None:
            continue
        name = str(getattr(cfg, "name", ""))
        missing = sorted(_requires(registry.get(stage, name)) - provided)
        if not missing:
            continue
        needs = "; ".join(f"{m} ({SPACE_PROPERTIES.get(m, 'undocumented property')})" for m in missing)
        segmenters = segmentations_providing(frozenset(missing), registry)
        others = [s.name for s in registry.specs(stage) if _requires(s) <= provided]
        has = ", ".join(sorted(provided)) or "no declared property"
        problems.append(
            f"{stage} {short_repr(name, 40)} needs a feature space with {needs}, but segmentation "
            f"{short_repr(seg_name, 40)} provides only: {has}. Use a segmentation that provides "
            f"{', '.join(missing)} ({_names(segmenters)}) or another {stage} ({_names(others)})."
        )
    return problems


def _adaptive_problems(recipe: Recipe, registry: Registry) -> list[str]:
    sample_cfg, summary_cfg = recipe.stage("sample_selection"), recipe.stage("summary")
    if sample_cfg is None or summary_cfg is None:
        return []
    sampler = registry.get("sample_selection", str(getattr(sample_cfg, "name", "")))
    summary = registry.get("summary", str(getattr(summary_cfg, "name", "")))
    if not _declared(sampler, "adaptive", False):
        return []
    cls = summary.factory
    if not (isinstance(cls, type) and issubclass(cls, Summary)) or cls.estimate is not Summary.estimate:
        return []
    estimating = [
        s.name
        for s in registry.specs("summary")
        if isinstance(s.factory, type)
        and issubclass(s.factory, Summary)
        and s.factory.estimate is not Summary.estimate
    ]
    return [
        f"sample_selection {short_repr(sampler.name, 40)} stops once the summary's standard errors "
        f"are small, but summary {short_repr(summary.name, 40)} does not estimate them (no estimate()). "
        f"Use a summary that does ({_names(estimating)}) or sample_selection fixed."
    ]


def stage_fit_problems(recipe: Recipe, registry: Registry | None = None) -> list[str]:
    """What keeps the stages of ``recipe`` from fitting together (empty when they fit).

    Parameters
    ----------
    recipe : Recipe
        A validated recipe (:func:`removalx.core.recipe.load_recipe`).
    registry : Registry, optional
        The plugins the recipe names (default: everything installed).

    Returns
    -------
    list of str
        One sentence per problem: the two stages, what one needs, what the other gives, and
        the installed alternatives.
    """
    if not recipe.is_pipeline:
        return []
    registry = registry or get_registry()
    return _space_problems(recipe, registry) + _adaptive_problems(recipe, registry)


def check_stages_fit(recipe: Recipe, registry: Registry | None = None) -> None:
    """Raise :class:`RecipeError` when the stages of ``recipe`` do not fit together.

    Raises
    ------
    RecipeError
        Listing every problem of :func:`stage_fit_problems`.
    """
    problems = stage_fit_problems(recipe, registry)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise RecipeError(
            f"Recipe {short_repr(recipe.name, 80)}: its stages do not fit together:\n{lines}",
            "Change one of the two stages named above (e.g. with --set <stage>.name=...).",
        )
