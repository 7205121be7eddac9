"""Interventions that verify what a benchmark model relies on.

A check removes a set of ground-truth parts (paints them with the task's neutral fill) or
keeps only them (paints everything else), measures accuracy on held-out clips, and compares
it with the clean accuracy by one rule:

* ``chance``: ``|accuracy - 1/K| <= 0.10`` (K classes);
* ``keep90``: ``accuracy >= 0.9 * clean accuracy``;
* ``within5``: ``|accuracy - clean accuracy| <= 0.05``;
* ``None``: reported, not required.

A model is shipped only when its clean accuracy is at least :data:`MIN_CLEAN` and every
required check passes (a model at chance would pass the ``chance`` rules trivially).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from removalx.zoo.bench.batch import BenchBatch

__all__ = ["MIN_CLEAN", "Check", "accuracy", "apply", "judge", "run_checks"]

Rule = Literal["chance", "keep90", "within5"]

#: Clean accuracy a model needs on its verification clips before its checks count.
MIN_CLEAN = 0.95


@dataclass(frozen=True)
class Check:
    """One intervention: ``op`` (``"remove"`` or ``"keep"``) on ``parts``, judged by ``rule``."""

    op: Literal["remove", "keep"]
    parts: tuple[str, ...]
    rule: Rule | None

    @property
    def name(self) -> str:
        """E.g. ``remove:event_a+event_b``."""
        return f"{self.op}:{'+'.join(self.parts)}"


def apply(video: torch.Tensor, mask: torch.Tensor, op: str, fill: int) -> torch.Tensor:
    """Paint ``mask`` (``op="remove"``) or its complement (``op="keep"``) of ``video`` with ``fill``.

    Parameters
    ----------
    video : torch.Tensor
        ``uint8[N, 3, T, H, W]``.
    mask : torch.Tensor
        ``bool[N, T, H, W]``.
    op : str
        ``"remove"`` or ``"keep"``.
    fill : int
        The neutral uint8 value.
    """
    region = mask if op == "remove" else ~mask
    return video.masked_fill(region.unsqueeze(1), fill)


@torch.inference_mode()
def accuracy(model: nn.Module, video: torch.Tensor, labels: torch.Tensor, batch_size: int = 64) -> float:
    """Accuracy of ``model`` (BCTHW float in [0, 1] -> logits) on uint8 clips, batched."""
    model.eval()
    correct = 0
    for i in range(0, len(video), batch_size):
        logits = model(video[i : i + batch_size].float() / 255.0)
        correct += int((logits.argmax(1) == labels[i : i + batch_size]).sum())
    return correct / max(len(video), 1)


def judge(rule: Rule | None, acc: float, clean: float, num_classes: int) -> bool | None:
    """Whether ``acc`` satisfies ``rule`` (``None`` for a reported-only check)."""
    if rule is None:
        return None
    if rule == "chance":
        return abs(acc - 1.0 / num_classes) <= 0.10
    if rule == "keep90":
        return acc >= 0.9 * clean
    return abs(acc - clean) <= 0.05


def run_checks(
    model: nn.Module, batch: BenchBatch, checks: tuple[Check, ...], num_classes: int, fill: int
) -> dict[str, Any]:
    """Clean accuracy and every check on ``batch``.

    Returns
    -------
    dict
        ``clean`` accuracy, ``n`` clips, ``checks`` (name -> accuracy, rule, passed) and
        ``passed`` (clean accuracy >= :data:`MIN_CLEAN` and all required checks pass).
    """
    clean = accuracy(model, batch.video, batch.labels)
    rows = {}
    for check in checks:
        acc = accuracy(model, apply(batch.video, batch.mask(check.parts), check.op, fill), batch.labels)
        rows[check.name] = {
            "accuracy": round(acc, 4),
            "rule": check.rule,
            "passed": judge(check.rule, acc, clean, num_classes),
        }
    passed = clean >= MIN_CLEAN and all(r["passed"] is not False for r in rows.values())
    return {"n": len(batch), "clean": round(clean, 4), "checks": rows, "passed": passed}
