"""``Attribution.meta`` of a pipeline run: counts, digests, base cases and what stages report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from removalx.core.plans import ChunkedPlan
from removalx.core.stages import Behavior, Summary
from removalx.core.types import FeatureSpace
from removalx.pipeline.timing import Timer

__all__ = ["plain", "run_meta", "stage_meta"]


def run_meta(
    timer: Timer,
    used: int,
    space: FeatureSpace,
    plan: ChunkedPlan,
    digest: str,
    batch_size: int,
    base: dict[str, float],
    summary: Summary,
    cached: bool,
) -> dict[str, Any]:
    """The entries every run reports, in this order (``adaptive`` and ``incremental`` follow)."""
    return {
        "timings": dict(timer.times),
        "n_samples": used,
        "n_features": space.n_features,
        "plan_digest": digest,
        "batch_size": batch_size,
        "base": base,
        "plan": plain(plan.meta),
        "segmentation": plain(getattr(space, "meta", None) or {}),
        "lower_is_important": summary.lower_is_important,
        "cached_outputs": cached,
    }


def stage_meta(behavior: Behavior, summary: Summary) -> dict[str, dict[str, Any]]:
    """``{"behavior": ..., "summary": ...}``: a copy of each stage's non-empty ``meta`` dict.

    ``meta`` is what a stage reports about its run, set on the instance when it has something
    to report (the base classes give it no default: a shared dict would leak between runs).
    """
    out: dict[str, dict[str, Any]] = {}
    for name, stage in (("behavior", behavior), ("summary", summary)):
        reported = getattr(stage, "meta", None)
        if isinstance(reported, dict) and reported:
            out[name] = dict(reported)
    return out


def plain(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The plain-data entries of a stage's ``meta``: scalars, short lists of scalars, and mappings
    of those (e.g. a SLIC retry record); tensors and other objects stay on the stage's object."""

    def plain_value(v: Any, depth: int) -> bool:
        if isinstance(v, (int, float, str, bool)):
            return True
        if isinstance(v, (list, tuple)):
            return len(v) <= 64 and all(isinstance(x, (int, float, str, bool)) for x in v)
        if isinstance(v, Mapping) and depth > 0:
            return all(isinstance(k, str) and plain_value(x, depth - 1) for k, x in v.items())
        return False

    return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in meta.items() if plain_value(v, 1)}
