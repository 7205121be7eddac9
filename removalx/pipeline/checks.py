"""Checks of what plugins return: sample counts, plans and their chunks, behavior outputs.

Every check raises a :class:`~removalx.errors.ConfigError` (a recipe asks for too much), a
:class:`~removalx.errors.PluginError` (a plugin broke its stage's contract) or a
:class:`~removalx.errors.ModelError` (the model gives nothing to explain), naming the fix.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from removalx.core.plans import ChunkedPlan, PlanChunk, SamplePlan
from removalx.core.stages import MAX_SAMPLES, Behavior
from removalx.errors import ConfigError, ModelError, PluginError

__all__ = [
    "ONE_CLASS_FIX",
    "check_behavior_sees_the_model",
    "check_output",
    "check_plan",
    "check_sample_count",
    "checked_chunks",
]


def check_sample_count(n: int | None, source: str) -> None:
    """More than :data:`MAX_SAMPLES` samples is a configuration error."""
    if n is not None and n > MAX_SAMPLES:
        raise ConfigError(
            f"{source} asks for {n:,} samples; at most {MAX_SAMPLES:,} are allowed.",
            "Use fewer samples (e.g. sample_selection: {name: fixed, n_samples: 1000}).",
        )


def check_plan(plan: ChunkedPlan, n_features: int) -> None:
    """The plan's header: a ChunkedPlan of ``[S, F]`` with ``1 <= S <= MAX_SAMPLES``."""
    if not isinstance(plan, ChunkedPlan):
        raise PluginError(
            f"The feature selection returned a {type(plan).__name__}; expected a SamplePlan or another ChunkedPlan.",
            "A FeatureSelector.plan must return removalx.core.plans.SamplePlan(z, weights, meta) or a LazyPlan.",
        )
    if isinstance(plan, SamplePlan) and plan.z.dim() != 2:
        raise PluginError(
            f"The feature selection returned Z of shape {tuple(plan.z.shape)}; expected [S, {n_features}].",
            "A FeatureSelector.plan must return one column per feature.",
        )
    if plan.n_features != n_features:
        raise PluginError(
            f"The feature selection returned Z of shape {(plan.n_samples, plan.n_features)}; "
            f"expected [S, {n_features}].",
            "A FeatureSelector.plan must return one column per feature.",
        )
    if plan.n_samples == 0:
        raise PluginError(
            "The sample plan is empty (0 samples).", "Ask for at least one sample (sample_selection)."
        )
    check_sample_count(plan.n_samples, "The feature selection's plan")
    if isinstance(plan, SamplePlan) and plan.weights is not None and plan.weights.shape != (plan.n_samples,):
        raise PluginError(
            f"Plan weights have shape {tuple(plan.weights.shape)}; expected [{plan.n_samples}]."
        )


def checked_chunks(plan: ChunkedPlan, size: int) -> Iterator[PlanChunk]:
    """``plan.chunks(size)``, each checked: consecutive, ``[k, F]`` with ``k <= size``, weights ``[k]``."""
    n, f = plan.n_samples, plan.n_features
    expected = 0
    for start, z, w in plan.chunks(size):
        k = int(z.shape[0]) if z.dim() == 2 else -1
        most = min(size, n - expected)
        if int(start) != expected or z.dim() != 2 or z.shape[1] != f or not 1 <= k <= most:
            raise PluginError(
                f"The sample plan's chunk at row {int(start)} has Z of shape {tuple(z.shape)}; "
                f"expected a chunk at row {expected} of shape [k, {f}] with 1 <= k <= {most}.",
                "ChunkedPlan.chunks(size) must give consecutive chunks of at most `size` rows.",
            )
        if (w is not None) != plan.weighted or (w is not None and tuple(w.shape) != (k,)):
            got = "no weights" if w is None else f"weights of shape {tuple(w.shape)}"
            want = f"weights of shape [{k}]" if plan.weighted else "no weights (the plan is unweighted)"
            raise PluginError(f"The sample plan's chunk at row {expected} has {got}; expected {want}.")
        yield PlanChunk(expected, z, w)
        expected += k
    if expected != n:
        raise PluginError(
            f"The sample plan gave {expected} rows; its n_samples is {n}.",
            "ChunkedPlan.chunks must cover rows 0 .. n_samples - 1 exactly once.",
        )


ONE_CLASS_FIX = (
    "For a binary classifier with one output, explain its logit (--set behavior.name=logit); "
    "otherwise return one logit per class."
)


def check_behavior_sees_the_model(behavior: Behavior, logits: Tensor, target: int, model_name: str) -> None:
    """A single-class model whose behavior cannot change (a softmax over one class) is an error.

    Without this, every perturbed clip scores exactly 1 and the explanation is a constant map.
    """
    if logits.shape[-1] != 1:
        return
    with torch.inference_mode():
        shifted = torch.cat([logits, logits + 1.0, logits - 1.0])
        scores = behavior.score(shifted.float(), target)
    if bool((scores == scores[0]).all()):
        raise ModelError(
            f"Model {model_name} returns a single class, and the behavior {type(behavior).__name__} scores "
            "every output of such a model the same (a softmax over one class is always 1): the explanation "
            "would be a constant map.",
            ONE_CLASS_FIX,
        )


def check_output(y: Tensor, b: int) -> Tensor:
    if y.shape != (b,):
        raise PluginError(f"The behavior returned shape {tuple(y.shape)} for a batch of {b}; expected [{b}].")
    if not torch.isfinite(y).all():
        raise ModelError(
            "The model behavior is NaN or infinite for some perturbed clips.",
            "Check the model on perturbed (e.g. black) inputs and the behavior (log_odds of p=1 is inf).",
        )
    return y
