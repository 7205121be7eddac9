"""Recipes: a YAML file naming one plugin and its config per stage (docs/recipes.md).

The pydantic model of a recipe is built from the registered plugins (a discriminated union
on ``name`` per stage), so a third-party plugin is valid in a recipe as soon as it is
installed, and validation errors name the file, the dotted key and the valid choices.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Optional, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from removalx.core.registry import PIPELINE_STAGES, Registry, get_registry
from removalx.errors import PluginNotFoundError, RecipeError, short_repr, truncate

__all__ = [
    "MAX_RECIPE_BYTES",
    "MAX_RECIPE_DEPTH",
    "MAX_RECIPE_NODES",
    "MAX_SEED",
    "Recipe",
    "builtin_recipes",
    "load_recipe",
    "parse_overrides",
    "recipe_model",
]

#: Largest recipe file (and ``--set`` value) read, in bytes.
MAX_RECIPE_BYTES = 1 << 20
#: Most values (scalars, lists, mappings, mapping keys) a recipe may hold, every alias
#: (``*anchor``) counted as many times as it is expanded.
MAX_RECIPE_NODES = 100_000
#: Deepest nesting of lists and mappings in a recipe (the top-level mapping is level 1).
MAX_RECIPE_DEPTH = 50
#: Largest seed: seeds are integers in ``[0, 2**63 - 1]`` (a signed 64-bit integer, which
#: ``torch.Generator.manual_seed`` and int64 tensors accept).
MAX_SEED = 2**63 - 1
#: Largest recipe ``batch_size``: perturbed clips per forward pass (a 16x112x112 clip batch of 4096
#: is 9.9 GB in float32; larger is never a sensible batch).
MAX_BATCH_SIZE = 4096
_INT64 = (-(2**63), 2**63 - 1)
#: Longest integer literal read from YAML (a base-60 literal ``1:2:3:...`` of a million
#: digits would otherwise take minutes to convert).
_MAX_INT_CHARS = 100
#: Most problems listed in one error message.
_MAX_LISTED = 10

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

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = "custom"
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Integer seed in [0, 2**63 - 1].")
    description: str = ""
    reference: str = Field("", description="Paper table/section the recipe reproduces.")
    batch_size: Optional[int] = Field(  # noqa: UP045 - pydantic evaluates at runtime on 3.10
        None,
        gt=0,
        le=MAX_BATCH_SIZE,
        strict=True,
        description=f"Perturbed clips per forward pass, a whole number in [1, {MAX_BATCH_SIZE}].",
    )

    @field_validator("seed", mode="before")
    @classmethod
    def _integer_seed(cls, value: Any) -> Any:
        # Lax pydantic would turn 3.0, 1e23 or "3" into ints: a seed must be written as one.
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"a seed is an integer in [0, 2**63 - 1], not a {type(value).__name__}")
        return int(value)

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
        __validators__={"check_shape": model_validator(mode="after")(_check_shape)},  # type: ignore[dict-item]
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


if yaml.__with_libyaml__:
    from yaml.cyaml import CParser

    class _SafeLoaderBase(Composer, CParser, SafeConstructor, Resolver):  # type: ignore[misc]
        """``yaml.SafeLoader`` with libyaml's parser (fast events) and Python composition.

        Exactly ``yaml.CSafeLoader`` except that nodes are composed by PyYAML's Python
        ``Composer``, which :class:`_BoundedLoader` can watch. Builds plain data only.
        """

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)  # type: ignore[no-untyped-call]
            SafeConstructor.__init__(self)  # type: ignore[no-untyped-call]
            Resolver.__init__(self)  # type: ignore[no-untyped-call]

else:  # pragma: no cover - PyYAML built without libyaml
    _SafeLoaderBase = yaml.SafeLoader  # type: ignore[misc]


class _BoundedLoader(_SafeLoaderBase):
    """``yaml.SafeLoader`` that enforces the recipe limits while it composes the node graph.

    Each node records how many values it expands to and how deep it nests (aliases count
    as the node they refer to), computed once per node, so an alias bomb is refused before
    anything is expanded. Raises :class:`RecipeError` (never a ``yaml.YAMLError``).
    """

    def __init__(self, stream: str, where: str) -> None:
        super().__init__(stream)
        self.where = where
        self.depth = 0
        self.composed = 0
        self.sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded values, nesting)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            node: yaml.Node = super().compose_node(parent, index)
            if id(node) not in self.sizes:
                raise self.limit_error("an alias (*name) refers to a list or mapping that contains it", mark)
            return node
        collection = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        if collection:
            self.depth += 1
            if self.depth > MAX_RECIPE_DEPTH:
                raise self.limit_error(
                    f"lists/mappings are nested more than {MAX_RECIPE_DEPTH} levels deep", mark
                )
        node = super().compose_node(parent, index)
        count, depth = 1, 0
        if collection:
            self.depth -= 1
            children: list[yaml.Node] = (
                [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
            )
            count += sum(self.sizes[id(c)][0] for c in children)
            depth = 1 + max((self.sizes[id(c)][1] for c in children), default=0)
        self.composed += 1
        if count > MAX_RECIPE_NODES or self.composed > MAX_RECIPE_NODES:
            raise self.limit_error(
                f"it holds more than {MAX_RECIPE_NODES} values (each alias *name counts as everything it repeats)",
                mark,
            )
        if depth > MAX_RECIPE_DEPTH:
            raise self.limit_error(
                f"lists/mappings are nested more than {MAX_RECIPE_DEPTH} levels deep (aliases included)", mark
            )
        self.sizes[id(node)] = (count, depth)
        return node

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > _MAX_INT_CHARS:
            raise self.limit_error(
                f"an integer literal is longer than {_MAX_INT_CHARS} characters", node.start_mark
            )
        return int(super().construct_yaml_int(node))

    def limit_error(self, what: str, mark: Any) -> RecipeError:
        return RecipeError(
            f"{self.where} exceeds the recipe limits (line {mark.line + 1}, column {mark.column + 1}): {what}.",
            "Recipes are small YAML mappings; remove the repeated aliases, deep nesting or huge values "
            "(see 'Limits' in docs/recipes.md).",
        )


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def _safe_load(text: str, where: str) -> Any:
    """Parse ``text`` as YAML within the recipe limits (plain data only, never python tags).

    Raises :class:`RecipeError` when a limit is exceeded and ``yaml.YAMLError`` when
    ``text`` is not valid YAML.
    """
    if len(text) > MAX_RECIPE_BYTES:
        raise RecipeError(
            f"{where} is {len(text)} characters long; recipes are limited to {MAX_RECIPE_BYTES} bytes.",
            "Recipes are small YAML mappings (see 'Limits' in docs/recipes.md).",
        )
    loader = _BoundedLoader(text, where)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]


def _read_yaml(path: Path, where: str) -> Any:
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_RECIPE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RecipeError(f"Cannot read recipe file {where}: {reason}.", "Check the path.") from exc
    if len(raw) > MAX_RECIPE_BYTES:
        raise RecipeError(
            f"Recipe file {where} is larger than {MAX_RECIPE_BYTES // 1024} KiB; recipes are small YAML files.",
            "Check that you gave the recipe and not another file (see 'Limits' in docs/recipes.md).",
        )
    try:
        text = raw.decode("utf-8")
        bad = text.find("\0")  # NUL is valid UTF-8 but never text
    except UnicodeDecodeError as exc:
        bad = exc.start
    if bad >= 0:
        raise RecipeError(
            f"Recipe file {where} is not a text YAML file (byte {bad} is not UTF-8 text).",
            "Give a recipe written as UTF-8 YAML, e.g. the output of `removalx recipes show lime3d`.",
        )
    try:
        return _safe_load(text, f"Recipe {where}")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where_in = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = truncate(str(getattr(exc, "problem", None) or exc), 200)
        raise RecipeError(
            f"Recipe {where} is not valid YAML{where_in}: {problem}.",
            "Recipes are plain YAML mappings; python tags (!!python/...) are never loaded.",
        ) from None


def _check_data(data: Any, where: str, *, values: bool) -> None:
    """Refuse data beyond the recipe limits, self-references and (``values``) bad numbers.

    The walk stops after :data:`MAX_RECIPE_NODES` values or :data:`MAX_RECIPE_DEPTH` levels,
    so it is cheap whatever ``data`` is. With ``values``, every NaN/infinite float and every
    integer outside the signed 64-bit range is reported with its dotted key.
    """
    bad: list[str] = []
    count = 0
    on_path: set[int] = set()
    fix = "Recipes are small YAML mappings (see 'Limits' in docs/recipes.md)."

    def visit(value: Any, path: tuple[Any, ...], depth: int) -> None:
        nonlocal count
        count += 1
        if count > MAX_RECIPE_NODES:
            raise RecipeError(f"Recipe {where} holds more than {MAX_RECIPE_NODES} values.", fix)
        if isinstance(value, (Mapping, list, tuple, set, frozenset)):
            if depth >= MAX_RECIPE_DEPTH:
                raise RecipeError(
                    f"Recipe {where} nests lists/mappings more than {MAX_RECIPE_DEPTH} levels deep "
                    f"(at {_dotted(path)}).",
                    fix,
                )
            if id(value) in on_path:
                raise RecipeError(f"Recipe {where} contains itself (at {_dotted(path)}).", fix)
            on_path.add(id(value))
            if isinstance(value, Mapping):
                for key, item in value.items():
                    visit(key, (*path, key), depth + 1)
                    visit(item, (*path, key), depth + 1)
            else:
                for i, item in enumerate(value):
                    visit(item, (*path, i), depth + 1)
            on_path.discard(id(value))
        elif values and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            if not _INT64[0] <= int(value) <= _INT64[1]:
                bad.append(f"{_dotted(path)} = {short_repr(value, 40)} (outside the 64-bit integer range)")
        elif values and isinstance(value, numbers.Real) and not math.isfinite(value):
            bad.append(f"{_dotted(path)} = {value} (not a finite number)")

    visit(data, (), 0)
    if bad:
        more = f"; and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
        raise RecipeError(
            f"Invalid recipe {where}: numbers must be finite and fit in 64 bits; got "
            f"{'; '.join(bad[:_MAX_LISTED])}{more}.",
            "Replace NaN (.nan) and infinite (.inf) values, and huge integers, by finite numbers.",
        )


def _dotted(path: tuple[Any, ...]) -> str:
    parts = [truncate(p, 40) if isinstance(p, str) else short_repr(p, 40) for p in path]
    return truncate(".".join(parts), 200) or "(top level)"


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # e.g. a name too long for the file system
        return False


def parse_overrides(overrides: Mapping[str, Any] | Iterable[str] | None) -> dict[str, Any]:
    """``["a.b=c", ...]`` or ``{"a.b": c}`` -> ``{"a.b": value}`` (strings parsed as YAML).

    Values are parsed within the recipe limits (size, number of values, nesting).
    """
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        out = dict(overrides)
        for key in out:
            _check_override_key(key, key)
        return out
    out = {}
    for item in overrides:
        if not isinstance(item, str):
            raise RecipeError(
                f"Override {short_repr(item)} is not a 'key=value' string.",
                "Write e.g. --set sample_selection.n_samples=200",
            )
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(
                f"Override {short_repr(item)} is not of the form key=value.",
                "Write e.g. --set sample_selection.n_samples=200",
            )
        key = key.strip()
        _check_override_key(key, item)
        try:
            out[key] = _safe_load(raw, f"Override {short_repr(key)}") if raw.strip() else ""
        except yaml.YAMLError:
            out[key] = raw
    return out


def _check_override_key(key: Any, item: Any) -> None:
    if not isinstance(key, str) or not key.strip():
        raise RecipeError(
            f"Override key {short_repr(key)} is not a dotted key such as 'summary.alpha'.",
            "Write e.g. --set sample_selection.n_samples=200",
        )
    if key.count(".") >= MAX_RECIPE_DEPTH:
        raise RecipeError(
            f"Override {short_repr(item)} has more than {MAX_RECIPE_DEPTH} dotted parts.",
            "Override a leaf key such as 'summary.alpha'.",
        )


def _apply_overrides(data: dict[str, Any], overrides: dict[str, Any], source: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    # `<stage>.name=x` replaces the stage's whole config (docs/recipes.md): apply names first.
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
                    f"Override {short_repr(key)} in {source}: {short_repr(p)} is not a mapping.",
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
        Replaces the recipe's seed: an integer in ``[0, 2**63 - 1]`` (floats such as
        ``3.0`` are refused).
    registry : Registry, optional
        Plugins to validate against (default: everything installed).

    Raises
    ------
    RecipeError
        Unreadable, binary or oversized file, invalid YAML, a recipe beyond the limits
        (:data:`MAX_RECIPE_BYTES`, :data:`MAX_RECIPE_NODES` counting alias expansions,
        :data:`MAX_RECIPE_DEPTH`), a NaN/infinite number or an integer outside 64 bits
        (named by dotted key), unknown key (dotted path), wrong value, bad seed.
    PluginNotFoundError
        A stage names a plugin that is not installed (lists the valid names).
    """
    registry = registry or get_registry()
    where = "<recipe>"
    if isinstance(source, Recipe):
        data = source.to_dict()
        where = f"recipe {short_repr(source.name)}"
    elif isinstance(source, Mapping):
        data = dict(source)
        _check_data(data, where, values=False)
    else:
        path = Path(source)
        builtins = builtin_recipes()
        if path.suffix in (".yaml", ".yml") or _exists(path):
            where = truncate(str(path), 200)
            if not _exists(path):
                raise RecipeError(
                    f"Recipe file {where} does not exist.",
                    f"Give a YAML file path or a built-in name: {', '.join(builtins)}.",
                )
        elif str(source) in builtins:
            path = builtins[str(source)]
            where = f"built-in recipe {source!r}"
        else:
            raise RecipeError(
                f"No recipe file or built-in recipe named {short_repr(str(source))}.",
                f"Built-in recipes: {', '.join(builtins)}. Or pass a path to a .yaml file.",
            )
        data = _read_yaml(path, where)
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
    _check_data(data, where, values=True)
    for stage in RECIPE_STAGES:
        cfg = data.get(stage)
        if cfg is None:
            continue
        if isinstance(cfg, str):
            data[stage] = cfg = {"name": cfg}
        if not isinstance(cfg, dict) or not isinstance(cfg.get("name"), str):
            raise RecipeError(
                f"In {where}, '{stage}' must be a mapping with a 'name' key naming a plugin, "
                f"got {short_repr(cfg)}.",
                f"Write e.g. {stage}: {{name: {(registry.names(stage) or ['...'])[0]}}}",
            )
        try:
            # A name longer than any plugin's is cut so that the message stays short.
            registry.get(stage, truncate(cfg["name"], 80))
        except PluginNotFoundError as exc:
            raise type(exc)(f"In {where}, key '{stage}.name': {exc.what}", exc.fix) from None
    model = recipe_model(registry)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(_format_errors(exc, data, where, registry), FIX_INVALID_KEYS) from None


def _format_errors(exc: ValidationError, data: dict[str, Any], where: str, registry: Registry) -> str:
    lines = [f"Invalid recipe {where}:"]
    errors = exc.errors(include_url=False)
    for err in errors[:_MAX_LISTED]:
        loc = list(err["loc"])
        stage_cfg = data.get(loc[0]) if loc and loc[0] in RECIPE_STAGES else None
        if len(loc) >= 2 and isinstance(stage_cfg, dict) and loc[1] == stage_cfg.get("name"):
            loc.pop(1)
        dotted = _dotted(tuple(loc))
        msg = truncate(err["msg"], 200)
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
            msg = f"{msg} (got {short_repr(err.get('input'))})"
        lines.append(f"  {dotted}: {msg}")
    if len(errors) > _MAX_LISTED:
        lines.append(f"  ... and {len(errors) - _MAX_LISTED} more errors")
    return "\n".join(lines)
