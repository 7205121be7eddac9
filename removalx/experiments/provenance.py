"""What an experiment ran on, recorded at run time and read back for the report.

At run time :func:`run_provenance` gathers what the results database does not hold otherwise:
the software versions, the model's weights fingerprint (sha256 of the weights file, streamed),
each method's base recipe (the recipe before overrides) and which settings are the plugins'
defaults, and each metric's resolved config. ``run_experiment`` stores it under the key
``"provenance"`` of the experiment's recorded arguments (a JSON column every database already
has, so older databases stay readable and no schema changes).

:func:`experiment_facts` reads one experiment back (the model, the data set and clip size, every
method's recipe as a diff against its base recipe, every metric's protocol, the seeds, the
software) for the report's "Setup" part, the methods paragraph and the bibliography.
Databases written before provenance was recorded get what the store holds; what it lacks is
named as not recorded, never guessed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from removalx.experiments.recipe_diff import Change, recipe_changes

__all__ = [
    "ExperimentFacts",
    "MethodFacts",
    "MetricFacts",
    "experiment_facts",
    "run_provenance",
    "sha256_file",
    "software_versions",
    "stage_defaults",
    "weights_fingerprint",
]

#: Distributions whose versions a run records.
SOFTWARE = ("removalx", "torch", "numpy", "scipy", "pydantic")
#: Bytes read at a time when hashing a weights file.
CHUNK = 1 << 20
#: Version of the recorded provenance layout.
LAYOUT = 1


def software_versions() -> dict[str, str]:
    """Python, the platform and the versions of :data:`SOFTWARE` installed here.

    A module's own ``__version__`` wins over its distribution's (torch's names its build,
    e.g. ``2.4.1+cu121``).
    """
    out = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for dist in SOFTWARE:
        try:
            out[dist] = str(
                getattr(importlib.import_module(dist), "__version__", "")
            ) or importlib.metadata.version(dist)
        except (ImportError, importlib.metadata.PackageNotFoundError):
            out[dist] = "not installed"
    return out


def sha256_file(path: str | Path) -> str:
    """sha256 hex digest of a file, read in :data:`CHUNK`-byte pieces."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _hashed(kind: str, path: Path, note: str = "") -> dict[str, Any]:
    if not path.is_file():
        return {"kind": kind, "path": str(path), "sha256": None, "note": "file not found"}
    return {"kind": kind, "path": str(path), "sha256": sha256_file(path), "note": note}


def weights_fingerprint(model: str, weights: str | None) -> dict[str, Any]:
    """What defines the weights of model spec ``model`` and their sha256.

    ``kind`` is one of ``"zoo (bundled)"``, ``"zoo (folder)"``, ``"weights file"``,
    ``"random init"``, ``"factory code"`` (a ``python:`` model whose code sets its weights; the
    hash is the source file's), ``"hf folder"`` (hash of its weight files) or
    ``"adapter default"`` (nothing to hash here).
    """
    adapter, sep, target = model.partition(":")
    if not sep:
        adapter, target = "zoo", model
    if weights is not None and weights.strip().lower() == "none":
        return {"kind": "random init", "sha256": None, "note": "weights='none'"}
    if adapter == "zoo":
        from removalx.zoo.models import WEIGHTS_DIR

        folder = Path(weights) if weights is not None else Path(WEIGHTS_DIR)
        kind = "zoo (bundled)" if weights is None else "zoo (folder)"
        return _hashed(kind, folder / f"{target or 'r3d_tiny'}.pt")
    if weights is not None:
        return _hashed("weights file", Path(weights))
    if adapter == "torchvision":
        return {
            "kind": "random init",
            "sha256": None,
            "note": "no weights given (torchvision never downloads)",
        }
    if adapter == "python":
        source = Path(target.rsplit(":", 1)[0])
        if source.suffix == ".py":
            return _hashed("factory code", source, "sha256 of the model's source file")
        return {"kind": "factory code", "sha256": None, "note": f"module {target[:80]}"}
    if adapter == "hf" and Path(target).is_dir():
        files = sorted(p for p in Path(target).iterdir() if p.suffix in (".safetensors", ".bin"))
        h = hashlib.sha256()
        for p in files:
            h.update(sha256_file(p).encode())
        return {"kind": "hf folder", "path": target, "sha256": h.hexdigest() if files else None, "note": ""}
    return {"kind": "adapter default", "sha256": None, "note": ""}


