"""The base cases a summary asks for (:attr:`Summary.requires`): the outputs of the full clip
(every feature kept) and of the empty clip (every feature removed)."""

from __future__ import annotations

import torch
from torch import Tensor

from removalx.core.stages import Behavior, Summary
from removalx.pipeline.batches import BatchEvaluator
from removalx.pipeline.cache import OutputCache

__all__ = ["base_forward_passes", "evaluate_base_cases", "full_from_clean_pass"]


def full_from_clean_pass(behavior: Behavior) -> bool:
    """Whether the clean pass gives the ``"full"`` base case (no second forward pass).

    "full" keeps every pixel (a FeatureSpace contract, checked by check_plugin), so a behavior
    that only scores logits gets it from the clean pass.
    """
    return type(behavior).evaluate is Behavior.evaluate


def base_forward_passes(summary: Summary, behavior: Behavior) -> int:
    """Forward passes the base cases of ``summary`` take."""
    from_clean = full_from_clean_pass(behavior)
    return sum(1 for case in summary.requires if not (case == "full" and from_clean))


def evaluate_base_cases(
    summary: Summary,
    evaluate: BatchEvaluator,
    clean_logits: Tensor,
    n_features: int,
    outputs: OutputCache,
) -> dict[str, float]:
    """The output of every base case of ``summary``, in the order it lists them.

    Base case ``i`` is plan row ``-1 - i`` for removals and spaces that index their randomness.
    """
    behavior, device = evaluate.behavior, evaluate.device
    from_clean = full_from_clean_pass(behavior)
    base: dict[str, float] = {}
    for i, case in enumerate(summary.requires):
        if case == "full" and from_clean:
            base[case] = float(behavior.score(clean_logits, evaluate.target)[0])
            continue
        z = torch.full((1, n_features), 1.0 if case == "full" else 0.0, device=device)
        idx = torch.full((1,), -1 - i, dtype=torch.long, device=device)
        base[case] = float(evaluate(z, idx, outputs.known_base(case))[1][0])
    return base
