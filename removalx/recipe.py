"""Recipes: a YAML file naming one plugin and its config per stage (DESIGN.md §4).

The pydantic model of a recipe is built from the registered plugins (a discriminated union
on ``name`` per stage), so a third-party plugin is valid in a recipe as soon as it is
installed, and validation errors name the file, the dotted key and the valid choices.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from removalx.errors import PluginNotFoundError, RecipeError
from removalx.registry import PIPELINE_STAGES, Registry, get_registry

__all__ = ["Recipe", "builtin_recipes", "load_recipe", "parse_overrides", "recipe_model"]

#: Stages a pipeline recipe may omit, and what they default to.
STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    "removal": {"name": "constant"},
    "behavior": {"name": "probability"},
    "visualization": {"name": "heatmap"},
}
FIX_INVALID_KEYS = "Correct the keys above; `removalx plugins` lists every plugin with its config fields."
#: Stages a pipeline recipe must name.
REQUIRED_STAGES = ("segmentation", "feature_selection", "sample_selection", "summary")
RECIPE_STAGES = (*PIPELINE_STAGES, "explainer")


class Recipe(BaseModel):
    """A validated recipe. Stage fields hold the plugin configs (with their ``name``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    seed: int = 0
    description: str = ""
    reference: str = Field("", description="Paper table/section the recipe reproduces.")
    batch_size: Optional[int] = Field(None, gt=0)  # noqa: UP045 - pydantic evaluates at runtime on 3.10

    @property
    def is_pipeline(self) -> bool:
        """True for a seven-stage removal recipe, False for an explainer recipe."""
        return getattr(self, "explainer", None) is None

    def stage(self, stage: str) -> BaseModel | None:
        """The config of ``stage`` (or ``None`` when the recipe does not use it)."""
        return getattr(self, stage, None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, without stages the recipe does not use."""
        return {k: v for k, v in self.model_dump(mode="json").items() if v is not None}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _stage_type(registry: Registry, stage: str) -> Any:
    specs = registry.specs(stage)
    if not specs:
        return Optional[dict[str, Any]]  # noqa: UP045
    members = tuple(s.recipe_config for s in specs)
    if len(members) == 1:
        return Optional[members[0]]  # noqa: UP045
    return Optional[Annotated[Union[members], Field(discriminator="name")]]  # noqa: UP007, UP045


def recipe_model(registry: Registry | None = None) -> type[Recipe]:
    """The pydantic class of recipes for the plugins in ``registry``."""
    registry = registry or get_registry()
    cached = getattr(registry, "_recipe_model", None)
    if cached is not None and cached[0] == _registry_key(registry):
        return cached[1]
    fields: dict[str, Any] = {s: (_stage_type(registry, s), None) for s in RECIPE_STAGES}

    def _check_shape(self: Recipe) -> Recipe:
        if self.stage("explainer") is not None:
            extra = [s for s in PIPELINE_STAGES if s != "visualization" and self.stage(s) is not None]
            if extra:
                raise ValueError(
                    f"an explainer recipe names no pipeline stages, but this one also sets {extra}"
                )
        else:
            missing = [s for s in REQUIRED_STAGES if self.stage(s) is None]
            if missing:
                raise ValueError(
                    "a pipeline recipe must name the stages "
                    f"{', '.join(missing)} (or use 'explainer:' for a whole-method explainer)"
                )
        return self

    model = create_model(  # type: ignore[call-overload]
        "Recipe",
        __base__=Recipe,
        __validators__={"check_shape": model_validator(mode="after")(_check_shape)},
        **fields,
    )
    registry._recipe_model = (_registry_key(registry), model)  # type: ignore[attr-defined]
    return model  # type: ignore[no-any-return]


def _registry_key(registry: Registry) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(registry.names(s)) for s in RECIPE_STAGES)


# -- loading ---------------------------------------------------------------------------------
def builtin_recipes() -> dict[str, Path]:
    """Names and paths of the recipes shipped with removalx."""
    root = resources.files("removalx") / "recipes"
    out: dict[str, Path] = {}
    for entry in root.iterdir():
        if entry.name.endswith(".yaml"):
            out[entry.name[: -len(".yaml")]] = Path(str(entry))
    return dict(sorted(out.items()))


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"Cannot read recipe file {path}: {exc.strerror}.", "Check the path.") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise RecipeError(
            f"Recipe {path} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}.",
            "Recipes are plain YAML mappings; python tags (!!python/...) are never loaded.",
        ) from exc


def parse_overrides(overrides: Mapping[str, Any] | Iterable[str] | None) -> dict[str, Any]:
    """``["a.b=c", ...]`` or ``{"a.b": c}`` -> ``{"a.b": value}`` (strings parsed as YAML)."""
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = str(item).partition("=")
        if not sep or not key.strip():
            raise RecipeError(
                f"Override {item!r} is not of the form key=value.",
                "Write e.g. --set sample_selection.n_samples=200",
            )
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def _apply_overrides(data: dict[str, Any], overrides: dict[str, Any], source: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    # `<stage>.name=x` replaces the stage's whole config (DESIGN.md §4): apply names first.
    names = {k: v for k, v in overrides.items() if k.endswith(".name") and k.count(".") == 1}
    for key, value in names.items():
        stage = key.split(".", 1)[0]
        data[stage] = {"name": value}
        if stage == "explainer":
            for s in PIPELINE_STAGES:
                if s != "visualization":
                    data.pop(s, None)
    for key, value in overrides.items():
        if key in names:
            continue
        parts = key.split(".")
        node = data
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise RecipeError(
                    f"Override {key!r} in {source}: {p!r} is not a mapping.",
                    "Override a leaf key such as 'summary.alpha'.",
                )
            node = nxt
        node[parts[-1]] = value
    return data


def load_recipe(
    source: str | Path | Mapping[str, Any] | Recipe,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    seed: int | None = None,
    registry: Registry | None = None,
) -> Recipe:
    """Load and validate a recipe.

    Parameters
    ----------
    source : str, Path, mapping or Recipe
        A built-in recipe name (``"lime3d"``), a YAML file path, a mapping, or a recipe.
    overrides : mapping or list of ``"key=value"``
        Dotted-key overrides, e.g. ``{"removal.name": "blur"}``. Overriding
        ``<stage>.name`` replaces that stage's config by the new plugin's defaults plus the
        other overrides given for that stage.
    seed : int, optional
        Replaces the recipe's seed.
    registry : Registry, optional
        Plugins to validate against (default: everything installed).

    Raises
    ------
    RecipeError
        Unreadable file, invalid YAML, unknown key (dotted path), wrong value.
    PluginNotFoundError
        A stage names a plugin that is not installed (lists the valid names).
    """
    registry = registry or get_registry()
    where = "<recipe>"
    if isinstance(source, Recipe):
        data = source.to_dict()
        where = f"recipe {source.name!r}"
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        path = Path(source)
        builtins = builtin_recipes()
        if path.suffix in (".yaml", ".yml") or path.exists():
            if not path.exists():
                raise RecipeError(
                    f"Recipe file {path} does not exist.",
                    f"Give a YAML file path or a built-in name: {', '.join(builtins)}.",
                )
            where = str(path)
        elif str(source) in builtins:
            path = builtins[str(source)]
            where = f"built-in recipe {source!r}"
        else:
            raise RecipeError(
                f"No recipe file or built-in recipe named {str(source)!r}.",
                f"Built-in recipes: {', '.join(builtins)}. Or pass a path to a .yaml file.",
            )
        data = _read_yaml(path)
        if not isinstance(data, dict):
            raise RecipeError(
                f"Recipe {where} must be a YAML mapping of stage -> config, got {type(data).__name__}.",
                "See `removalx recipes show lime3d` for an example.",
            )
    data = _apply_overrides(data, parse_overrides(overrides), where)
    if seed is not None:
        data["seed"] = seed
    if data.get("explainer") is None:
        for stage, default in STAGE_DEFAULTS.items():
            if data.get(stage) is None:
                data[stage] = dict(default)
    for stage in RECIPE_STAGES:
        cfg = data.get(stage)
        if cfg is None:
            continue
        if isinstance(cfg, str):
            data[stage] = cfg = {"name": cfg}
        if not isinstance(cfg, dict) or "name" not in cfg:
            raise RecipeError(
                f"In {where}, '{stage}' must be a mapping with a 'name' key, got {cfg!r}.",
                f"Write e.g. {stage}: {{name: {(registry.names(stage) or ['...'])[0]}}}",
            )
        try:
            registry.get(stage, str(cfg["name"]))
        except PluginNotFoundError as exc:
            raise PluginNotFoundError(f"In {where}, key '{stage}.name': {exc.what}", exc.fix) from None
    model = recipe_model(registry)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(_format_errors(exc, data, where, registry), FIX_INVALID_KEYS) from None


def _format_errors(exc: ValidationError, data: dict[str, Any], where: str, registry: Registry) -> str:
    lines = [f"Invalid recipe {where}:"]
    for err in exc.errors():
        loc = list(err["loc"])
        stage_cfg = data.get(loc[0]) if loc and loc[0] in RECIPE_STAGES else None
        if len(loc) >= 2 and isinstance(stage_cfg, dict) and loc[1] == stage_cfg.get("name"):
            loc.pop(1)
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            if loc and loc[0] in RECIPE_STAGES and isinstance(data.get(loc[0]), dict):
                spec = registry.get(str(loc[0]), str(data[loc[0]]["name"]))
                msg += f"; valid keys of {loc[0]} {spec.name!r}: {', '.join(spec.config.model_fields) or '(none)'}"
            else:
                msg += f"; valid top-level keys: {', '.join(Recipe.model_fields)}, {', '.join(RECIPE_STAGES)}"
        elif err["type"] == "missing":
            msg = "missing required key"
        else:
            msg = f"{msg} (got {err.get('input')!r})"
        lines.append(f"  {dotted}: {msg}")
    return "\n".join(lines)