def stage_defaults(recipe: Mapping[str, Any], registry: Any = None) -> list[str]:
    """Dotted keys of ``recipe`` whose value is its plugin's default (``removal.sigma``).

    Stages whose plugin is not installed, or whose config has required fields, are skipped.
    """
    from removalx.core.registry import get_registry

    reg = registry or get_registry()
    out: list[str] = []
    for stage, cfg in recipe.items():
        if not isinstance(cfg, Mapping) or "name" not in cfg:
            continue
        try:
            default = reg.get(stage, str(cfg["name"])).config().model_dump(mode="json")
        except Exception:  # not installed here, or a config without defaults
            continue
        out.extend(f"{stage}.{k}" for k, v in cfg.items() if k != "name" and k in default and default[k] == v)
    return out


def _resolved_metric(spec: Any) -> dict[str, Any]:
    """A metric's resolved config (defaults and preset filled in) as JSON data."""
    from removalx.core.registry import get_registry

    try:
        return dict(get_registry().get("metric", spec.name).make(spec.config).config.model_dump(mode="json"))
    except Exception:  # a metric object without a pydantic config: the user's config
        return dict(spec.config)


def _base_recipe(source: Any) -> dict[str, Any] | None:
    from removalx.core.recipe import load_recipe

    try:
        return load_recipe(source).to_dict()
    except Exception:  # a recipe that no longer loads: no base, the resolved recipe still is stored
        return None


def run_provenance(
    triples: Iterable[tuple[str, Any, Mapping[str, Any]]],
    methods: Iterable[Any],
    metrics: Iterable[Any],
    model: str,
    weights: str | None,
) -> dict[str, Any]:
    """The provenance record of a run (JSON data), stored with the experiment.

    Parameters
    ----------
    triples : iterable of (label, recipe, overrides)
        The methods as given (their recipes before overrides are the base recipes).
    methods : iterable of Method
        The validated methods (:func:`~removalx.experiments.runner.make_methods`).
    metrics : iterable of MetricSpec
        The metrics scored per explanation.
    model, weights : str
        The model spec and ``--weights``.
    """
    sources = {label: recipe for label, recipe, _ in triples}
    out_methods: dict[str, Any] = {}
    for m in methods:
        recipe = m.to_dict()
        out_methods[m.label] = {
            "recipe": recipe,
            "base": _base_recipe(sources[m.label]) if m.label in sources else None,
            "defaults": [] if recipe is None else stage_defaults(recipe),
            "seed": m.seed,
        }
    return {
        "layout": LAYOUT,
        "software": software_versions(),
        "model": weights_fingerprint(model, weights),
        "methods": out_methods,
        "metrics": {
            s.label: {"name": s.name, "config": _resolved_metric(s), "fill_source": s.fill_source}
            for s in metrics
        },
    }


@dataclass
class MethodFacts:
    """One method of an experiment: its resolved recipe and how it differs from its base."""

    label: str
    recipe: dict[str, Any] | None
    base_name: str | None
    changes: list[Change] = field(default_factory=list)
    defaults: set[str] = field(default_factory=set)
    seeds: list[int] = field(default_factory=list)
    n_videos: int = 0
    base: dict[str, Any] | None = None


@dataclass
class MetricFacts:
    """One metric column: its plugin, resolved config and the protocol line of its scores."""

    label: str
    plugin: str
    config: dict[str, Any]
    protocol: str


@dataclass
class ExperimentFacts:
    """What the report states about one experiment (:func:`experiment_facts`)."""

    name: str
    kind: str
    args: dict[str, Any]
    model: str
    weights: str | None
    weights_info: dict[str, Any] | None
    dataset: str
    clip_shape: tuple[int, ...] | None
    n_clips: int
    methods: list[MethodFacts]
    common: list[Change]
    metrics: list[MetricFacts]
    software: dict[str, str] | None
    recorded: bool

    @property
    def recipes(self) -> list[dict[str, Any] | None]:
        return [m.recipe for m in self.methods]


# -- reading an experiment back -------------------------------------------------------------------
def _dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a dict, else an empty one (JSON read from a database may be anything)."""
    return value if isinstance(value, dict) else {}


def _recorded(exp: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance record stored with ``exp`` (empty for databases written before it existed)."""
    args = exp.get("args")
    prov = args.get("provenance") if isinstance(args, dict) else None
    return prov if isinstance(prov, dict) else {}


def _json_column(store: Any, sql: str, params: tuple[Any, ...]) -> Any:
    """One JSON cell read from the (read-only) store, ``None`` if missing or damaged."""
    import json
    import sqlite3

    try:
        row = store.db.execute(sql, params).fetchone()
        return None if row is None or row[0] is None else json.loads(row[0])
    except (sqlite3.Error, ValueError, TypeError):
        return None


