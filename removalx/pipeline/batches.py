"""One batch of samples through removal and behavior: keep-masks, perturbed clips, outputs.

Only one batch of perturbed clips exists at a time; one output buffer serves every batch
(fresh 10-100 MB tensors per batch cost page faults that dominate the framework's own
time); removals whose ``apply`` takes no ``out`` allocate.
"""

from __future__ import annotations

import inspect
import os
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor

from removalx.core.classifier import VideoClassifier
from removalx.core.stages import Behavior, Removal, channels_first_empty
from removalx.core.types import FeatureSpace
from removalx.pipeline.checks import check_output
from removalx.pipeline.timing import Timer

__all__ = ["BatchBuffer", "BatchEvaluator", "accepts_out", "apply_for", "default_batch_size"]


def default_batch_size(video: Tensor, device: torch.device) -> int:
    """A batch size that keeps perturbation tensors within a quarter of free memory (1 to 32)."""
    per_sample = video.numel() * 4 * 4  # perturbed clip, keep-mask, fill and model input copy
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
    else:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            free = 4 * 2**30
    return int(max(1, min(32, (free // 4) // max(per_sample, 1))))


def apply_for(removal: Removal, behavior: Behavior) -> Any:
    """The removal's ``apply`` (or ``apply_expected`` for a behavior that wants expected inputs)."""
    return removal.apply_expected if behavior.expected_input else removal.apply


class BatchBuffer:
    """A reusable ``[B, T, H, W, C]`` tensor (channel-first memory); ``take(n)`` gives ``n`` clips."""

    def __init__(self, clip: Tensor, batch_size: int) -> None:
        self._clip = clip
        self._batch_size = batch_size
        self._buf: Tensor | None = None

    def take(self, n: int) -> Tensor:
        if self._buf is None or self._buf.shape[0] < n:
            shape = (max(n, self._batch_size), *self._clip.shape)
            self._buf = channels_first_empty(shape, self._clip.dtype, self._clip.device)
        return self._buf[:n]


def accepts_out(fn: Any) -> bool:
    """Whether ``fn`` takes an ``out`` argument (a removal's ``apply`` that can fill a buffer)."""
    try:
        return "out" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class BatchEvaluator:
    """Removal then behavior for one batch of coalitions: ``(keep-masks, outputs float[B])``.

    Parameters
    ----------
    clf : VideoClassifier
        The model.
    space : FeatureSpace
        Renders coalitions into pixel keep-masks.
    clip : Tensor
        The clip ``float32[T, H, W, C]`` on the model's device.
    removal, behavior : Removal, Behavior
        The prepared removal and the begun behavior.
    needs_keep : bool
        Whether the summary reads keep-masks (else known outputs need no masks at all).
    target : int
        The class explained.
    timer : Timer
        Accumulates ``perturb`` and ``model`` times.
    batch_size : int
        Size of the reusable output buffer.
    """

    def __init__(
        self,
        clf: VideoClassifier,
        space: FeatureSpace,
        clip: Tensor,
        removal: Removal,
        behavior: Behavior,
        needs_keep: bool,
        target: int,
        timer: Timer,
        batch_size: int,
    ) -> None:
        self.clf = clf
        self.space = space
        self.clip = clip
        self.behavior = behavior
        self.needs_keep = needs_keep
        self.target = target
        self.timer = timer
        self.device = clf.device
        self.apply = apply_for(removal, behavior)
        self.grad_ctx: AbstractContextManager[Any] = (
            nullcontext() if behavior.needs_grad else torch.inference_mode()
        )
        reuse = accepts_out(self.apply) and not behavior.needs_grad
        self.buffer = BatchBuffer(clip, batch_size) if reuse else None

    def __call__(self, z: Tensor, index: Tensor, known: Tensor | None) -> tuple[Tensor | None, Tensor]:
        """Keep-masks (``None`` when known outputs make them unneeded) and outputs of a batch."""
        if known is not None and not self.needs_keep:
            return None, known.to(self.device)
        keep = self.keep_masks(z, index)
        if known is not None:
            return keep, known.to(self.device)
        n = z.shape[0]
        return keep, self.outputs(self.perturbed(keep, index, n), n)

    def keep_masks(self, z: Tensor, index: Tensor) -> Tensor:
        """Pixel keep-masks ``float[B, T, H, W]`` of coalitions ``z float[B, F]``."""
        with self.timer("perturb"):
            return self.space.render(z, index)

    def perturbed(self, keep: Tensor, index: Tensor, n: int) -> Tensor:
        """The removal: ``n`` perturbed clips ``float[n, T, H, W, C]`` (in the reused buffer if any)."""
        with self.timer("perturb"):
            if self.buffer is None:
                return self.apply(self.clip, keep, index)
            return self.apply(self.clip, keep, index, out=self.buffer.take(n))

    def outputs(self, batch: Tensor, n: int) -> Tensor:
        """The behavior: checked outputs ``float[n]`` of a perturbed batch."""
        with self.timer("model"), self.grad_ctx:
            y = self.behavior.evaluate(self.clf, batch, self.target)
        return check_output(y, n).detach()
