"""Python API of the experiments: ``evaluate``, ``compare`` and ``ablate`` returning DataFrames.

The CLI subcommands are a thin layer over :func:`run_experiment` (docs/experiments.md, "Python"):
the same options (:class:`Options`, one field per command-line flag), the same store, the same
executors. :func:`evaluate`, :func:`compare` and :func:`ablate` return an :class:`Experiment`
whose ``scores`` (one row per video x method x metric) and ``summary`` (one row per method x
metric: mean and 95 % CI) are ``pandas`` DataFrames (the ``pandas`` extra).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from removalx.errors import ConfigError, truncate
from removalx.experiments.runner import Scope
from removalx.experiments.store import Store
from removalx.experiments.units import RunCounts

__all__ = ["Experiment", "Options", "ablate", "compare", "evaluate", "run_experiment"]


@dataclass
class Options:
    """Options of a run; each is the command-line flag of the same name (docs/experiments.md)."""

    db: str | Path = "results.db"
    dataset: str = "zoo:synthetic"
    n_videos: int | None = None
    frames: int = 16
    size: int = 112
    data_seed: int = 0
    video_root: str | None = None
    classes: str | None = None
    boxes: str | None = None
    only_correct_by: str | Sequence[str] | None = None
    metrics: str | Sequence[str] = "deletion,insertion"
    metric_set: Sequence[str] = ()
    #: ``["KEY=VALUE", "RECIPE:KEY=VALUE"]``, ``{"KEY": value}`` or ``{"RECIPE": {...}, "*": {...}}``
    #: (:mod:`removalx.experiments.overrides`).
    overrides: Sequence[str] | Mapping[str, Any] = ()
    model: str = "zoo:r3d_tiny"
    weights: str | None = None
    device: str | None = None
    seed: int | None = None
    target: str = "pred"
    batch_size: int | None = None
    name: str | None = None
    progress: bool = True
    item_delay: float = 0.0
    executor: str = "local"
    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0

    @classmethod
    def of(cls, db: str | Path, **kwargs: Any) -> Options:
        """Options from keyword arguments; an unknown name is a :class:`ConfigError` listing the valid ones."""
        names = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(k for k in kwargs if k not in names)
        if bad:
            raise ConfigError(
                f"Unknown option{'s' if len(bad) > 1 else ''} {', '.join(k[:40] for k in bad[:5])}.",
                f"Valid options: {', '.join(sorted(names))}.",
            )
        return cls(db=db, **kwargs)


@dataclass
class Outcome:
    """What :func:`run_experiment` did: the open store, method and metric labels, counts.

    ``retrain_metrics`` are the labels of the dataset-level KAR / ROAR metrics and ``retrained``
    the number of their curve points computed by this run (:mod:`removalx.experiments.retrain`).
    ``notes`` are one line per recipe a global override was skipped for
    (:func:`removalx.experiments.overrides.resolve_overrides`).
    """

    store: Store
    methods: list[str]
    metrics: list[str]
    counts: RunCounts
    name: str = ""
    retrain_metrics: list[str] = field(default_factory=list)
    retrained: int = 0
    scope: Scope = field(default_factory=Scope)
    notes: list[str] = field(default_factory=list)


@dataclass
class Experiment:
    """Result of :func:`evaluate`, :func:`compare` or :func:`ablate`.

    Attributes
    ----------
    scores : pandas.DataFrame
        One row per video x method x metric (:meth:`Store.to_pandas` restricted to this run's labels).
    summary : pandas.DataFrame
        One row per method x metric: ``mean, sd, ci_low, ci_high, n, higher_is_better, pooling``
        and the method's mean ``time_s`` and ``n_forward`` per explanation.
    alpha : dict
        ``compare``: the reliability alpha (STEP journal Eq. 20-21) of every AUC metric.
    paired : pandas.DataFrame or None
        ``ablate``: each variant against the first, per metric (paired t and Wilcoxon tests).
    counts : RunCounts
        Explanations and scores computed vs. reused from the store.
    notes : list of str
        ``compare``: one line per recipe a global override was not applied to because the recipe
        lacks the key's stage (e.g. ``sample_selection.n_samples`` for ``grad_cam``).
    """

    db: Path
    methods: list[str]
    metrics: list[str]
    scores: Any
    summary: Any
    counts: RunCounts
    alpha: dict[str, float] = field(default_factory=dict)
    paired: Any = None
    notes: list[str] = field(default_factory=list)


def _label(recipe: str) -> str:
    return Path(recipe).stem if recipe.endswith((".yaml", ".yml")) else recipe


def _split(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [p.strip() for p in parts if p.strip()]


def _executor(opts: Options, methods: list[Any], metric_specs: list[Any], model_key: str) -> Any:
    """The executor of ``opts.executor`` (a local one loads the model here)."""
    from removalx.experiments.executors import LocalExecutor, check_executor
    from removalx.experiments.runner import WorkerSpec, make_context

    check_executor(opts.executor)
    if opts.executor == "ray":
        from removalx.experiments.ray_executor import RayExecutor

        spec = WorkerSpec.of(
            methods,
            metric_specs,
            opts.model,
            opts.weights,
            opts.device,
            batch_size=opts.batch_size,
            target_mode=opts.target,
            item_delay=opts.item_delay,
        )
        return RayExecutor(
            spec,
            address=opts.address,
            workers=opts.workers,
            cpus_per_worker=opts.cpus_per_worker,
            gpus_per_worker=opts.gpus_per_worker,
        )
    from removalx.models import load_model

    model = load_model(opts.model, weights=opts.weights, device=opts.device)
    return LocalExecutor(make_context(model, methods, metric_specs, opts.target, opts.item_delay))


def _with_dataset_mean(metric_specs: list[Any], opts: Options, dataset: str) -> list[Any]:
    """The metrics removing to ``dataset_mean`` without a colour get the dataset's (STEP Eq. 12)."""
    from removalx.experiments.substrates import with_dataset_mean
    from removalx.metrics import dataset_mean

    def mean() -> list[float]:
        return dataset_mean(
            opts.dataset,
            n_videos=opts.n_videos,
            frames=opts.frames,
            size=opts.size,
            seed=opts.data_seed,
            video_root=opts.video_root,
            classes=opts.classes,
        )

    return with_dataset_mean(metric_specs, mean, dataset)


def _check_executor_options(opts: Options) -> None:
    """Refuse, before any work, what would make the executor fail or hang later.

    An unknown executor, Ray options without ``executor="ray"``, a missing ``ray`` extra and a
    malformed or unreachable ``address`` (:func:`removalx.experiments.ray_executor.check_address`).
    """
    from removalx.experiments.executors import check_executor, check_ray_options

    check_executor(opts.executor)
    check_ray_options(
        opts.executor,
        address=opts.address,
        workers=opts.workers,
        cpus_per_worker=opts.cpus_per_worker,
        gpus_per_worker=opts.gpus_per_worker,
    )
    if opts.executor == "ray":
        from removalx.experiments.ray_executor import check_address, require_ray

        require_ray()  # a missing extra fails at once
        check_address(opts.address)  # and a malformed or unreachable address, in seconds


def _kept_notes(name: str, kept: list[str]) -> list[str]:
    """A note naming the metrics an experiment keeps from its earlier runs (none: no note)."""
    if not kept:
        return []
    return [
        f"The report of {truncate(name, 80)!r} also keeps the metrics of its earlier runs: "
        f"{truncate(', '.join(kept), 200)}."
    ]


def run_experiment(
    kind: str,
    triples: list[tuple[str, str, dict[str, Any]]],
    opts: Options,
    *,
    random_baseline: bool = False,
    args: Mapping[str, Any] | None = None,
) -> Outcome:
    """Run ``(label, recipe, overrides)`` methods over the dataset of ``opts``; store everything.

    Stored work is skipped (the store's resume logic), the rest is computed by the executor of
    ``opts.executor`` and written by this process as each unit arrives. Returns the store open.
    Overrides: :func:`removalx.experiments.overrides.resolve_overrides` (notes in ``Outcome.notes``).
    """
    from removalx.data.datasets import dataset_refs
    from removalx.experiments.overrides import resolve_overrides
    from removalx.experiments.provenance import run_provenance
    from removalx.experiments.retrain import run_retrain, split_metrics
    from removalx.experiments.runner import make_methods, parse_metrics, run_units
    from removalx.experiments.selection import check_run_labels, only_correct
    from removalx.files.outputs import check_output_file

    _check_executor_options(opts)
    check_output_file(opts.db, what="--db")
    metric_specs, retrain_specs = split_metrics(
        parse_metrics(",".join(_split(opts.metrics)), opts.metric_set)
    )
    triples, notes = resolve_overrides(triples, opts.overrides, skip_missing=kind == "compare")
    methods = make_methods(triples, opts.seed, batch_size=opts.batch_size, random_baseline=random_baseline)
    store = Store(opts.db)  # before the slow steps: a damaged database fails at once
    try:
        dataset, refs = dataset_refs(
            opts.dataset,
            opts.n_videos,
            frames=opts.frames,
            size=opts.size,
            seed=opts.data_seed,
            video_root=opts.video_root,
            classes=opts.classes,
            boxes=opts.boxes,
        )
        metric_specs = _with_dataset_mean(metric_specs, opts, dataset)
        judges = _split(opts.only_correct_by)
        if judges:
            refs = only_correct(refs, judges, device=opts.device, progress=opts.progress)
        model_key = opts.model if opts.weights is None else f"{opts.model}@{opts.weights}"
        labels = [m.label for m in methods]
        name = opts.name or f"{kind}: {', '.join(labels)}"
        recorded = dict(args) if args is not None else dict(vars(opts))
        # what the report's Setup part states: versions, weights sha256, base recipes, resolved metrics
        recorded["provenance"] = run_provenance(triples, methods, metric_specs, opts.model, opts.weights)
        executor = _executor(opts, methods, metric_specs, model_key)  # loads the model(s) first
        try:
            check_run_labels(
                refs, executor, opts.model, weights=opts.weights, device=opts.device, progress=opts.progress
            )
            kept = store.put_experiment(
                name, kind, labels, [m.label for m in metric_specs], dataset, recorded
            )
            notes = [*notes, *_kept_notes(name, kept)]  # a rerun adds metrics: say what the report keeps
            run_id = store.start_run(kind, name, recorded)
            counts = run_units(
                store, refs, methods, metric_specs, model_key, executor, run_id=run_id, progress=opts.progress
            )
        finally:
            executor.close()
        retrained = 0
        if retrain_specs:  # KAR / ROAR: retraining runs here, on the stored test explanations
            from removalx.models import load_model

            retrained = run_retrain(
                store,
                name,
                methods,
                retrain_specs,
                load_model(opts.model, weights=opts.weights, device=opts.device),
                model_key,
                [(r.dataset, r.item) for r in refs],
                dataset=dataset,
                frames=opts.frames,
                size=opts.size,
                run_id=run_id,
                target_mode=opts.target,
                progress=opts.progress,
            )
        store.finish_run(run_id, counts.explained, counts.explanations_skipped)
    except BaseException:
        store.close()
        raise
    return Outcome(
        store,
        labels,
        [m.label for m in metric_specs],
        counts,
        name,
        [m.label for m in retrain_specs],
        retrained,
        Scope(model_key, dataset),
        notes,
    )


def _finish(kind: str, out: Outcome, db: str | Path) -> Experiment:
    from removalx.experiments.frames import paired_frame, summary_frame
    from removalx.experiments.multiplicity import correct_table
    from removalx.experiments.runner import aggregate, alpha_table, paired_table

    try:
        sc = out.scope
        scores = out.store.to_pandas(out.methods, out.metrics)
        scores = scores[(scores["model"] == sc.model) & (scores["dataset"] == sc.dataset)].reset_index(
            drop=True
        )
        summary = summary_frame(aggregate(out.store, out.methods, out.metrics, sc), out.metrics)
        alpha = alpha_table(out.store, out.methods, out.metrics, scope=sc) if kind == "compare" else {}
        paired = (  # Holm-adjusted p next to the raw ones (removalx.experiments.multiplicity)
            paired_frame(correct_table(paired_table(out.store, out.methods, out.metrics, sc)))
            if kind == "ablate"
            else None
        )
    finally:
        out.store.close()
    return Experiment(
        Path(db), out.methods, out.metrics, scores, summary, out.counts, alpha, paired, list(out.notes)
    )


def evaluate(recipe: str, db: str | Path, **options: Any) -> Experiment:
    """Explain every clip of a dataset with ``recipe``, score each explanation, store it in ``db``.

    ``options`` are the fields of :class:`Options` (the CLI's flags), e.g. ``dataset``,
    ``n_videos``, ``metrics``, ``model``, ``executor="ray"``. Needs the ``pandas`` extra.

    Examples
    --------
    >>> from removalx.experiments import evaluate
    >>> res = evaluate("rise3d", "runs.db", n_videos=4, frames=8, size=32)  # doctest: +SKIP
    >>> res.summary[["method", "metric", "mean", "ci_low", "ci_high"]]  # doctest: +SKIP
    """
    from removalx.experiments.frames import require_pandas

    require_pandas()
    opts = Options.of(db, **options)
    return _finish("evaluate", run_experiment("evaluate", [(_label(recipe), recipe, {})], opts), db)


def compare(
    recipes: str | Sequence[str],
    db: str | Path,
    *,
    random_baseline: bool = True,
    sanity: bool = False,
    **options: Any,
) -> Experiment:
    """Several recipes on the same clips; adds the random-map baseline and the alpha of each AUC metric.

    ``sanity=True`` also runs the randomisation checks (metrics ``mprt`` and ``random_logit``)
    and marks the methods that fail them: ``summary["sanity_fails"]`` and ``notes``
    (:mod:`removalx.experiments.sanity` states the threshold and its source).

    ``overrides`` may be per recipe: ``{"rise3d": {"sample_selection.n_samples": 100}, "*": {...}}``
    (``"*"``: every recipe). A global override (``"*"``, a flat ``{"KEY": value}`` or a list of
    ``"KEY=VALUE"``) applies to the recipes that have its stage; ``Experiment.notes`` names the
    recipes it was skipped for (:func:`removalx.experiments.overrides.resolve_overrides`).

    Examples
    --------
    >>> compare(["rise3d", "grad_cam"], "r.db", overrides={"rise3d": {"sample_selection.n_samples": 100}})  # doctest: +SKIP
    """
    from removalx.experiments.frames import require_pandas

    require_pandas()
    names = _split(recipes)
    if not names:
        raise ConfigError("No recipes to compare.", "Pass e.g. compare(['lime3d', 'rise3d'], 'runs.db').")
    options.setdefault("model", "zoo:r3d_tiny_ls")
    if sanity:
        from removalx.experiments.sanity import with_sanity_metrics

        options["metrics"] = with_sanity_metrics(options.get("metrics") or Options.metrics)
    opts = Options.of(db, **options)
    out = run_experiment(
        "compare", [(_label(r), r, {}) for r in names], opts, random_baseline=random_baseline
    )
    if sanity:
        from removalx.experiments.sanity import mark_experiment

        return mark_experiment(_finish("compare", out, db))  # type: ignore[no-any-return]
    return _finish("compare", out, db)


def ablate_triples(
    recipe: str, vary: str | None = None, variants: str | Path | Sequence[Mapping[str, Any]] | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, recipe, overrides)`` of each variant of ``--vary`` or ``--variants``, all validated.

    ``vary`` is ``KEY=V1,V2``, ``STAGE={...},{...}`` or ``STAGE=NAME:{...},NAME:{...}``;
    ``variants`` a YAML file or a list of ``{name: ..., STAGE: {...}}`` mappings
    (:mod:`removalx.experiments.variants`). Exactly one of them is given.
    """
    from removalx.experiments.variants import load_variants, parse_vary, variant_triples

    if (vary is None) == (variants is None):
        raise ConfigError(
            "ablate needs the variants: give exactly one of --vary and --variants.",
            "E.g. --vary removal.name=constant,blur or --variants variants.yaml (Python: vary=... or variants=...).",
        )
    base = _label(recipe)
    found = parse_vary(vary, base) if vary is not None else load_variants(variants, base)  # type: ignore[arg-type]
    return variant_triples(recipe, found)


def substrate_options(
    triples: list[tuple[str, str, dict[str, Any]]], opts: Options
) -> tuple[Options, list[str]]:
    """``opts`` with the metric copies of the substrate check added, and its warnings.

    When the variants differ in their removal, each metric with a substrate gets a copy
    ``METRIC@SUBSTRATE`` at a substrate no variant uses, and a ground-truth metric is added for
    data with ground truth (:mod:`removalx.experiments.substrate_check`). The copies are ordinary
    ``metrics`` / ``metric_set`` entries, so they are stored, reused and reported like the others.
    """
    import json

    from removalx.core.recipe import load_recipe
    from removalx.experiments.overrides import resolve_overrides
    from removalx.experiments.runner import parse_metrics
    from removalx.experiments.substrate_check import plan_substrate_check

    resolved, _ = resolve_overrides(triples, opts.overrides, skip_missing=False)
    stages = [(label, load_recipe(recipe, overrides=own).stage("removal")) for label, recipe, own in resolved]
    specs = parse_metrics(",".join(_split(opts.metrics)), opts.metric_set)
    has_truth = opts.dataset.startswith("zoo:") or opts.boxes is not None
    plan = plan_substrate_check(stages, specs, has_ground_truth=has_truth)
    if not plan.extra:
        return opts, []
    metrics = ",".join([*_split(opts.metrics), *(f"{label}={name}" for label, name, _ in plan.extra)])
    sets = [*opts.metric_set]
    sets += [f"{label}.{k}={json.dumps(v)}" for label, _, cfg in plan.extra for k, v in cfg.items()]
    return dataclasses.replace(opts, metrics=metrics, metric_set=sets), plan.warnings


def ablate(
    recipe: str,
    vary: str | None = None,
    db: str | Path | None = None,
    *,
    variants: str | Path | Sequence[Mapping[str, Any]] | None = None,
    substrate_check: bool = True,
    **options: Any,
) -> Experiment:
    """Variants of ``recipe`` (``vary="removal.name=constant,blur"`` or ``variants=[...]``); paired tests.

    ``vary`` also takes whole stage configs with display names
    (``"removal=black:{name: constant},blur5:{name: blur, sigma: 5}"``); ``variants`` is a YAML
    file or a list of ``{"name": ..., "removal": {...}}`` (:mod:`removalx.experiments.variants`).
    A display name is the variant's method label. With ``substrate_check`` (default) a run whose
    variants differ in their removal also scores every metric with a substrate at a substrate no
    variant uses (``deletion@blur5``) and, on data with ground truth, ``spatial_pointing``; the
    warnings are in ``Experiment.notes`` (:mod:`removalx.experiments.substrate_check`).

    Examples
    --------
    >>> ablate("lime3d", "removal=black:{name: constant},blur5:{name: blur, sigma: 5}", "r.db")  # doctest: +SKIP
    """
    from removalx.experiments.frames import require_pandas

    require_pandas()
    if db is None:
        raise ConfigError("ablate needs a results database.", "Pass db='runs.db'.")
    opts = Options.of(db, **options)
    triples = ablate_triples(recipe, vary, variants)
    warnings: list[str] = []
    if substrate_check:
        opts, warnings = substrate_options(triples, opts)
    recorded = {**vars(opts), "substrate_check": list(warnings)}  # the report shows the warnings
    out = _finish("ablate", run_experiment("ablate", triples, opts, args=recorded), db)
    out.notes.extend(warnings)
    return out
