"""The plugin registry: every stage's options, loaded from the ``removalx`` entry points.

Built-in plugins (package ``removalx_plugins``) and third-party plugins register the same
way: an entry point in group ``removalx`` naming a module that implements hooks of
:mod:`removalx.core.hookspecs`.

Entry points are loaded one by one. One that fails to import, whose registration hook
raises, or that registers a name another plugin already took is skipped with a
:class:`~removalx.errors.PluginLoadWarning` and recorded in :attr:`Registry.failures`;
every other plugin keeps working. With ``REMOVALX_STRICT_PLUGINS=1`` (or
``removalx --strict-plugins``) such a failure is a :class:`~removalx.errors.PluginError`.
"""

from __future__ import annotations

import importlib.metadata as md
import inspect
import os
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import pluggy
from pydantic import BaseModel, create_model

from removalx.core import hookspecs, stages
from removalx.errors import PluginError, PluginLoadWarning, PluginNotFoundError, PluginUnavailableError

ENTRY_POINT_GROUP = "removalx"
#: Environment variable that turns plugin load failures into errors when set to 1/true/yes/on.
STRICT_ENV = "REMOVALX_STRICT_PLUGINS"
#: Distribution of the built-in plugins; loaded first, so its names win over duplicates.
BUILTIN_DISTRIBUTION = "removalx"

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

#: Entry-point name prefixes (``<prefix>-<plugin name>``, e.g. ``segmentation-slic3d``) and the
#: stages a plugin named that way registers. Used to tell which plugins a failed entry point
#: would have provided.
ENTRY_POINT_PREFIXES: dict[str, tuple[str, ...]] = {
    **{stage: (stage,) for stage in STAGES},
    "selection": ("feature_selection", "sample_selection"),
    "explainers": ("explainer",),
    "metrics": ("metric",),
    "models": ("model",),
}

#: Longest text of an error message, entry point or distribution name kept in a failure.
MAX_MESSAGE = 300
MAX_NAME = 120

Phase = Literal["import", "hook", "duplicate"]
_PHASE_TEXT: dict[str, str] = {
    "import": "failed to import",
    "hook": "failed in its registration hook",
    "duplicate": "registers a plugin name that is already registered",
}


