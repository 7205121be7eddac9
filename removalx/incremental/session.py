"""Attach incremental inference to a :class:`~removalx.VideoClassifier` for one explanation.

:func:`incremental` records the model at a reference clip and routes the classifier's
gradient-free forward passes through :class:`~removalx.incremental.engine.IncrementalModel`
until the block ends; :func:`plan_reference` picks the reference of a removal plan (the clean
clip when every sample removes few features -- occlusion, LOCO, AOSA --, the all-removed clip
when every sample keeps few -- Univariate). A model the engine cannot replay runs full
forward passes, with a one-line notice (once per classifier).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from removalx.core.classifier import VideoClassifier
from removalx.core.progress import write_line
from removalx.incremental.engine import DEFAULT_FULL_FRACTION, build
from removalx.incremental.trace import TraceUnsupported

__all__ = ["LOCAL_FRACTION", "MIN_MACS", "IncrementalReport", "incremental", "plan_reference"]

#: A plan is local when no sample of its first chunk differs from the reference in more than
#: this fraction of the features (at least one).
LOCAL_FRACTION = 0.1

#: Incremental inference is used only for models that compute at least this many multiply-adds
#: per clip (convolutions and linear layers). Below it the bookkeeping of the changed boxes
#: costs more than the saved arithmetic: the zoo's r3d_tiny (0.14 G) ran slower incrementally
#: although it saved 69 % of its multiply-adds, r3d_18 at 16x112x112 (41 G) ran 2.8x faster
#: (docs/incremental.md). A fixed count, not a timing, decides, so the choice never depends
#: on the machine's load.
MIN_MACS = 1_000_000_000


@dataclass
class IncrementalReport:
    """What incremental inference did (``Attribution.meta["incremental"]``).

    Attributes
    ----------
    used : bool
        True when the forward passes went through the incremental engine.
    reference : str or None
        ``clean``, ``empty`` (all removed) or ``previous_step``.
    reason : str
        Why it was not used (empty when used).
    macs_full, macs_done : int
        Multiply-adds (convolutions and linear layers) of full forward passes of the samples,
        and those actually computed.
    """

    used: bool = False
    reference: str | None = None
    reason: str = ""
    macs_full: int = 0
    macs_done: int = 0

    @property
    def saved_fraction(self) -> float:
        """Fraction of multiply-adds saved (0 when unused)."""
        return 0.0 if self.macs_full == 0 else 1.0 - self.macs_done / self.macs_full

    def to_meta(self) -> dict[str, Any]:
        return {
            "used": self.used,
            "reference": self.reference,
            "reason": self.reason,
            "macs_full": int(self.macs_full),
            "macs_computed": int(self.macs_done),
            "macs_saved_fraction": round(self.saved_fraction, 6),
        }


def plan_reference(z: Tensor, local_fraction: float = LOCAL_FRACTION) -> str | None:
    """``clean``, ``empty`` or ``None`` for the coalitions ``z`` (``[k, F]``, 1 = keep) of a plan.

    ``clean`` when every row removes at most ``max(1, local_fraction * F)`` features,
    ``empty`` when every row keeps at most that many, else ``None`` (the samples are not local).
    """
    if z.dim() != 2 or z.shape[0] == 0:
        return None
    f = int(z.shape[1])
    limit = max(1, int(local_fraction * f))
    removed = (z < 0.5).sum(dim=1)
    if int(removed.max()) <= limit:
        return "clean"
    if int((f - removed).max()) <= limit:
        return "empty"
    return None


@contextmanager
def incremental(
    clf: VideoClassifier,
    reference: Tensor | None,
    kind: str | None,
    *,
    enabled: bool = True,
    follow: bool = False,
    reason: str = "",
    full_fraction: float = DEFAULT_FULL_FRACTION,
) -> Iterator[IncrementalReport]:
    """Run ``clf``'s forward passes incrementally from ``reference`` inside the block.

    Parameters
    ----------
    clf : VideoClassifier
        The model; its ``nn.Module`` is recorded at ``reference``.
    reference : Tensor or None
        ``float[T, H, W, C]`` clip on ``clf.device`` (``None``: not used, see ``reason``).
    kind : str or None
        Name of the reference for the report (``clean``, ``empty``, ``previous_step``).
    enabled : bool
        False turns incremental inference off (the report says so).
    follow : bool
        The last clip of each batch becomes the reference of the next (perturbation curves).
    reason : str
        Why ``reference`` is ``None``.
    full_fraction : float
        See :class:`~removalx.incremental.engine.IncrementalModel`.
    """
    report = IncrementalReport(reference=kind)
    if not enabled:
        report.reason = "turned off"
    elif reference is None:
        report.reason = reason or "no reference clip"
    elif not clf.is_module:
        report.reason = "the model is not an nn.Module"
    if report.reason:
        yield report
        return
    assert reference is not None
    try:
        with torch.inference_mode():
            x = clf.preprocess(reference[None])
        engine = build(clf.module, x, full_fraction)  # type: ignore[arg-type]
    except TraceUnsupported as exc:
        report.reason = f"model not supported: {exc.reason}"
    except Exception as exc:  # a model that fails on the reference fails the explanation later
        report.reason = f"model not supported: {type(exc).__name__} while recording"
    else:
        per_clip = engine.macs_per_sample
        if per_clip < MIN_MACS:
            report.reason = (
                f"model too small to gain: {per_clip / 1e6:.0f} M multiply-adds per clip, "
                f"below {MIN_MACS / 1e9:g} G"
            )
            yield report
            return
    if report.reason:
        if not getattr(clf, "_incremental_notice", False):
            write_line(
                f"removalx: incremental inference is off for {clf.name} ({report.reason[:160]}); "
                "running full forward passes"
            )
            clf._incremental_notice = True  # type: ignore[attr-defined]
        yield report
        return
    engine.follow = follow
    previous = clf.incremental_engine
    clf.incremental_engine = engine
    report.used = True
    try:
        yield report
    finally:
        clf.incremental_engine = previous
        report.macs_full, report.macs_done = engine.macs_full, engine.macs_done
        if engine.stopped:
            report.reason = f"stopped after one batch: {engine.stopped}"
