"""One batch of samples through removal and behavior: keep-masks, perturbed clips, outputs.

Only one batch of perturbed clips exists at a time; one output buffer serves every batch
(fresh 10-100 MB tensors per batch cost page faults that dominate the framework's own
time); removals whose ``apply`` takes no ``out`` allocate.

Without an explicit batch size, the batch on the CPU is ``min(memory bound, FIXED_BATCH)``
(:func:`choose_batch_size`); ``batch_size="auto"`` times a few sizes up to the memory bound
(:func:`default_batch_size`) with :class:`BatchTuner` on forward passes of the clean clip
before the explanation starts, cached per model, device and clip shape for the process
(docs/benchmarks.md, "Batch size"). The run is then exactly the run with that batch size given
explicitly.
"""

from __future__ import annotations

import inspect
import os
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from time import perf_counter
from typing import Any, Literal

import torch
from torch import Tensor

from removalx.core.classifier import VideoClassifier
from removalx.core.stages import Behavior, Removal, channels_first_empty
from removalx.core.types import FeatureSpace
from removalx.pipeline.checks import check_output
from removalx.pipeline.timing import Timer

__all__ = [
    "AUTO",
    "FIXED_BATCH",
    "BatchBuffer",
    "BatchEvaluator",
    "BatchSize",
    "BatchTuner",
    "accepts_out",
    "apply_for",
    "choose_batch_size",
    "clear_tuned_batch_sizes",
    "default_batch_size",
    "tuning_candidates",
]

#: Timed probes per candidate size; the per-clip time of a size is the minimum over them
#: (the first call at a new shape also pays one-off costs such as oneDNN primitive creation).
TUNING_REPEATS = 2
#: Stop trying larger sizes once a size is this much slower per clip than the best so far.
TUNING_STOP_RATIO = 1.2
#: Seconds per clip above which the batch size is not tuned (the memory bound stays).
HEAVY_SECONDS = 0.1
#: Largest cost of the probes, as a fraction of the explanation's forward passes.
TUNING_BUDGET = 0.1
#: The reference batch size: the tuned size is kept only where it gives the clean clip this
#: size's output bit for bit (some CPU kernels round differently per batch shape), and heavy
#: models use it, so that the attribution does not depend on timing.
FIXED_BATCH = 8


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


def tuning_candidates(cap: int) -> list[int]:
    """Sub-batch sizes to time: powers of two below ``cap``, then ``cap`` itself (ascending)."""
    sizes, s = [], 1
    while s < cap:
        sizes.append(s)
        s *= 2
    return [*sizes, cap]


#: The tuned batch size per model (weakly referenced) and ``(device, clip shape, cap)``.
_TUNED: weakref.WeakKeyDictionary[Any, dict[tuple[str, tuple[int, ...], int], int]] = (
    weakref.WeakKeyDictionary()
)


def clear_tuned_batch_sizes() -> None:
    """Forget every cached tuned batch size (the next explanation of each model tunes again)."""
    _TUNED.clear()


