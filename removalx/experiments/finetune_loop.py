"""The pieces of ``removalx finetune``: folds, one training epoch, held-out accuracy, clips in memory.

:mod:`removalx.experiments.finetune` runs the protocol (folds x epochs, resume, report) with
these. Every random choice draws from a ``torch.Generator`` derived from the run's seed
(:func:`derived_seed`); dropout, which can only use torch's global random state, runs inside
:func:`torch.random.fork_rng` seeded the same way, so the caller's global state is untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from removalx.core.classifier import VideoClassifier
from removalx.data.datasets import ItemRef, load_item
from removalx.errors import ConfigError, DatasetError, truncate

__all__ = [
    "ClipStore",
    "derived_seed",
    "epoch_lr",
    "evaluate_accuracy",
    "fold_assignment",
    "seeded_global_rng",
    "train_epoch",
]


def derived_seed(seed: int, phase: int, epoch: int) -> int:
    """A seed for ``(phase, epoch)`` of a run with ``seed`` (phase ``-1`` is the final fit)."""
    return (int(seed) * 1_000_003 + (int(phase) + 2) * 7_919 + int(epoch) * 104_729) % (2**63 - 1)


@contextlib.contextmanager
def seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with torch's global random state seeded ``seed``, restored afterwards."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def fold_assignment(labels: Sequence[int], folds: int, seed: int, stratified: bool) -> torch.Tensor:
    """The held-out fold of each clip: ``int64[N]`` with values ``0 .. folds-1``.

    Unstratified (the released code's ``KFold(shuffle=True)``): the clips in a random order
    are cut into ``folds`` consecutive blocks, the first ``N mod folds`` one clip larger.
    Stratified: each class's clips, in a random order, are dealt to the folds in turn, the
    dealing continuing from class to class so fold sizes differ by at most one.

    Raises
    ------
    ConfigError
        Fewer clips than folds.
    """
    n = len(labels)
    if n < folds:
        raise ConfigError(
            f"{folds} folds need at least {folds} labelled clips, the dataset has {n}.",
            "Lower --folds or use a larger dataset.",
        )
    gen = torch.Generator().manual_seed(int(seed))
    out = torch.empty(n, dtype=torch.long)
    if not stratified:
        order = torch.randperm(n, generator=gen)
        sizes = torch.full((folds,), n // folds, dtype=torch.long)
        sizes[: n % folds] += 1
        out[order] = torch.repeat_interleave(torch.arange(folds), sizes)
        return out
    y = torch.as_tensor(list(labels), dtype=torch.long)
    start = 0
    for cls in torch.unique(y).tolist():
        idx = torch.nonzero(y == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        out[idx] = (torch.arange(len(idx)) + start) % folds
        start = (start + len(idx)) % folds
    return out


def epoch_lr(lr: float, epoch: int, steps: Sequence[int], gamma: float) -> float:
    """Step schedule: ``lr * gamma ** #{s in steps : epoch >= s}`` (``epoch`` counts from 0)."""
    return float(lr) * float(gamma) ** sum(1 for s in steps if epoch >= s)


class ClipStore:
    """The clips of a dataset as ``uint8[T, H, W, 3]``, decoded once and kept while memory allows.

    Parameters
    ----------
    refs : list of ItemRef
        The clips (all read at the same ``frames`` x ``size``).
    budget_mb : int
        Memory for decoded clips; clips beyond it are decoded again on every use.
    """

    def __init__(self, refs: Sequence[ItemRef], budget_mb: int) -> None:
        self.refs = list(refs)
        self.budget = int(budget_mb) * 2**20
        self._cache: dict[int, torch.Tensor] = {}
        self._used = 0

    def clip(self, i: int) -> torch.Tensor:
        """Clip ``i`` as ``uint8[T, H, W, 3]``."""
        hit = self._cache.get(i)
        if hit is not None:
            return hit
        video = load_item(self.refs[i]).video
        if video.dtype != torch.uint8:
            video = (video.float().clamp(0, 1) * 255.0).round().to(torch.uint8)
        if self._used + video.numel() <= self.budget:
            self._cache[i] = video
            self._used += video.numel()
        return video

    def batch(self, idx: Sequence[int]) -> torch.Tensor:
        """Clips ``idx`` as ``float32[B, T, H, W, 3]`` in [0, 1]."""
        clips = [self.clip(int(i)) for i in idx]
        shapes = {tuple(c.shape) for c in clips}
        if len(shapes) > 1:
            raise DatasetError(
                f"Clips of one batch have different shapes {truncate(str(sorted(shapes)), 120)}.",
                "Read every clip at the same --frames and --size.",
            )
        return torch.stack(clips).float() / 255.0


def _logits(model: VideoClassifier, x: torch.Tensor) -> torch.Tensor:
    out = model.module(model.preprocess(x))
    if isinstance(out, (tuple, list)):
        out = out[0]
    if hasattr(out, "logits") and not isinstance(out, torch.Tensor):
        out = out.logits
    return out


def train_epoch(
    model: VideoClassifier,
    optimizer: torch.optim.Optimizer,
    clips: ClipStore,
    labels: torch.Tensor,
    train_idx: torch.Tensor,
    settings: dict[str, Any],
    gen: torch.Generator,
    bar: Any,
) -> float:
    """One epoch of SGD over ``train_idx`` in a random order; returns the mean loss.

    Each clip is flipped horizontally with probability ``settings["flip"]``; the loss is
    cross-entropy; gradients are clipped to norm ``settings["grad_clip"]`` (0: no clipping).
    """
    module = model.module
    assert isinstance(module, nn.Module)
    module.train()
    order = train_idx[torch.randperm(len(train_idx), generator=gen)]
    bs, total, n = int(settings["batch_size"]), 0.0, 0
    for start in range(0, len(order), bs):
        idx = order[start : start + bs]
        x = clips.batch(idx.tolist())
        flip = torch.rand(len(idx), generator=gen) < float(settings["flip"])
        x[flip] = x[flip].flip(3)
        y = labels[idx].to(model.device)
        loss = F.cross_entropy(_logits(model, x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings["grad_clip"] > 0:
            nn.utils.clip_grad_norm_(module.parameters(), float(settings["grad_clip"]))
        optimizer.step()
        total += float(loss.detach()) * len(idx)
        n += len(idx)
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    module.eval()
    return total / max(n, 1)


def evaluate_accuracy(
    model: VideoClassifier, clips: ClipStore, labels: torch.Tensor, idx: torch.Tensor, batch_size: int
) -> float:
    """Top-1 accuracy of ``model`` on clips ``idx`` (batched forward passes, eval mode)."""
    module = model.module
    assert isinstance(module, nn.Module)
    module.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(idx), batch_size):
            part = idx[start : start + batch_size]
            pred = _logits(model, clips.batch(part.tolist())).argmax(1).cpu()
            correct += int((pred == labels[part]).sum())
    return correct / max(len(idx), 1)
