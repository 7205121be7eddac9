"""Adaptive sample selection: samples in rounds, stopping once the estimate has converged.

A selection with :attr:`SampleSelector.adaptive <removalx.core.stages.SampleSelector.adaptive>`
gives a streamed plan read in rounds of :attr:`~removalx.core.stages.SampleSelector.round_size`
samples; after every round the summary estimates the standard errors of its values and the
selection decides whether to stop (:meth:`~removalx.core.stages.SampleSelector.converged`).
Round boundaries are sample counts, so the stopping point does not depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from removalx.core.plans import PlanChunk
from removalx.core.recipe import Recipe
from removalx.core.stages import Behavior, SampleSelector, Summary
from removalx.errors import ConfigError
from removalx.pipeline.timing import Timer

__all__ = ["AdaptiveRounds", "check_adaptive", "enable_adaptive", "estimate", "split_rounds"]


def check_adaptive(behavior: Behavior, summary: Summary, recipe: Recipe) -> None:
    """Adaptive sampling needs a summary that estimates its error and outputs known in plan order."""
    if behavior.refines:
        raise ConfigError(
            f"Recipe {recipe.name!r}: the behavior {type(behavior).__name__} revises every output once all are "
            "known, so sampling cannot stop part-way (sample_selection: adaptive).",
            "Use sample_selection: {name: fixed, n_samples: N} with this behavior.",
        )
    if type(summary).estimate is Summary.estimate:
        raise ConfigError(
            f"Recipe {recipe.name!r}: the summary {type(summary).__name__} does not estimate the standard "
            "error of its values, which adaptive sample selection needs.",
            "Use sample_selection: adaptive with the summaries shapley, linear or mask_mean, or a fixed "
            "number of samples.",
        )


def enable_adaptive(behavior: Behavior, summary: Summary, recipe: Recipe) -> None:
    """Check the stages for adaptive sampling and tell the summary (before its ``begin``)."""
    check_adaptive(behavior, summary, recipe)
    summary.adaptive = True


def split_rounds(chunks: Iterator[PlanChunk], round_size: int) -> Iterator[PlanChunk]:
    """``chunks`` cut at every multiple of ``round_size`` (no cut when it is 0)."""
    for start, z, w in chunks:
        pos, end = int(start), int(start) + int(z.shape[0])
        while pos < end:
            cut = min(end, (pos // round_size + 1) * round_size) if round_size else end
            lo, hi = pos - int(start), cut - int(start)
            yield PlanChunk(pos, z[lo:hi], None if w is None else w[lo:hi])
            pos = cut


def estimate(summary: Summary) -> tuple[Tensor, Tensor] | None:
    """The summary's ``(values, standard errors)`` so far as flat float64 CPU tensors, or ``None``."""
    out = summary.estimate()
    if out is None:
        return None
    values, se = out
    return values.detach().double().cpu().reshape(-1), se.detach().double().cpu().reshape(-1)


class AdaptiveRounds:
    """The rounds of one run: ends each round and asks the selection whether to stop.

    ``selector=None`` (a fixed number of samples) gives ``size == 0``: no rounds, no stop.
    """

    def __init__(self, selector: SampleSelector | None) -> None:
        self.selector = selector
        self.size = int(selector.round_size) if selector is not None else 0
        self.rounds = 0
        self.estimate: tuple[Tensor, Tensor] | None = None
        self.met = False

    def stop_after(self, stop: int, n_samples: int, summary: Summary, timer: Timer) -> bool:
        """After the samples before ``stop``: end the round there is one, and whether to stop."""
        sel = self.selector
        if sel is None or not self.size or not (stop % self.size == 0 or stop == n_samples):
            return False
        with timer("summary"):
            summary.end_round()
            self.rounds += 1
            if self.rounds >= sel.min_rounds or stop == n_samples:
                self.estimate = estimate(summary)
        if self.estimate is not None and self.rounds >= sel.min_rounds and sel.converged(*self.estimate):
            self.met = True
            return True
        return False

    def meta(self, used: int, max_samples: int, n_features: int) -> dict[str, Any]:
        """``Attribution.meta["adaptive"]``: samples used, rounds, stopping rule, standard errors."""
        se = self.estimate[1] if self.estimate is not None else torch.full((n_features,), float("nan"))
        tolerance, criterion = _stopping_rule(self.selector)
        return {
            "samples_used": used,
            "max_samples": max_samples,
            "rounds": self.rounds,
            "tolerance": tolerance,
            "criterion": criterion,
            "tolerance_met": self.met,
            "max_se": float(torch.nan_to_num(se, nan=float("inf")).max()),
            "se": [float(v) for v in se.double().cpu()],
        }


def _stopping_rule(selector: SampleSelector | None) -> tuple[float, str]:
    """``(tolerance, criterion)`` read from the selection's config, when it keeps one with them.

    ``config`` is not part of the :class:`SampleSelector` contract (plugins keep their config
    as they like), so both are optional: NaN and ``""`` when absent.
    """
    cfg = getattr(selector, "config", None)
    return float(getattr(cfg, "tolerance", float("nan"))), str(getattr(cfg, "criterion", ""))