class BatchTuner:
    """The batch size: the fastest per clip among :func:`tuning_candidates` ``(cap)``.

    :meth:`probe` times forward passes of the clean clip at each candidate size in ascending
    order (``TUNING_REPEATS`` calls each, minimum per clip) and keeps the fastest, cached for
    ``(model, device, clip shape, cap)`` for the process. It stops early: past the optimum (a
    size ``TUNING_STOP_RATIO`` times slower per clip than the best), when a clip costs more
    than ``HEAVY_SECONDS`` (the batch barely matters there: the reference size
    ``min(cap, FIXED_BATCH)``, at the cost of one probe clip), or when the probes have cost
    ``TUNING_BUDGET`` of the explanation's forward passes; :meth:`keep_results` then keeps the
    fastest size only if it reproduces the reference size's output. The probes' outputs are
    discarded and not counted in ``n_forward``: the explanation is exactly the one with the
    chosen batch size given explicitly.

    Parameters
    ----------
    model : object
        The key of the cache (the ``VideoClassifier``'s module); ``None``: no caching.
    device : torch.device
        Where the model runs.
    clip_shape : tuple of int
        The clip's ``(T, H, W, C)``.
    cap : int
        The memory bound (:func:`default_batch_size`): the largest size tried.
    clock : callable, optional
        Seconds as a float (default ``time.perf_counter``).
    """

    def __init__(
        self,
        model: Any,
        device: torch.device,
        clip_shape: tuple[int, ...],
        cap: int,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.cap = max(1, int(cap))
        self.clock = clock if clock is not None else perf_counter
        self._key = (str(device), tuple(int(s) for s in clip_shape), self.cap)
        self._model = model
        self.candidates = tuning_candidates(self.cap)
        self.per_clip: dict[int, list[float]] = {s: [] for s in self.candidates}
        self._next = 0
        #: The clean clip's output at each probed size (the first row of the batch).
        self.outputs: dict[int, Tensor] = {}
        #: Whether the probed sizes gave the clean clip bit-identical outputs.
        self.batch_invariant: bool | None = None
        self.cached = False
        self.size: int | None = self._lookup()
        self.cached = self.size is not None

    def _lookup(self) -> int | None:
        try:
            return _TUNED.get(self._model, {}).get(self._key)
        except TypeError:  # a model that cannot be weakly referenced or hashed: no caching
            return None

    def _store(self, size: int) -> None:
        with suppress(TypeError):
            _TUNED.setdefault(self._model, {})[self._key] = size

    def probe(self, clf: VideoClassifier, clip: Tensor, n_planned: int) -> int:
        """Time the candidates on the clean ``clip`` (unless cached) and return the chosen size."""
        if self.size is not None:
            return self.size
        n0, spent = clf.n_forward, 0.0
        try:
            with torch.inference_mode():
                while self.size is None:
                    k = self.current
                    x = clip.unsqueeze(0).expand(k, *clip.shape).contiguous()
                    t0 = self.clock()
                    out = clf(x)
                    dt = self.clock() - t0
                    self.outputs.setdefault(k, out[0].detach().clone())
                    spent += dt
                    self.record(k, dt)
                    if self.size is None and dt / k > HEAVY_SECONDS:
                        self.size = min(self.cap, FIXED_BATCH)  # a heavy model: the batch barely matters
                    elif self.size is None and spent > TUNING_BUDGET * n_planned * min(self.all_times()):
                        self.decide()
                self.keep_results(clf, clip)
        finally:
            clf.n_forward = n0  # the probes are not part of the explanation
        return self.size

    def all_times(self) -> list[float]:
        """Every per-clip time measured so far."""
        return [t for ts in self.per_clip.values() for t in ts]

    @property
    def current(self) -> int:
        """The size of the next probe: the chosen size, or the candidate being timed."""
        return self.size if self.size is not None else self.candidates[self._next]

    def record(self, n: int, seconds: float) -> None:
        """Note that ``n`` clips of the size being timed took ``seconds``; decide when all are timed."""
        if self.size is not None or n != self.current:
            return
        times = self.per_clip[n]
        times.append(seconds / n)
        if len(times) < TUNING_REPEATS:
            return
        best = min(min(t) for t in self.per_clip.values() if len(t) >= TUNING_REPEATS)
        last = self._next == len(self.candidates) - 1
        if last or min(times) > TUNING_STOP_RATIO * best:
            self.decide()
        else:
            self._next += 1

    def best_times(self) -> dict[int, float]:
        """Per-clip time (minimum over its probes) of every size timed so far."""
        return {s: min(t) for s, t in self.per_clip.items() if t}

    def decide(self) -> int:
        """Keep the fastest size per clip among those timed (ties: the larger) and cache it."""
        best = self.best_times()
        self.size = min(best, key=lambda s: (best[s], -s)) if best else self.cap
        self._store(self.size)
        return self.size

    def keep_results(self, clf: VideoClassifier, clip: Tensor) -> int:
        """The chosen size if it gives the clean clip the output of the reference size, else the
        reference size ``min(cap, FIXED_BATCH)``; cached.

        Some CPU kernels round differently per batch shape, so a model's outputs can depend on
        the batch size; the timings, and so the fastest size, depend on the machine's load.
        Keeping the fastest size only when it reproduces the reference size's output bit for
        bit makes the attribution that of the reference size in every process.
        """
        ref = min(self.cap, FIXED_BATCH)
        if self.size is None or self.size == ref:
            self.size = ref
        else:
            for k in (ref, self.size):
                if k not in self.outputs:
                    self.outputs[k] = clf(clip.unsqueeze(0).expand(k, *clip.shape).contiguous())[0]
            self.batch_invariant = torch.equal(self.outputs[self.size], self.outputs[ref])
            if not self.batch_invariant:
                self.size = ref
        self._store(self.size)
        return self.size

    def meta(self) -> dict[str, Any]:
        """What the tuner did, for ``Attribution.meta["batch_tuning"]``."""
        return {
            "batch_size": self.current,
            "cached": self.cached,
            "batch_invariant": self.batch_invariant,
            "ms_per_clip": {str(s): round(t * 1e3, 4) for s, t in self.best_times().items()},
        }


#: ``batch_size="auto"``: time a few sizes on the CPU and keep the fastest (:class:`BatchTuner`).
AUTO = "auto"
#: What a run may be given as its batch size: a number, ``"auto"``, or ``None`` (the default).
BatchSize = int | Literal["auto"] | None


def choose_batch_size(
    clf: VideoClassifier,
    clip: Tensor,
    batch_size: BatchSize,
    behavior: Behavior,
    n_planned: int,
    timer: Timer,
) -> tuple[int, dict[str, Any] | None]:
    """The run's batch size and what tuning did (``None``: not tuned).

    An explicit ``batch_size`` is used as given. ``None``: on the CPU ``min(memory bound,
    FIXED_BATCH)`` for a gradient-free behavior (small video models run fastest per clip at
    batches of about 8 on a CPU; docs/benchmarks.md, "Batch size"), else the memory bound
    (:func:`default_batch_size`). Both depend only on the model's input, the device and free
    memory, never on timings, so the same run gives the same bits in every process.
    ``"auto"``: on the CPU, the size :class:`BatchTuner` times as the fastest for this model.
    """
    if batch_size == AUTO:
        cap = default_batch_size(clip, clf.device)
        if clf.device.type != "cpu" or behavior.needs_grad or cap == 1:
            return cap, None
        tuner = BatchTuner(clf.module, clf.device, tuple(clip.shape), cap)
        with timer("batch_tuning"):
            size = tuner.probe(clf, clip, n_planned)
        return size, tuner.meta()
    if batch_size:
        return int(batch_size), None
    cap = default_batch_size(clip, clf.device)
    if clf.device.type == "cpu" and not behavior.needs_grad:
        return min(cap, FIXED_BATCH), None
    return cap, None


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
