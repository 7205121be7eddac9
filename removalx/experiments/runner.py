"""Dataset-scale runs: explain every clip with every method and score every explanation.

The work loop behind ``evaluate``, ``compare`` and ``ablate`` (docs/experiments.md): items x methods,
each explanation and score committed to the :class:`~removalx.experiments.store.Store` as
soon as it exists and skipped when already stored (key: dataset item, recipe hash, model,
seed). Several runs may fill one store at once: a unit another run stored first is kept,
counted as skipped, and its stored explanation is what this run scores. Methods that share a
sample plan (an ablation of removal, behavior or summary) run on one explainer cache per clip,
so a variant that changes only the summary costs no forward pass (docs/design-notes.md, "Reusing forward passes").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from removalx.core.classifier import VideoClassifier
from removalx.core.progress import tqdm
from removalx.core.registry import Registry, get_registry
from removalx.data.datasets import Item, ItemRef
from removalx.errors import ConfigError
from removalx.experiments.stats import bootstrap_ci, mean_ci, paired_test, score_range
from removalx.experiments.store import Store, config_hash
from removalx.experiments.units import (
    RunContext,
    RunCounts,
    plan_groups,
    plan_units,
    random_attribution,
    write_unit,
)
from removalx.metrics import ensure_metric_plugins, pooled_hit_rate, reliability_alpha

__all__ = [
    "RANDOM",
    "Method",
    "MetricSpec",
    "RunCounts",
    "Scope",
    "WorkerSpec",
    "aggregate",
    "alpha_table",
    "build_context",
    "make_context",
    "make_methods",
    "paired_table",
    "parse_metrics",
    "random_attribution",
    "recipe_label",
    "run_items",
    "run_units",
]

#: Label of the random-map baseline (N(0, 1) noise per pixel, as the STEP authors' released code
#: draws it), the ``r`` of STEP Eq. 21.
RANDOM = "random"


@dataclass
class Method:
    """One explanation method of a run: a label, a validated recipe (``None`` = random maps)."""

    label: str
    recipe: Any | None
    recipe_hash: str
    seed: int
    explainer: Any | None = None

    def to_dict(self) -> dict[str, Any] | None:
        return None if self.recipe is None else self.recipe.to_dict()


@dataclass
class MetricSpec:
    """A metric to compute: a column label, the plugin name and its config.

    ``fill_source`` names where a ``fill_value`` the run put into ``config`` came from (the
    dataset's mean colour: :func:`removalx.experiments.substrates.with_dataset_mean`); ``None``
    when ``config`` is the user's.
    """

    label: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    fill_source: str | None = None

    @cached_property
    def hash(self) -> str:
        """Hash of the label, the plugin and its *resolved* config (defaults and preset filled in).

        Hashing the resolved settings means a stored score is reused only when it was made
        with the same protocol, also after a metric's defaults change.
        """
        try:
            resolved = (
                get_registry().get("metric", self.name).make(self.config).config.model_dump(mode="json")
            )
        except AttributeError:  # a metric object without a pydantic ``config``: the user's config
            resolved = self.config
        return config_hash({"label": self.label, "name": self.name, "config": resolved})


def parse_metrics(spec: str, sets: Iterable[str] = (), registry: Registry | None = None) -> list[MetricSpec]:
    """Parse ``--metrics a,b,alias=plugin`` and ``--metric-set label.key=value`` (YAML values)."""
    reg = ensure_metric_plugins(registry)
    out: dict[str, MetricSpec] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        label, eq, name = part.partition("=")
        label, name = label.strip(), (name if eq else label).strip()
        if not label or not name:
            raise ConfigError(
                f"--metrics entry {part[:80]!r} has an empty label or plugin name.",
                "Write each entry as PLUGIN or LABEL=PLUGIN, e.g. --metrics deletion,del28=deletion.",
            )
        if label in out:
            raise ConfigError(
                f"--metrics names the label {label[:80]!r} twice ({out[label].name} and {name[:80]}); every "
                "metric needs its own label (it names the score's column).",
                "Give the second one another label, e.g. --metrics a=deletion,b=insertion.",
            )
        reg.get("metric", name)  # raises PluginNotFoundError listing the valid names
        out[label] = MetricSpec(label, name)
    if not out:
        raise ConfigError("--metrics is empty.", "Pass e.g. --metrics deletion,insertion.")
    for s in sets:
        key, eq, value = s.partition("=")
        label, dot, field_ = key.partition(".")
        if not eq or not dot or label not in out:
            raise ConfigError(
                f"Bad --metric-set {s!r}; expected METRIC.KEY=VALUE with METRIC one of {', '.join(out)}.",
                "E.g. --metric-set deletion.steps=28.",
            )
        out[label].config[field_.strip()] = yaml.safe_load(value)
    for m in out.values():  # validate configs now, not after an hour of explaining
        try:
            reg.get("metric", m.name).make(m.config)
        except Exception as exc:
            raise ConfigError(
                f"Invalid config for metric {m.label!r} ({m.name}): {exc}",
                "Check the field names with `removalx plugins --stage metric`.",
            ) from exc
    return list(out.values())


def make_methods(
    recipes: Iterable[tuple[str, str | Any, Mapping[str, Any]]],
    seed: int | None,
    registry: Registry | None = None,
    batch_size: int | None = None,
    random_baseline: bool = False,
) -> list[Method]:
    """Build :class:`Method` objects from ``(label, recipe, overrides)`` triples."""
    from removalx.pipeline import Explainer

    out: list[Method] = []
    for label, recipe, overrides in recipes:
        ex = Explainer.from_recipe(
            recipe,
            seed=seed,
            overrides=dict(overrides),
            registry=registry,
            batch_size=batch_size,
            progress=False,
        )
        out.append(Method(label, ex.recipe, config_hash(ex.recipe.to_dict()), ex.seed, ex))
    if random_baseline:
        out.append(Method(RANDOM, None, "random-normal-v2", 0 if seed is None else int(seed)))
    labels = [m.label for m in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"Two methods have the same label: {labels}.", "Give each recipe a distinct name.")
    return out


def recipe_label(recipe: str) -> str:
    """A method's label: a recipe file's stem (``my/lime.yaml`` -> ``lime``), else the recipe name."""
    return Path(recipe).stem if recipe.endswith((".yaml", ".yml")) else recipe


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs to compute units, as plain data (no pickled modules).

    The model is rebuilt from its spec, each method from its validated recipe, each metric from
    its plugin name and config; a worker whose plugins resolve a recipe to another hash refuses
    to start (its results would not be those of the driver's recipe).
    """

    model: str
    weights: str | None
    device: str | None
    methods: tuple[tuple[str, dict[str, Any] | None, str, int], ...]
    metrics: tuple[tuple[str, str, dict[str, Any]], ...]
    batch_size: int | None = None
    target_mode: str = "pred"
    item_delay: float = 0.0

    @classmethod
    def of(
        cls,
        methods: list[Method],
        metrics: list[MetricSpec],
        model: str,
        weights: str | None = None,
        device: str | None = None,
        **kwargs: Any,
    ) -> WorkerSpec:
        return cls(
            model,
            weights,
            device,
            tuple((m.label, m.to_dict(), m.recipe_hash, m.seed) for m in methods),
            tuple((m.label, m.name, dict(m.config)) for m in metrics),
            **kwargs,
        )


def build_context(spec: WorkerSpec, registry: Registry | None = None) -> RunContext:
    """Load the model and rebuild the methods and metrics of ``spec`` (in a worker process)."""
    from removalx.models import load_model
    from removalx.pipeline import Explainer

    model = load_model(spec.model, weights=spec.weights, device=spec.device)
    methods: list[Method] = []
    for label, recipe, rhash, seed in spec.methods:
        if recipe is None:
            methods.append(Method(label, None, rhash, seed))
            continue
        ex = Explainer.from_recipe(recipe, registry=registry, batch_size=spec.batch_size, progress=False)
        got = config_hash(ex.recipe.to_dict())
        if got != rhash:
            raise ConfigError(
                f"Method {label[:80]!r} resolves to recipe hash {got} in this worker, {rhash} on the driver.",
                "Install the same removalx and plugin versions on the workers as on the driver.",
            )
        methods.append(Method(label, ex.recipe, got, ex.seed, ex))
    metrics = [MetricSpec(label, name, dict(config)) for label, name, config in spec.metrics]
    return make_context(model, methods, metrics, spec.target_mode, spec.item_delay, registry)


def make_context(
    model: VideoClassifier,
    methods: list[Method],
    metrics: list[MetricSpec],
    target_mode: str = "pred",
    item_delay: float = 0.0,
    registry: Registry | None = None,
) -> RunContext:
    """A :class:`~removalx.experiments.units.RunContext` with the metric objects built."""
    reg = ensure_metric_plugins(registry)
    metric_objs = {m.label: reg.get("metric", m.name).make(m.config) for m in metrics}
    return RunContext(model, list(methods), list(metrics), metric_objs, target_mode, item_delay)


def run_units(
    store: Store,
    refs: list[ItemRef],
    methods: list[Method],
    metrics: list[MetricSpec],
    model_key: str,
    executor: Any,
    *,
    run_id: int,
    progress: bool = True,
) -> RunCounts:
    """Plan the units not stored yet, compute them with ``executor``, write each as it arrives.

    ``executor.run(units)`` yields ``(unit, result)`` pairs in any order
    (:class:`~removalx.experiments.executors.LocalExecutor`, or the Ray executor of
    docs/scaling.md); this process is the store's only writer.
    """
    counts = RunCounts()
    units = plan_units(store, refs, methods, metrics, model_key, counts)
    total = len(refs) * len(plan_groups(methods))
    with tqdm(total=total, desc="units (videos x methods)", unit="unit", disable=not progress) as bar:
        for unit, result in executor.run(units):
            write_unit(store, unit, result, methods, metrics, model_key, run_id, counts)
            bar.update(1)
    return counts


def run_items(
    store: Store,
    items: Iterator[Item],
    n_items: int,
    methods: list[Method],
    metrics: list[MetricSpec],
    model: VideoClassifier,
    model_key: str,
    *,
    run_id: int,
    target_mode: str = "pred",
    progress: bool = True,
    registry: Registry | None = None,
    item_delay: float = 0.0,
) -> RunCounts:
    """Explain and score every item with every method in this process; store as it goes.

    Parameters
    ----------
    target_mode : {"pred", "label"}
        Explain the model's top class, or the dataset label when known.
    item_delay : float
        Seconds to sleep after each (item, method) pair (throttling on a shared machine).
    """
    from removalx.experiments.executors import LocalExecutor

    refs = [ItemRef(it.dataset, it.item, it.label, it.source) for it in items]
    ctx = make_context(model, methods, metrics, target_mode, item_delay, registry)
    return run_units(
        store, refs, methods, metrics, model_key, LocalExecutor(ctx), run_id=run_id, progress=progress
    )


# -- tables -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """The stored rows of one experiment: its model key and data set (``None``: any).

    A database may hold runs of several models and data sets under the same method labels;
    tables of one experiment read only the rows of its model and data set.
    """

    model: str | None = None
    dataset: str | None = None

    def admits(self, row: Mapping[str, Any]) -> bool:
        """Whether an explanation or score row (with ``model`` and ``dataset``) belongs here."""
        return (self.model is None or row.get("model") == self.model) and (
            self.dataset is None or row.get("dataset") == self.dataset
        )

    @classmethod
    def of_experiment(cls, exp: Mapping[str, Any]) -> Scope:
        """The scope of a row of :meth:`Store.experiments` (its recorded ``model`` / ``weights``)."""
        recorded = exp.get("args")
        args: Mapping[str, Any] = recorded if isinstance(recorded, dict) else {}
        model, weights = args.get("model"), args.get("weights")
        key = None if model is None else (str(model) if weights is None else f"{model}@{weights}")
        return cls(key, exp.get("dataset") or None)


def _scoped_scores(store: Store, scope: Scope | None) -> list[dict[str, Any]]:
    """The score rows within ``scope``, read once for a table."""
    sc = scope or Scope()
    return [s for s in store.scores() if sc.admits(s)]


def _scores_by(
    scores: list[dict[str, Any]], methods: list[str], metrics: list[str]
) -> dict[tuple[str, str], dict[str, float]]:
    """``{(method, metric): {item: value}}`` for the given labels."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for s in scores:
        if s["method"] in methods and s["metric"] in metrics:
            out.setdefault((s["method"], s["metric"]), {})[f"{s['dataset']}|{s['item']}"] = s["value"]
    return out


def aggregate(
    store: Store, methods: list[str], metrics: list[str], scope: Scope | None = None
) -> list[dict[str, Any]]:
    """Methods x metrics rows: mean, 95% CI (BCa bootstrap, clipped to the metric's range, labelled,
    flagged below 10 videos: :func:`~removalx.experiments.stats.bootstrap_ci`), n, mean
    explanation time, forward and backward passes (rows within ``scope``)."""
    sc = scope or Scope()
    scores = _scoped_scores(store, sc)
    by = _scores_by(scores, methods, metrics)
    expl = [e for e in store.explanations(methods) if sc.admits(e)]
    rows: list[dict[str, Any]] = []
    orient: dict[str, bool] = {}
    details: dict[tuple[str, str], list[dict[str, Any]]] = {}
    ranges: dict[str, tuple[float, float] | None] = {}
    for s in scores:
        if s["metric"] in metrics and "higher_is_better" in s["details"]:
            orient[s["metric"]] = bool(s["details"]["higher_is_better"])
        if s["metric"] in metrics:
            ranges.setdefault(s["metric"], score_range(s["details"]))
        details.setdefault((s["method"], s["metric"]), []).append(s["details"])
    for method in methods:
        mine = [e for e in expl if e["method"] == method]
        t = mean_ci([e["time_s"] for e in mine])
        nf = mean_ci([e["n_forward"] for e in mine])
        nb = mean_ci([e.get("n_backward") or 0 for e in mine])
        row: dict[str, Any] = {
            "method": method,
            "n_videos": len(mine),
            "time_s": t["mean"],
            "n_forward": nf["mean"],
            "n_backward": nb["mean"],
        }
        for metric in metrics:
            values = list(by.get((method, metric), {}).values())
            stats: dict[str, Any] = bootstrap_ci(values, value_range=ranges.get(metric))
            pooled = _pooled(details.get((method, metric), []))
            if pooled is not None:  # pointing games: the paper's dataset hit rate, not a mean of clips
                stats = {**stats, "mean": pooled[0], "pooling": pooled[1]}
            row[metric] = stats
            row[metric]["higher_is_better"] = orient.get(metric)
        rows.append(row)
    return rows


def _pooled(details: list[dict[str, Any]]) -> tuple[float, str] | None:
    """``(pooled hit rate, pooling)`` of a pointing-game metric whose scores say how to pool them."""
    if not details or not all("pooling" in d and "hits" in d for d in details):
        return None
    pooling = str(details[0]["pooling"])
    return pooled_hit_rate(details, pooling), pooling  # type: ignore[arg-type]


def alpha_table(
    store: Store, methods: list[str], metrics: list[str], random: str = RANDOM, scope: Scope | None = None
) -> dict[str, float]:
    """STEP Eq. 20-21 ``alpha`` of every AUC metric (one with a curve) over the videos all methods share."""
    scores = _scoped_scores(store, scope)
    by = _scores_by(scores, [*methods, random], metrics)
    out: dict[str, float] = {}
    others = [m for m in methods if m != random]
    curve_metrics = {
        s["metric"]: s["details"].get("higher_is_better", True)
        for s in scores
        if s["metric"] in metrics and "curve" in s["details"]
    }
    for metric, hib in curve_metrics.items():
        if (random, metric) not in by or not others:
            continue
        items = set(by[(random, metric)])
        for m in others:
            items &= set(by.get((m, metric), {}))
        items_l = sorted(items)
        if len(items_l) < 2:
            out[metric] = float("nan")
            continue
        # STEP Sec. V-B: the random maps are one of the methods whose ranking is compared.
        a = [[by[(m, metric)][i] for m in [random, *others]] for i in items_l]
        r = [by[(random, metric)][i] for i in items_l]
        out[metric] = float(reliability_alpha(a, r, higher_is_better=bool(hib)))  # type: ignore[arg-type]
    return out


def paired_table(
    store: Store, methods: list[str], metrics: list[str], scope: Scope | None = None
) -> list[dict[str, Any]]:
    """Each variant against the first (baseline) on the videos both have: paired tests per metric."""
    by = _scores_by(_scoped_scores(store, scope), methods, metrics)
    rows = []
    base = methods[0]
    for m in methods[1:]:
        for metric in metrics:
            a, b = by.get((base, metric), {}), by.get((m, metric), {})
            common = sorted(set(a) & set(b))
            test = paired_test([a[i] for i in common], [b[i] for i in common])
            rows.append({"baseline": base, "variant": m, "metric": metric, "n": len(common), **test})
    return rows