def _clip(text: object, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line, at most ``limit`` characters (ends with ``...`` when cut)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def strict_plugins() -> bool:
    """True when :data:`STRICT_ENV` asks for plugin load failures to be errors."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def names_from_entry_point(entry_point_name: str) -> tuple[tuple[str, str], ...]:
    """``(stage, plugin name)`` pairs an entry point named ``<prefix>-<name>`` provides.

    ``segmentation-slic3d`` -> ``(("segmentation", "slic3d"),)``; ``selection-fixed`` ->
    feature and sample selection; a name without a known prefix -> ``()``.
    """
    for prefix in sorted(ENTRY_POINT_PREFIXES, key=len, reverse=True):
        for spelled in {prefix, prefix.replace("_", "-")}:
            rest = entry_point_name[len(spelled) + 1 :]
            if entry_point_name.startswith(spelled + "-") and rest:
                return tuple((stage, rest) for stage in ENTRY_POINT_PREFIXES[prefix])
    return ()


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


@dataclass(frozen=True)
class PluginFailure:
    """An installed plugin entry point that failed to load; none of its plugins are registered.

    Attributes
    ----------
    distribution : str
        Distribution (package) that declares the entry point.
    entry_point : str
        Entry point name, e.g. ``segmentation-slic3d``.
    value : str
        Entry point value: the module (``pkg.mod``) or object (``pkg.mod:obj``) it names.
    phase : {"import", "hook", "duplicate"}
        What failed: importing the module, running its registration hook, or registering a
        ``(stage, name)`` that another plugin already registered.
    error_type : str
        Class name of the error, e.g. ``ImportError``.
    message : str
        The error's message on one line, truncated to :data:`MAX_MESSAGE` characters.
    provides : tuple of (stage, name)
        Plugins it was expected to provide: names it registered before failing (all of them
        for ``duplicate``) and names read from the entry point name (``<stage>-<name>``).
        Empty when unknown.
    """

    distribution: str
    entry_point: str
    value: str
    phase: Phase
    error_type: str
    message: str
    provides: tuple[tuple[str, str], ...] = ()

    @property
    def error(self) -> str:
        """``"<error type>: <message>"``."""
        return f"{self.error_type}: {self.message}" if self.message else self.error_type

    @property
    def reason(self) -> str:
        """What failed and the error, e.g. ``"failed to import: ImportError: ..."``."""
        return f"{_PHASE_TEXT[self.phase]}: {self.error}"

    def describe(self) -> str:
        """One line naming the distribution, the entry point and the error."""
        return f"entry point '{self.entry_point} = {self.value}' of distribution '{self.distribution}' {self.reason}"

    @property
    def fix(self) -> str:
        """How a user fixes it."""
        if self.phase == "duplicate":
            return (
                f"Uninstall one of the two packages (e.g. `pip uninstall {self.distribution}`) "
                "or ask the plugin author to rename the plugin."
            )
        what = "Install what distribution" if self.phase == "import" else "Upgrade distribution"
        needs = " needs (see the error)" if self.phase == "import" else ""
        return (
            f"{what} '{self.distribution}'{needs} or uninstall it; `removalx plugins` lists every "
            "plugin that failed to load."
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        return {
            "distribution": self.distribution,
            "entry_point": self.entry_point,
            "value": self.value,
            "phase": self.phase,
            "error_type": self.error_type,
            "message": self.message,
            "provides": [{"stage": s, "name": n} for s, n in self.provides],
        }


class StageRegistry:
    """What a registration hook receives: ``registry.add(name, config_class, factory)``.

    Registrations go to ``staged`` and become visible only once the whole plugin registered
    without error (the registry commits them), so a failing plugin leaves nothing behind.
    """

    def __init__(
        self, stage: str, source: str, module: str, staged: dict[tuple[str, str], PluginSpec]
    ) -> None:
        self.stage = stage
        self._source = source
        self._module = module
        self._staged = staged

    def add(self, name: str, config: type[BaseModel], factory: Callable[[Any], Any]) -> None:
        """Register option ``name`` of this stage."""
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise PluginError(
                f"{self._module}: plugin names are identifiers like 'slic3d', got {_clip(repr(name), 80)}.",
                "Use letters, digits, '_' or '-'.",
            )
        if not (isinstance(config, type) and issubclass(config, BaseModel)):
            raise PluginError(
                f"{self._module}: the config of {self.stage} plugin {name!r} must be a pydantic "
                f"model class, got {_clip(repr(config), 80)}.",
                "Subclass removalx.PluginConfig.",
            )
        if "name" in config.model_fields:
            raise PluginError(
                f"{self._module}: config of {name!r} declares a field 'name'; removalx adds it.",
                "Remove the 'name' field from the config class.",
            )
        if not callable(factory):
            raise PluginError(f"{self._module}: factory of {name!r} is not callable.")
        recipe_config = create_model(  # type: ignore[call-overload]
            f"{config.__name__}_{name}",
            __base__=config,
            name=(Literal[name], name),  # type: ignore[valid-type,arg-type,unused-ignore]
        )
        self._staged[(self.stage, name)] = PluginSpec(
            stage=self.stage,
            name=name,
            config=config,
            recipe_config=recipe_config,
            factory=factory,
            source=self._source,
            module=self._module,
        )


class Registry:
    """All plugins of all stages.

    Parameters
    ----------
    strict : bool, optional
        Make :meth:`load_entry_points` raise :class:`PluginError` when a plugin fails to
        load instead of warning. Default: the :data:`STRICT_ENV` environment variable.
    """

    def __init__(self, strict: bool | None = None) -> None:
        self._specs: dict[str, dict[str, PluginSpec]] = {s: {} for s in STAGES}
        self._sources: dict[int, str] = {}
        self._owners: dict[tuple[str, str], str] = {}
        self._failures: list[PluginFailure] = []
        self.strict = strict
        self.pm = pluggy.PluginManager("removalx")
        self.pm.add_hookspecs(hookspecs)

    @property
    def failures(self) -> list[PluginFailure]:
        """Entry points that failed to load, in load order (a copy)."""
        return list(self._failures)

    # -- loading -----------------------------------------------------------------------
    def load_entry_points(self, strict: bool | None = None) -> None:
        """Load every plugin of the ``removalx`` entry-point group, one at a time.

        The built-in distribution loads first, then the others by distribution name, so
        the first plugin to register a name keeps it. An entry point that fails to import,
        whose hook raises, or that registers a taken name is skipped whole (nothing it
        registered stays), recorded in :attr:`failures` and reported by one
        :class:`~removalx.errors.PluginLoadWarning`.

        Parameters
        ----------
        strict : bool, optional
            Raise instead of warning (default: ``self.strict``, else :data:`STRICT_ENV`).

        Raises
        ------
        PluginError
            In strict mode, when any entry point failed (after trying them all).
        """
        if strict is None:
            strict = self.strict if self.strict is not None else strict_plugins()
        new: list[PluginFailure] = []
        for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=_load_order):
            failure = self._load_entry_point(ep)
            if failure is not None:
                new.append(failure)
                self._failures.append(failure)
        if strict and new:
            raise strict_error(new)
        for failure in new:
            warnings.warn_explicit(
                f"removalx skipped a plugin: {failure.describe()}. Other plugins still work; "
                f"`removalx plugins` lists it, {STRICT_ENV}=1 makes this an error.",
                PluginLoadWarning,
                filename="<removalx plugins>",
                lineno=0,
                module=__name__,
            )

    def _load_entry_point(self, ep: md.EntryPoint) -> PluginFailure | None:
        dist = _clip(ep.dist.name if ep.dist is not None else "(unknown)", MAX_NAME)
        expected = names_from_entry_point(ep.name)

        def failed(
            phase: Phase, exc: BaseException, provides: Iterable[tuple[str, str]] = ()
        ) -> PluginFailure:
            return PluginFailure(
                distribution=dist,
                entry_point=_clip(ep.name, MAX_NAME),
                value=_clip(ep.value, MAX_NAME),
                phase=phase,
                error_type=type(exc).__name__,
                message=_clip(exc),
                provides=tuple(dict.fromkeys([*provides, *expected])),
            )

        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party module must not stop removalx
            return failed("import", exc)
        if self.pm.is_registered(plugin):  # the same module under a second entry point
            return None
        key = ep.name if not self.pm.has_plugin(ep.name) else f"{dist}:{ep.name}"
        try:
            self.pm.register(plugin, name=key)
        except Exception as exc:  # e.g. a hook whose arguments do not match its spec
            return failed("hook", exc)
        self._sources[id(plugin)] = dist
        staged, error = self._run_hooks(plugin)
        phase: Phase = "hook"
        if error is None:
            error = self._duplicate_error(staged, key)
            phase = "duplicate"
        if error is not None:
            self._forget(plugin)
            return failed(phase, error, staged)
        self._commit(staged, key)
        return None

    def register_module(self, module: Any, source: str = "local") -> None:
        """Register a plugin module or object directly (tests, notebooks).

        Unlike entry-point loading this raises: a hook error propagates and a name that
        another plugin already registered is a :class:`PluginError`. Either way nothing the
        module registered stays.
        """
        newly = not self.pm.is_registered(module)
        if newly:
            name = getattr(module, "__name__", None) or repr(module)
            if self.pm.has_plugin(name):
                name = f"{name}#{id(module)}"
            self.pm.register(module, name=name)
        self._sources[id(module)] = source
        key = self._key_of(module)
        staged, error = self._run_hooks(module)
        if error is None:
            error = self._duplicate_error(staged, key)
        if error is not None:
            if newly:
                self._forget(module)
            raise error
        self._commit(staged, key)

    def _key_of(self, plugin: Any) -> str:
        return self.pm.get_name(plugin) or str(getattr(plugin, "__name__", type(plugin).__name__))

    def _source_of(self, plugin: Any) -> str:
        if id(plugin) in self._sources:
            return self._sources[id(plugin)]
        for p, dist in self.pm.list_plugin_distinfo():
            if p is plugin:
                return str(dist.project_name)
        return "local"

    def _run_hooks(self, plugin: Any) -> tuple[dict[tuple[str, str], PluginSpec], Exception | None]:
        """Call ``plugin``'s registration hooks only; returns what they registered and the error."""
        staged: dict[tuple[str, str], PluginSpec] = {}
        module = getattr(plugin, "__name__", type(plugin).__name__)
        source = self._source_of(plugin)
        try:
            for stage, (hook_name, _) in STAGES.items():
                for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                    if impl.plugin is plugin:
                        impl.function(registry=StageRegistry(stage, source, module, staged))
        except Exception as exc:  # reported by the caller; nothing staged is kept
            return staged, exc
        return staged, None

    def _duplicate_error(self, staged: dict[tuple[str, str], PluginSpec], key: str) -> PluginError | None:
        """A :class:`PluginError` if ``staged`` takes a name another plugin registered."""
        clashes = []
        for (stage, name), spec in staged.items():
            existing = self._specs[stage].get(name)
            if existing is not None and self._owners.get((stage, name)) != key:
                clashes.append(
                    f"{stage} plugin {name!r} is registered twice: by {existing.module} "
                    f"({existing.source}) and by {spec.module} ({spec.source})."
                )
        if not clashes:
            return None
        return PluginError(" ".join(clashes), "Uninstall one of the two packages or rename the plugin.")

    def _commit(self, staged: dict[tuple[str, str], PluginSpec], key: str) -> None:
        for (stage, name), spec in staged.items():
            self._owners[(stage, name)] = key
            self._specs[stage][name] = spec

    def _forget(self, plugin: Any) -> None:
        self.pm.unregister(plugin)
        self._sources.pop(id(plugin), None)

    # -- queries -------------------------------------------------------------------------
    def names(self, stage: str) -> list[str]:
        self._check_stage(stage)
        return sorted(self._specs[stage])

    def specs(self, stage: str) -> list[PluginSpec]:
        self._check_stage(stage)
        return [self._specs[stage][n] for n in sorted(self._specs[stage])]

    def get(self, stage: str, name: str) -> PluginSpec:
        """The plugin ``name`` of ``stage``.

        Raises
        ------
        PluginUnavailableError
            An installed plugin expected to provide it failed to load (says why).
        PluginNotFoundError
            No installed plugin provides it (lists the valid names).
        """
        self._check_stage(stage)
        spec = self._specs[stage].get(name)
        if spec is None:
            raise self._not_found(stage, name)
        return spec

    def _not_found(self, stage: str, name: str) -> PluginNotFoundError:
        shown = _clip(repr(name), 80)
        for failure in self._failures:
            if (stage, name) in failure.provides:
                return PluginUnavailableError(
                    f"{stage} plugin {shown} is installed but failed to load: {failure.describe()}.",
                    failure.fix,
                )
        for failure in self._failures:
            if not failure.provides and failure.entry_point == name:
                return PluginUnavailableError(
                    f"No {stage} plugin {shown} is registered, and the plugin entry point of that "
                    f"name failed to load: {failure.describe()}.",
                    failure.fix,
                )
        valid = ", ".join(self.names(stage)) or "(none installed)"
        what = f"Unknown {stage} plugin {shown}. Valid names: {valid}."
        if self._failures:
            n = len(self._failures)
            what += (
                f" {n} installed plugin{'s' if n > 1 else ''} failed to load and may provide it "
                "(`removalx plugins` shows them)."
            )
        return PluginNotFoundError(
            what,
            "Pick one of the valid names, or install the package that provides "
            f"{shown} (run `removalx plugins` to see what is installed).",
        )

    def make(self, stage: str, name: str, config: BaseModel | dict[str, Any] | None = None) -> Any:
        """Build the stage object of plugin ``name`` from ``config``."""
        return self.get(stage, name).make(config)

    def _check_stage(self, stage: str) -> None:
        if stage not in STAGES:
            raise PluginNotFoundError(
                f"Unknown stage {_clip(repr(stage), 80)}. Stages: {', '.join(STAGES)}.",
                "Use one of the listed stage names.",
            )


def _load_order(ep: md.EntryPoint) -> tuple[int, str, str]:
    dist = ep.dist.name if ep.dist is not None else ""
    return (dist != BUILTIN_DISTRIBUTION, dist.lower(), ep.name)


def strict_error(failures: list[PluginFailure]) -> PluginError:
    """The :class:`PluginError` strict mode raises for ``failures`` (at least one)."""
    n = len(failures)
    shown = "; ".join(f.describe() for f in failures[:3]) + (f"; and {n - 3} more" if n > 3 else "")
    return PluginError(
        f"{n} removalx plugin{'s' if n > 1 else ''} failed to load (strict plugin loading is on): {shown}.",
        f"{failures[0].fix} Or drop --strict-plugins / unset {STRICT_ENV} to skip broken plugins "
        "with a warning.",
    )


_lock = threading.Lock()
_default: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded from entry points on first use.

    Raises
    ------
    PluginError
        When strict plugin loading is on (:data:`STRICT_ENV`) and a plugin failed to load.
    """
    global _default
    with _lock:
        if _default is None:
            reg = Registry()
            reg.load_entry_points()
            _default = reg
        reg = _default
    if reg.failures and strict_plugins():  # strict mode switched on after a lenient load
        raise strict_error(reg.failures)
    return reg


def reset_registry() -> None:
    """Forget the loaded registry (the next :func:`get_registry` reloads entry points)."""
    global _default
    with _lock:
        _default = None
