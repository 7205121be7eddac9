"""The substrate confound of an ``ablate`` over the removal, and the extra scoring that exposes it.

A deletion / insertion curve (and every metric with a ``fill`` or ``baseline``) replaces pixels
by a *substrate*; a removal variant replaces them by its *fill*. When the removal varies and a
metric's substrate equals one variant's fill (the default deletion's substrate is black, the
``constant`` removal's fill), that variant is scored on the very perturbation it explains:
it is favoured whatever its merit. :func:`plan_substrate_check` finds the removal-based metrics
of such a run and adds, for each, a copy at a substrate that differs from every variant's
fill (and from the metric's own), labelled ``METRIC@SUBSTRATE`` (``deletion@blur5``), plus a
ground-truth metric (``spatial_pointing``) when the data has ground truth and the run has none.

The choice of the other substrate is removalx's (no paper prescribes one): the first of
:data:`CANDIDATES` -- blur of sigma 10, 5, 20, 3, 40 px, then gray, the clip's mean colour,
black -- whose fill no variant uses. Fills are equal when they are the same colour (black =
``constant`` 0 = ``[0, 0, 0]``; gray = ``constant`` 0.5) or a blur of the same sigma; the
removal ``mean`` (each region's mean colour) differs from the metric ``mean`` (the whole
clip's), and ``noise``, ``inpaint``, ``conditional`` and third-party removals differ from
every metric substrate. When every candidate is some variant's fill, the first one that
differs from the metric's own is used and the note says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from removalx.core.registry import Registry, get_registry

__all__ = [
    "CANDIDATES",
    "GROUND_TRUTH_METRICS",
    "Fill",
    "SubstratePlan",
    "metric_fill",
    "plan_substrate_check",
    "removal_fill",
]

#: Other substrates, in order of preference: (tag, fill, blur sigma).
CANDIDATES: tuple[tuple[str, str, float | None], ...] = (
    ("blur10", "blur", 10.0),
    ("blur5", "blur", 5.0),
    ("blur20", "blur", 20.0),
    ("blur3", "blur", 3.0),
    ("blur40", "blur", 40.0),
    ("gray", "gray", None),
    ("mean", "mean", None),
    ("black", "black", None),
)
#: Metric plugins scoring against the data's ground truth (no substrate).
GROUND_TRUTH_METRICS = ("spatial_pointing", "temporal_pointing")
_FIELDS = ("fill", "baseline")


@dataclass(frozen=True)
class Fill:
    """What removed pixels show: ``kind`` (colour, blur, clip_mean, region_mean, other) and its parameter."""

    kind: str
    param: Any = None

    def same(self, other: Fill | None) -> bool:
        """Equal fills: one colour (one channel broadcast to three) or a blur of one sigma."""
        if other is None or self.kind != other.kind or self.kind == "other":
            return False
        if self.kind == "colour" and isinstance(self.param, tuple) and isinstance(other.param, tuple):
            a, b = self.param, other.param
            if len(a) != len(b):
                a, b = (a * 3 if len(a) == 1 else a), (b * 3 if len(b) == 1 else b)
            return len(a) == len(b) and all(abs(x - y) <= 1e-6 for x, y in zip(a, b))
        return bool(self.param == other.param)

    def describe(self) -> str:
        """A short phrase: ``black``, ``gray``, ``colour [..]``, ``blur (sigma 5 px)``, ..."""
        if self.kind == "colour" and isinstance(self.param, tuple):
            if self.same(Fill("colour", (0.0,))):
                return "black"
            if self.same(Fill("colour", (0.5,))):
                return "gray"
            return "colour [" + ", ".join(f"{v:.3g}" for v in self.param) + "]"
        if self.kind == "blur":
            return f"blur (sigma {self.param:g} px)"
        return {"clip_mean": "the clip's mean colour", "region_mean": "each region's mean colour"}.get(
            self.kind, str(self.param)
        )


def _dump(stage: Any) -> dict[str, Any]:
    return stage.model_dump(mode="json") if hasattr(stage, "model_dump") else dict(stage)


def removal_fill(stage: Any) -> Fill | None:
    """The fill of a removal stage config (a pydantic config or mapping with ``name``); ``None``: no removal."""
    if stage is None:
        return None
    cfg = _dump(stage)
    name = cfg.get("name")
    if name == "constant":
        value = cfg.get("value", 0.0)
        if isinstance(value, str):  # model_mean: the model's colour, not known here
            return Fill("other", f"constant {value}")
        return Fill(
            "colour", tuple(float(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
        )
    if name == "blur":
        return Fill("blur", float(cfg.get("sigma", 10.0)))
    if name == "mean":
        return Fill("region_mean")
    return Fill("other", str(name))


def _metric_config(spec: Any, registry: Registry) -> Any:
    return getattr(registry.get("metric", spec.name).make(spec.config), "config", None)


def metric_fill(spec: Any, registry: Registry | None = None) -> tuple[str, Fill] | None:
    """``(field, fill)`` of a metric spec's resolved substrate; ``None`` for a metric without one."""
    cfg = _metric_config(spec, registry or get_registry())
    key = next((f for f in _FIELDS if isinstance(getattr(cfg, f, None), str)), None)
    if key is None:
        return None
    return key, _substrate(
        getattr(cfg, key), getattr(cfg, "blur_sigma", 10.0), getattr(cfg, "fill_value", None)
    )


