"""Units of work of a dataset-scale run, computed by any executor and written by the driver.

A unit is one clip with the methods of one *plan group* (methods that share their segmentation,
sample selection, removal, behavior and seed, so they share the explainer's output cache:
docs/design-notes.md, "Reusing forward passes"): its explanations and all their metric scores.
In ``evaluate`` and ``compare`` a unit is (video, recipe, model); ``ablate`` variants that differ
only after the forward passes form one unit per video. The driver plans units from the store
(:func:`plan_units`: what is stored is skipped), an executor computes them
(:func:`compute_unit`, in this process or on Ray actors: docs/scaling.md), and the driver alone
writes each result to the store as it arrives (:func:`write_unit`). The computation depends only
on the unit and the seeds, never on where it runs, so every executor stores the same numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from removalx.core.types import Attribution
from removalx.data.datasets import Item, ItemRef, load_item
from removalx.errors import ConfigError
from removalx.experiments.store import META_KEYS, Store, config_hash
from removalx.experiments.substrates import recorded_details

__all__ = [
    "RunContext",
    "RunCounts",
    "Task",
    "TaskResult",
    "Unit",
    "UnitResult",
    "compute_unit",
    "plan_groups",
    "plan_units",
    "write_unit",
]

#: Attribution ``meta`` keys a result carries back to the driver (what the store keeps).
_META_KEYS = (*META_KEYS, "plan_digest", "n_forward", "lower_is_important")


@dataclass
class RunCounts:
    """What a run did: explanations and scores computed vs. found in the store."""

    explained: int = 0
    explanations_skipped: int = 0
    scored: int = 0
    scores_skipped: int = 0


@dataclass
class Task:
    """One method of a unit: explain (``stored is None``) or score a stored explanation."""

    method: int
    metrics: list[int]
    explanation_id: int | None = None
    stored: Attribution | None = None


@dataclass
class Unit:
    """One clip and the tasks of one plan group; ``need_video``: return the clip for the store."""

    ref: ItemRef
    tasks: list[Task]
    need_video: bool = False

    @property
    def key(self) -> str:
        return f"{self.ref.item}|{','.join(str(t.method) for t in self.tasks)}"


@dataclass
class TaskResult:
    """A computed attribution (``None`` when a stored one was scored) and ``(metric, result, s)``."""

    attribution: Attribution | None
    scores: list[tuple[int, dict[str, Any], float]] = field(default_factory=list)


@dataclass
class UnitResult:
    """Results of a unit's tasks, and the loaded clip when the unit asked for it."""

    tasks: list[TaskResult]
    item: Item | None = None


@dataclass
class RunContext:
    """What computing a unit needs: the model, the methods, the metric objects and settings."""

    model: Any
    methods: list[Any]
    metrics: list[Any]
    metric_objs: dict[str, Any]
    target_mode: str = "pred"
    item_delay: float = 0.0


def plan_groups(methods: Sequence[Any]) -> list[list[int]]:
    """Indices of methods grouped by what the explainer's output cache is keyed on.

    Methods whose recipes agree on seed, segmentation, sample selection, removal and behavior
    reuse each other's forward passes on a clip, so they are computed in one unit.
    """
    groups: dict[str, list[int]] = {}
    for i, m in enumerate(methods):
        if m.recipe is None:
            key = f"#{i}"
        else:
            d = m.recipe.to_dict()
            shared = {k: d.get(k) for k in ("segmentation", "sample_selection", "removal", "behavior")}
            key = json.dumps({"seed": m.seed, **shared}, sort_keys=True, default=str)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def plan_units(
    store: Store,
    refs: Sequence[ItemRef],
    methods: Sequence[Any],
    metrics: Sequence[Any],
    model_key: str,
    counts: RunCounts,
) -> Iterator[Unit]:
    """Units not (fully) stored yet, lazily, in dataset order; stored work is counted as skipped.

    A clip whose video row is missing asks its first unit for the clip (a unit with no task if
    everything else is stored), so the videos table is complete after a resumed run.
    """
    groups = plan_groups(methods)
    for ref in refs:
        need_video = not store.has_video(ref.dataset, ref.item)
        for group in groups:
            tasks: list[Task] = []
            for mi in group:
                m = methods[mi]
                eid = store.find_explanation(ref.dataset, ref.item, m.recipe_hash, model_key, m.seed)
                if eid is None:
                    tasks.append(Task(mi, list(range(len(metrics)))))
                    continue
                counts.explanations_skipped += 1
                missing = [k for k, s in enumerate(metrics) if not store.has_score(eid, s.hash)]
                counts.scores_skipped += len(metrics) - len(missing)
                if missing:
                    tasks.append(Task(mi, missing, eid, store.attribution(eid)))
            if tasks:
                yield Unit(ref, tasks, need_video)
                need_video = False
        if need_video:
            yield Unit(ref, [], True)


