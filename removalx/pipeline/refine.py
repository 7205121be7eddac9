"""The refine pass of behaviors that revise outputs once all are known (:attr:`Behavior.refines`).

AOSA-approx's IQR step re-expands outlying samples, which needs every output first: the
behavior sees every ``y`` before the summary does (an ``O(S)`` buffer of floats), and the
summary then streams the revised values.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from removalx.core.plans import ChunkedPlan
from removalx.core.progress import FirstBatchEstimate
from removalx.pipeline.batches import BatchEvaluator
from removalx.pipeline.checks import check_output, checked_chunks
from removalx.pipeline.timing import Timer

__all__ = ["refine_outputs"]


def refine_outputs(
    plan: ChunkedPlan,
    batch_size: int,
    evaluate: BatchEvaluator,
    eta: FirstBatchEstimate,
    timer: Timer,
) -> Tensor:
    """Every output ``float32[S]`` (on the CPU), evaluated and then revised by the behavior."""
    y = _all_outputs(plan, batch_size, evaluate, eta)
    with timer("model"):
        refined = check_output(
            evaluate.behavior.refine(
                evaluate.clf, evaluate.clip, evaluate.target, y, _rebuild(plan, evaluate)
            ),
            plan.n_samples,
        )
        return refined.detach().float().cpu()


def _all_outputs(
    plan: ChunkedPlan, batch_size: int, evaluate: BatchEvaluator, eta: FirstBatchEstimate
) -> Tensor:
    """The outputs of every sample, batch by batch, before any reaches the summary."""
    device = evaluate.device
    y = torch.empty(plan.n_samples, dtype=torch.float32)
    eta.start()
    for start, z_rows, _ in checked_chunks(plan, batch_size):
        stop = start + z_rows.shape[0]
        z = z_rows.to(device, torch.float32)
        y[start:stop] = evaluate(z, torch.arange(start, stop, device=device), None)[1].float().cpu()
        eta.batch_done(stop - start)
    return y


def _rebuild(plan: ChunkedPlan, evaluate: BatchEvaluator) -> Callable[[Tensor], Tensor]:
    """``perturb(index long[n]) -> float[n, T, H, W, C]``: the perturbed clips of plan rows ``index``."""
    device = evaluate.device

    def perturb(index: Tensor) -> Tensor:
        index = index.to(device, torch.long)
        with torch.no_grad():
            z_rows, _ = plan.rows(index.cpu())
            keep = evaluate.space.render(z_rows.to(device, torch.float32), index)
            return evaluate.apply(evaluate.clip, keep, index)

    return perturb