def _substrate(fill: str, sigma: float | None, value: Any = None) -> Fill:
    if fill == "black":
        return Fill("colour", (0.0,))
    if fill == "gray":
        return Fill("colour", (0.5,))
    if fill == "blur":
        return Fill("blur", float(sigma if sigma is not None else 10.0))
    if fill == "mean":
        return Fill("clip_mean")
    if fill == "dataset_mean" and value is not None:
        return Fill("colour", tuple(float(v) for v in value))
    return Fill("other", fill)


@dataclass
class SubstratePlan:
    """The extra metrics of a substrate check: ``(label, plugin, config)`` each, and the warnings."""

    extra: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _pick(fills: Sequence[Fill], own: Fill) -> tuple[str, str, float | None, bool]:
    """The first candidate differing from every variant's fill and the metric's own; ``bool``: it does."""
    mine = [c for c in CANDIDATES if not _substrate(c[1], c[2]).same(own)]
    for tag, fill, sigma in mine:
        if not any(_substrate(fill, sigma).same(f) for f in fills):
            return tag, fill, sigma, True
    tag, fill, sigma = mine[0]
    return tag, fill, sigma, False


def plan_substrate_check(
    variants: Sequence[tuple[str, Any]],
    metric_specs: Sequence[Any],
    *,
    has_ground_truth: bool,
    registry: Registry | None = None,
) -> SubstratePlan:
    """The extra metrics and warnings of an ``ablate`` run whose variants differ in their removal.

    Parameters
    ----------
    variants : sequence of (str, removal stage config or None)
        Each variant's label and its recipe's resolved removal stage.
    metric_specs : sequence of MetricSpec
        The run's metrics (labels, plugins, configs as the user gave them).
    has_ground_truth : bool
        The data carries ground truth (``zoo:`` clips, ``--boxes``): a ground-truth metric is
        added when the run has none.

    Returns
    -------
    SubstratePlan
        Empty when the removal does not vary or no metric has a substrate.
    """
    reg = registry or get_registry()
    stages = [(label, stage) for label, stage in variants if stage is not None]
    dumps = {repr(_dump(stage)) for _, stage in stages}
    if len(stages) < 2 or len(dumps) < 2:  # the removal does not vary
        return SubstratePlan()
    fills = [(label, removal_fill(stage)) for label, stage in stages]
    known = [f for _, f in fills if f is not None]
    plan = SubstratePlan()
    labels = {s.label for s in metric_specs}
    for spec in metric_specs:
        found = metric_fill(spec, reg)
        if found is None:
            continue
        key, own = found
        tag, fill, sigma, differs = _pick(known, own)
        label = f"{spec.label}@{tag}"
        if label in labels:
            continue
        config = {**spec.config, key: fill, **({"blur_sigma": sigma} if sigma is not None else {})}
        config.pop("fill_value", None)
        plan.extra.append((label, spec.name, config))
        labels.add(label)
        plan.warnings.append(
            _warning(spec.label, own, [lb for lb, f in fills if own.same(f)], label, fill, sigma, differs)
        )
    if plan.extra and has_ground_truth:
        _add_ground_truth(plan, metric_specs, labels)
    return plan


def _add_ground_truth(plan: SubstratePlan, metric_specs: Sequence[Any], labels: set[str]) -> None:
    if any(s.name in GROUND_TRUTH_METRICS for s in metric_specs):
        return
    label = next(
        lb for lb in ("spatial_pointing", "spatial_pointing@truth", "spatial_pointing@gt") if lb not in labels
    )
    plan.extra.append((label, "spatial_pointing", {}))
    plan.warnings.append(
        f"note: also scored with {label} (the data's ground truth, no substrate), since the run has no "
        "ground-truth metric."
    )


def _warning(
    metric: str, own: Fill, matched: Sequence[str], label: str, fill: str, sigma: float | None, differs: bool
) -> str:
    other = _substrate(fill, sigma).describe()
    if matched:
        head = (
            f"warning: substrate confound: {metric}'s substrate, {own.describe()}, is the fill of variant "
            f"{', '.join(matched[:3])}{', ...' if len(matched) > 3 else ''}; a metric whose substrate equals "
            "a variant's fill favours that variant."
        )
    else:
        head = (
            f"warning: the removal varies and {metric}'s substrate ({own.describe()}) decides part of the "
            "ranking."
        )
    which = (
        "which no variant uses"
        if differs
        else "every candidate substrate is some variant's fill; this one too"
    )
    return (
        f"{head} Also scored as {label} (substrate {other}, {which}); a winner should win under both "
        "(--no-substrate-check turns this off)."
    )