def _builtin_base(recipe: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The built-in recipe ``recipe`` names, loaded now (databases without a recorded base)."""
    from removalx.core.recipe import builtin_recipes

    name = None if recipe is None else recipe.get("name")
    return _base_recipe(name) if isinstance(name, str) and name in builtin_recipes() else None


def _method_facts(
    store: Any, exp: Mapping[str, Any], rows: list[dict[str, Any]], prov: dict[str, Any]
) -> list[MethodFacts]:
    out: list[MethodFacts] = []
    recorded = _dict(prov.get("methods"))
    for label in exp["methods"]:
        mine = [r for r in rows if r["method"] == label]
        rec = recorded.get(label) if isinstance(recorded.get(label), dict) else None
        if rec is not None:
            recipe, base, defaults = rec.get("recipe"), rec.get("base"), set(rec.get("defaults") or ())
        else:
            recipe = (
                _json_column(store, "SELECT recipe FROM explanations WHERE id = ?", (mine[0]["id"],))
                if mine
                else None
            )
            base = _builtin_base(recipe)
            defaults = set(stage_defaults(recipe)) if isinstance(recipe, dict) else set()
        recipe = recipe if isinstance(recipe, dict) else None
        base_name = None if recipe is None else str(recipe.get("name", "custom"))
        out.append(
            MethodFacts(
                label,
                recipe,
                base_name,
                recipe_changes(base, recipe),
                defaults,
                sorted({int(r["seed"]) for r in mine}),
                len({r["item"] for r in mine}),
                base if isinstance(base, dict) else None,
            )
        )
    return out


def _metric_facts(
    store: Any, exp: Mapping[str, Any], scores: list[dict[str, Any]], prov: dict[str, Any]
) -> list[MetricFacts]:
    from removalx.experiments.recipe_diff import fmt_value
    from removalx.metrics.presets import settings_line

    recorded = _dict(prov.get("metrics"))
    first: dict[str, dict[str, Any]] = {}
    for s in scores:
        first.setdefault(s["metric"], s["details"])
    out = []
    for label in exp["metrics"]:
        rec = recorded.get(label) if isinstance(recorded.get(label), dict) else None
        if rec is None:
            cfg = _json_column(store, "SELECT config FROM scores WHERE metric = ? LIMIT 1", (label,))
            rec = {
                "name": (cfg or {}).get("name", label),
                "config": {k: v for k, v in (cfg or {}).items() if k != "name"},
            }
        config = dict(rec.get("config") or {})
        details = first.get(label, {})
        if details.get("preset") and "preset" not in config:  # the preset the scores were made with
            config["preset"] = details["preset"]
        if details.get("preset") or details.get("settings"):
            protocol = settings_line(label, details)
        else:
            body = " ".join(f"{k}={fmt_value(v)}" for k, v in config.items())
            protocol = f"{label}: {body}" if body else f"{label}: plugin defaults"
        if rec.get("fill_source"):
            protocol += f" (fill colour: {rec['fill_source']})"
        out.append(MetricFacts(label, str(rec.get("name", label)), config, protocol))
    return out


def experiment_facts(store: Any, exp: Mapping[str, Any]) -> ExperimentFacts:
    """Everything the report states about experiment ``exp`` (a row of ``Store.experiments()``).

    Reads only the store (and, for databases written before provenance was recorded, the
    installed built-in recipes and the model's weights file, labelled so in ``weights_info``).
    """
    from removalx.experiments.recipe_diff import common_changes
    from removalx.experiments.runner import Scope

    args = _dict(exp.get("args"))
    prov = _recorded(exp)
    scope = Scope.of_experiment(exp)
    methods = list(exp["methods"])
    rows = [e for e in store.explanations(methods) if scope.admits(e)]
    scores = [s for s in store.scores() if scope.admits(s) and s["method"] in methods]
    model, weights = str(args.get("model") or (rows[0]["model"] if rows else "unknown")), args.get("weights")
    info = prov.get("model") if isinstance(prov.get("model"), dict) else None
    if info is None and model != "unknown":
        info = {**weights_fingerprint(model, weights), "when": "hashed when the report was written"}
    items = list(dict.fromkeys(r["item"] for r in rows))
    dataset = str(exp.get("dataset") or (rows[0]["dataset"] if rows else ""))
    video = store.video(dataset, items[0]) if items else None
    method_facts = _method_facts(store, exp, rows, prov)
    recipes = [m for m in method_facts if m.recipe is not None]
    common = common_changes([m.changes for m in recipes]) if len(recipes) > 1 else []
    for m in recipes:
        m.changes = [c for c in m.changes if c not in common]
    return ExperimentFacts(
        name=str(exp["name"]),
        kind=str(exp.get("kind", "evaluate")),
        args=dict(args),
        model=model,
        weights=weights,
        weights_info=info,
        dataset=dataset,
        clip_shape=None if video is None else tuple(int(x) for x in video["video"].shape[:3]),
        n_clips=len(items),
        methods=method_facts,
        common=common,
        metrics=_metric_facts(store, exp, scores, prov),
        software=prov.get("software") if isinstance(prov.get("software"), dict) else None,
        recorded=bool(prov),
    )
