"""Recipe overrides of a run of several recipes: global ones and per-recipe ones.

``compare`` runs recipes with different stages (``rise3d`` has a ``sample_selection``,
``grad_cam`` has an ``explainer`` and nothing else), so one ``--set`` cannot be valid for all
of them. Two forms (docs/experiments.md, "Overrides of several recipes"):

* **global**: ``--set KEY=VALUE`` (Python: a flat ``{"KEY": value}`` or the ``"*"`` entry of a
  per-recipe mapping). In ``compare`` it applies to every recipe that has ``KEY``'s stage and
  is skipped, with one note per skipped recipe, for the others; a key that is not under a stage
  (``seed``) applies to all. In ``evaluate`` and ``ablate`` (one recipe) it always applies.
* **per recipe**: ``--set RECIPE:KEY=VALUE`` (Python: ``{"RECIPE": {"KEY": value}}``), where
  ``RECIPE`` is a method's label or the recipe as given; it always applies to that recipe, after
  the global ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from removalx.errors import ConfigError, short_repr, truncate

__all__ = ["ALL", "RunOverrides", "resolve_overrides", "split_overrides"]

#: The key of the overrides of every recipe in a per-recipe mapping.
ALL = "*"
Triple = tuple[str, str, dict[str, Any]]


@dataclass
class RunOverrides:
    """Overrides of a run, split into those of every recipe and those of named recipes."""

    common: dict[str, Any] = field(default_factory=dict)
    per_recipe: dict[str, dict[str, Any]] = field(default_factory=dict)


def _names_line(names: Iterable[str]) -> str:
    return truncate(", ".join(dict.fromkeys(names)), 300)


def _recipe_fields() -> set[str]:
    from removalx.core.recipe import RECIPE_STAGES, Recipe

    return {*Recipe.model_fields, *RECIPE_STAGES}


def _is_per_recipe(overrides: Mapping[Any, Any], names: Sequence[str]) -> bool:
    """A mapping of recipe -> overrides (rather than dotted key -> value)?

    Yes when a key is ``"*"`` or a recipe of the run, or when every value is a mapping and no key
    is a recipe field (a misspelt recipe name is then reported as one, not as a recipe key).
    """
    keys = [k for k in overrides if isinstance(k, str)]
    if any(k == ALL or k in names for k in keys):
        return True
    fields = _recipe_fields()
    return (
        bool(overrides)
        and all(isinstance(v, Mapping) for v in overrides.values())
        and not any(isinstance(k, str) and (k in fields or "." in k) for k in overrides)
    )


def split_overrides(overrides: Any, names: Sequence[str]) -> RunOverrides:
    """Split ``overrides`` into global and per-recipe ones (values parsed as YAML, as ``--set``).

    Parameters
    ----------
    overrides : sequence of str, mapping or None
        ``["KEY=VALUE", "RECIPE:KEY=VALUE", ...]`` (the command line's ``--set``), a flat mapping
        ``{"KEY": value}`` (global) or a per-recipe mapping ``{"RECIPE": {...}, "*": {...}}``
        whose values are mappings or lists of ``"KEY=VALUE"`` strings.
    names : sequence of str
        What may name a recipe: the methods' labels and the recipes as given.

    Raises
    ------
    ConfigError
        A recipe name that is not in the run (the message lists the run's recipes).
    RecipeError
        A malformed override (:func:`removalx.core.recipe.parse_overrides`).
    """
    from removalx.core.recipe import parse_overrides

    if overrides is None:
        return RunOverrides()
    if isinstance(overrides, str):
        overrides = [overrides]
    per: dict[str, list[Any]] = {}
    if isinstance(overrides, Mapping):
        if not _is_per_recipe(overrides, names):
            return RunOverrides(parse_overrides(overrides))
        for key, value in overrides.items():
            if not isinstance(value, (Mapping, list, tuple)):
                raise ConfigError(
                    f"overrides of recipe {short_repr(key)}: expected a mapping of KEY -> value, got "
                    f"{short_repr(value)}.",
                    'Write e.g. overrides={"rise3d": {"sample_selection.n_samples": 100}, "*": {...}}.',
                )
            per.setdefault(str(key), []).append(value)
    else:
        for item in overrides:
            head, eq, raw = item.partition("=") if isinstance(item, str) else ("", "", "")
            label, colon, key = head.partition(":")
            if eq and colon:
                per.setdefault(label.strip(), []).append([f"{key.strip()}={raw}"])
            else:
                per.setdefault(ALL, []).append([item])
    out = RunOverrides()
    for label, parts in per.items():
        if label != ALL and label not in names:
            raise ConfigError(
                f"Recipe override for {short_repr(label, 60)}: this run has no recipe of that name.",
                f"Name one of its recipes ({_names_line(names)}), or drop the 'RECIPE:' prefix to "
                "override every recipe.",
            )
        merged: dict[str, Any] = {}
        for part in parts:
            merged.update(parse_overrides(part))
        if label == ALL:
            out.common = merged
        else:
            out.per_recipe[label] = merged
    return out


def _stage_of(key: str) -> str | None:
    """The stage a dotted override key is under (``None`` for top-level keys such as ``seed``)."""
    from removalx.core.recipe import RECIPE_STAGES

    first = key.split(".", 1)[0]
    return first if first in RECIPE_STAGES else None


def _stages(recipe: str, own: Mapping[str, Any]) -> set[str]:
    """The stages recipe ``recipe`` (with its own overrides) uses."""
    from removalx.core.recipe import RECIPE_STAGES, load_recipe

    loaded = load_recipe(recipe, overrides=dict(own))
    return {s for s in RECIPE_STAGES if loaded.stage(s) is not None}


def _label(recipe: str) -> str:
    return Path(recipe).stem if recipe.endswith((".yaml", ".yml")) else recipe


def resolve_overrides(
    triples: Sequence[Triple], overrides: Any, *, skip_missing: bool
) -> tuple[list[Triple], list[str]]:
    """Each ``(label, recipe, own overrides)`` with the run's overrides merged in, and the notes.

    The merged overrides are, from weakest to strongest: the global ones, those of the recipe
    (by label or by recipe as given), the method's own (an ``ablate`` variant's key). With
    ``skip_missing`` (``compare``) a global key under a stage that a recipe does not have is
    dropped for that recipe, and one note per such recipe says which keys were skipped; a global
    stage key that no recipe has is an error (most likely a mistake).

    Returns
    -------
    triples : list of (str, str, dict)
        The methods with their final overrides.
    notes : list of str
        One line per recipe a global override was skipped for.

    Raises
    ------
    ConfigError
        A per-recipe override naming no recipe of the run, or (``skip_missing``) a global
        override whose stage no recipe of the run has.
    """
    names = [n for label, recipe, _ in triples for n in (label, recipe, _label(recipe))]
    split = split_overrides(overrides, names)
    staged = {k: _stage_of(k) for k in split.common}
    out: list[Triple] = []
    notes: list[str] = []
    used: set[str] = set()
    for label, recipe, own in triples:
        mine: dict[str, Any] = {}
        for name in dict.fromkeys((_label(recipe), recipe, label)):
            mine.update(split.per_recipe.get(name, {}))
        common = dict(split.common)
        if skip_missing and any(staged.values()):
            has = _stages(recipe, own)
            skipped = [k for k, s in staged.items() if s is not None and s not in has]
            if skipped:
                missing = ", ".join(dict.fromkeys(str(staged[k]) for k in skipped))
                notes.append(
                    truncate(
                        f"note: --set {', '.join(skipped)} skipped for {label} (it has no {missing} stage)",
                        400,
                    )
                )
                common = {k: v for k, v in common.items() if k not in skipped}
        used.update(common)
        out.append((label, recipe, {**common, **mine, **dict(own)}))
    unused = [k for k in split.common if k not in used]
    if unused:
        raise ConfigError(
            f"--set {truncate(', '.join(unused), 200)}: none of the recipes "
            f"({_names_line(label for label, _, _ in triples)}) has the stage "
            f"{', '.join(dict.fromkeys(str(staged[k]) for k in unused))}.",
            "Check the key's stage (`removalx recipes show RECIPE` prints a recipe's stages), or "
            "drop the override.",
        )
    return out, notes
