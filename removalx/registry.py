"""The plugin registry: every stage's options, loaded from the ``removalx`` entry points.

Built-in plugins (package ``removalx_plugins``) and third-party plugins register the same
way: an entry point in group ``removalx`` naming a module that implements hooks of
:mod:`removalx.hookspecs`.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pluggy
from pydantic import BaseModel, create_model

from removalx import hookspecs, stages
from removalx.errors import PluginError, PluginNotFoundError

ENTRY_POINT_GROUP = "removalx"

#: stage name -> (hook name, interface class or None for models)
STAGES: dict[str, tuple[str, type | None]] = {
    "segmentation": ("removalx_register_segmenters", stages.Segmenter),
    "feature_selection": ("removalx_register_feature_selectors", stages.FeatureSelector),
    "sample_selection": ("removalx_register_sample_selectors", stages.SampleSelector),
    "removal": ("removalx_register_removals", stages.Removal),
    "behavior": ("removalx_register_behaviors", stages.Behavior),
    "summary": ("removalx_register_summaries", stages.Summary),
    "visualization": ("removalx_register_visualizers", stages.Visualizer),
    "explainer": ("removalx_register_explainers", stages.Explainer),
    "metric": ("removalx_register_metrics", stages.Metric),
    "model": ("removalx_register_models", None),
}

#: The seven stages of a removal pipeline, in execution order.
PIPELINE_STAGES = (
    "segmentation",
    "feature_selection",
    "sample_selection",
    "removal",
    "behavior",
    "summary",
    "visualization",
)


@dataclass(frozen=True)
class PluginSpec:
    """One registered option of a stage.

    Attributes
    ----------
    stage, name : str
        Where it plugs in and the name recipes use.
    config : type[BaseModel]
        Config class as written by the author.
    recipe_config : type[BaseModel]
        ``config`` plus a ``name: Literal[name]`` field, used in recipes.
    factory : callable
        ``factory(config) -> stage object``.
    source : str
        Distribution that registered it (``removalx`` for the built-ins).
    module : str
        Module that registered it.
    """

    stage: str
    name: str
    config: type[BaseModel]
    recipe_config: type[BaseModel]
    factory: Callable[[Any], Any]
    source: str
    module: str

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.factory) or inspect.getdoc(self.config) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def make(self, config: BaseModel | dict[str, Any] | None = None) -> Any:
        """Validate ``config`` and build the stage object."""
        if config is None:
            cfg = self.config()
        elif isinstance(config, self.config):
            cfg = config
        else:
            data = config.model_dump() if isinstance(config, BaseModel) else dict(config)
            data.pop("name", None)
            cfg = self.config(**data)
        return self.factory(cfg)


class StageRegistry:
    """What a registration hook receives: ``registry.add(name, config_class, factory)``."""

    def __init__(self, owner: Registry, stage: str, source: str, module: str, plugin_key: str) -> None:
        self._owner = owner
        self.stage = stage
        self._source = source
        self._module = module
        self._plugin_key = plugin_key

    def add(self, name: str, config: type[BaseModel], factory: Callable[[Any], Any]) -> None:
        """Register option ``name`` of this stage."""
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise PluginError(
                f"{self._module}: plugin names are identifiers like 'slic3d', got {name!r}.",
                "Use letters, digits, '_' or '-'.",
            )
        if not (isinstance(config, type) and issubclass(config, BaseModel)):
            raise PluginError(
                f"{self._module}: the config of {self.stage} plugin {name!r} must be a pydantic "
                f"model class, got {config!r}.",
                "Subclass removalx.PluginConfig.",
            )
        if "name" in config.model_fields:
            raise PluginError(
                f"{self._module}: config of {name!r} declares a field 'name'; removalx adds it.",
                "Remove the 'name' field from the config class.",
            )
        if not callable(factory):
            raise PluginError(f"{self._module}: factory of {name!r} is not callable.")
        existing = self._owner._specs[self.stage].get(name)
        owner_key = self._owner._owners.get((self.stage, name))
        if existing is not None and owner_key != self._plugin_key:
            raise PluginError(
                f"{self.stage} plugin {name!r} is registered twice: by {existing.module} "
                f"({existing.source}) and by {self._module} ({self._source}).",
                "Uninstall one of the two packages or rename the plugin.",
            )
        recipe_config = create_model(  # type: ignore[call-overload]
            f"{config.__name__}_{name}",
            __base__=config,
            name=(Literal[name], name),  # type: ignore[valid-type]
        )
        self._owner._owners[(self.stage, name)] = self._plugin_key
        self._owner._specs[self.stage][name] = PluginSpec(
            stage=self.stage,
            name=name,
            config=config,
            recipe_config=recipe_config,
            factory=factory,
            source=self._source,
            module=self._module,
        )


class Registry:
    """All plugins of all stages."""

    def __init__(self) -> None:
        self._specs: dict[str, dict[str, PluginSpec]] = {s: {} for s in STAGES}
        self._sources: dict[int, str] = {}
        self._owners: dict[tuple[str, str], str] = {}
        self.pm = pluggy.PluginManager("removalx")
        self.pm.add_hookspecs(hookspecs)

    # -- loading -----------------------------------------------------------------------
    def load_entry_points(self) -> None:
        self.pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        self._collect()

    def register_module(self, module: Any, source: str = "local") -> None:
        """Register a plugin module or object directly (tests, notebooks)."""
        if not self.pm.is_registered(module):
            name = getattr(module, "__name__", None) or repr(module)
            if self.pm.has_plugin(name):
                name = f"{name}#{id(module)}"
            self.pm.register(module, name=name)
        self._sources[id(module)] = source
        try:
            self._collect()
        except Exception:
            self.pm.unregister(module)
            raise

    def _source_of(self, plugin: Any) -> str:
        if id(plugin) in self._sources:
            return self._sources[id(plugin)]
        for p, dist in self.pm.list_plugin_distinfo():
            if p is plugin:
                return str(dist.project_name)
        return "local"

    def _collect(self) -> None:
        for stage, (hook_name, _) in STAGES.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                module = getattr(impl.plugin, "__name__", type(impl.plugin).__name__)
                key = self.pm.get_name(impl.plugin) or module
                bound = StageRegistry(self, stage, self._source_of(impl.plugin), module, key)
                impl.function(registry=bound)

    # -- queries -------------------------------------------------------------------------
    def names(self, stage: str) -> list[str]:
        self._check_stage(stage)
        return sorted(self._specs[stage])

    def specs(self, stage: str) -> list[PluginSpec]:
        self._check_stage(stage)
        return [self._specs[stage][n] for n in sorted(self._specs[stage])]

    def get(self, stage: str, name: str) -> PluginSpec:
        self._check_stage(stage)
        try:
            return self._specs[stage][name]
        except KeyError:
            valid = ", ".join(self.names(stage)) or "(none installed)"
            raise PluginNotFoundError(
                f"Unknown {stage} plugin {name!r}. Valid names: {valid}.",
                "Pick one of the valid names, or install the package that provides "
                f"{name!r} (run `removalx plugins` to see what is installed).",
            ) from None

    def make(self, stage: str, name: str, config: BaseModel | dict[str, Any] | None = None) -> Any:
        """Build the stage object of plugin ``name`` from ``config``."""
        return self.get(stage, name).make(config)

    def _check_stage(self, stage: str) -> None:
        if stage not in STAGES:
            raise PluginNotFoundError(
                f"Unknown stage {stage!r}. Stages: {', '.join(STAGES)}.",
                "Use one of the listed stage names.",
            )


_lock = threading.Lock()
_default: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded from entry points on first use."""
    global _default
    with _lock:
        if _default is None:
            reg = Registry()
            reg.load_entry_points()
            _default = reg
        return _default


def reset_registry() -> None:
    """Forget the loaded registry (the next :func:`get_registry` reloads entry points)."""
    global _default
    with _lock:
        _default = None