def _slim(attr: Attribution) -> Attribution:
    """The attribution as the store keeps it (no feature space): cheap to send back."""
    meta = {k: attr.meta[k] for k in _META_KEYS if k in attr.meta}
    return Attribution(values=attr.values.detach().float().cpu(), target=int(attr.target), meta=meta)


def random_attribution(video: torch.Tensor, target: int, seed: int, item: str) -> Any:
    """The random-map baseline of one clip: N(0, 1) per pixel, seeded by the run seed and the item."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + int(config_hash(item)[:8], 16)) % 2**63)
    values = torch.randn(video.shape[:3], generator=g)
    return Attribution(values=values, target=target, meta={"n_forward": 0, "timings": {"total": 0.0}})


def _explain_function(method: Any, item: str) -> Callable[[Any, torch.Tensor, int], Attribution]:
    """``explain(model, video, target)``: the method re-run on another model or input.

    Metrics that re-explain (model randomisation, robustness, input invariance) get it in their
    context as ``explain``. It shares no model-output cache with the clip's own explanation, so
    a changed model or input is never answered from the clean model's outputs. The random
    baseline returns the same seeded map whatever the model or input.
    """

    def explain(model: Any, video: torch.Tensor, target: int) -> Attribution:
        if method.recipe is None:
            return random_attribution(video.cpu(), int(target), method.seed, item)
        return method.explainer.explain_clip(model, video, int(target), progress=False)

    return explain


def compute_unit(ctx: RunContext, unit: Unit) -> UnitResult:
    """Explain and score one unit (no store access: any process can run it)."""
    item = load_item(unit.ref)
    model = ctx.model
    cache: dict[str, Any] = {}  # model outputs shared by the methods of the group
    curve_cache: dict[str, Any] = {}
    target = int(item.label) if ctx.target_mode == "label" and item.label is not None else None
    out: list[TaskResult] = []
    for task in unit.tasks:
        method = ctx.methods[task.method]
        attr = task.stored
        computed = None
        if attr is None:
            if target is None:
                with torch.inference_mode():
                    target = int(model(item.video.to(model.device)[None]).argmax(1)[0])
            if method.recipe is None:
                attr = random_attribution(item.video, target, method.seed, item.item)
            elif method.explainer is None:
                raise ConfigError(
                    f"Method {method.label[:80]!r} has a recipe but no explainer.",
                    "Build methods with make_methods().",
                )
            else:
                attr = method.explainer.explain_clip(model, item.video, target, cache=cache, progress=False)
            computed = attr = _slim(attr)
        result = TaskResult(computed)
        context = {
            "evidence": item.evidence,
            "evidence_frames": item.evidence_frames,
            "label": item.label,
            "curve_cache": curve_cache,
            "explain": _explain_function(method, item.item),
            "seed": method.seed,
        }
        for k in task.metrics:
            spec = ctx.metrics[k]
            t0 = time.perf_counter()
            scored = ctx.metric_objs[spec.label].score(model, item.video, attr, **context)
            result.scores.append((k, dict(scored), time.perf_counter() - t0))
        out.append(result)
        if ctx.item_delay:
            time.sleep(ctx.item_delay)
    return UnitResult(out, item if unit.need_video else None)


def write_unit(
    store: Store,
    unit: Unit,
    result: UnitResult,
    methods: Sequence[Any],
    metrics: Sequence[Any],
    model_key: str,
    run_id: int,
    counts: RunCounts,
) -> None:
    """Write one unit's results in one transaction (the driver is the only writer)."""
    ref = unit.ref
    with store.transaction():
        if result.item is not None:
            it = result.item
            store.put_video(
                ref.dataset, ref.item, it.video, it.label, it.source, it.evidence, it.evidence_frames
            )
        for task, tr in zip(unit.tasks, result.tasks):
            m = methods[task.method]
            eid = task.explanation_id
            if eid is None:
                if tr.attribution is None:  # pragma: no cover - compute_unit always returns one
                    raise ConfigError(f"Unit {unit.key[:80]!r} returned no attribution.")
                eid, inserted = store.put_explanation(
                    dataset=ref.dataset,
                    item=ref.item,
                    method=m.label,
                    recipe_hash=m.recipe_hash,
                    model=model_key,
                    seed=m.seed,
                    recipe=m.to_dict(),
                    attribution=tr.attribution,
                    run_id=run_id,
                )
                if inserted:
                    counts.explained += 1
                else:  # another run stored this key first (same seed: the same explanation)
                    counts.explanations_skipped += 1
            for k, scored, seconds in tr.scores:
                spec = metrics[k]
                details = recorded_details(spec, scored)
                if store.put_score(
                    eid, spec.label, spec.hash, {"name": spec.name, **spec.config}, details, seconds, run_id
                ):
                    counts.scored += 1
                else:
                    counts.scores_skipped += 1
