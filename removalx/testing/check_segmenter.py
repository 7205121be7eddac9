"""``check_plugin`` for segmenters: the feature space's shape, features, coverage and contract.

Labels (when the space has them) must lie in ``[0, F)`` with every id used; every feature
must remove some pixel and every pixel must belong to some feature, unless the segmenter
declares a ``space_provides`` without ``nonempty`` / ``covering``; what it declares
(:data:`removalx.core.stages.SPACE_PROPERTIES`) must hold; and the same seed must give the
same space whatever torch's global generator does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from removalx.core.stages import SPACE_PROPERTIES, space_closure
from removalx.core.types import FeatureSpace
from removalx.testing.check_report import Reporter
from removalx.testing.determinism import difference, run_twice

__all__ = ["check_segmenter"]

#: Feature masks rendered per call when looking for empty features.
_CHUNK = 32
_DECLARE = "declare space_provides (docs/plugins.md, 'Stage contracts')"


def _probe(n_features: int) -> Tensor:
    """Fixed coalitions: all kept, all removed and four seeded random rows, ``float[6, F]``."""
    g = torch.Generator().manual_seed(7)
    rand = (torch.rand(4, n_features, generator=g) < 0.5).float()
    return torch.cat([torch.ones(1, n_features), torch.zeros(1, n_features), rand])


def _signature(space: FeatureSpace) -> tuple[Any, ...]:
    z = _probe(space.n_features)
    values = torch.arange(space.n_features, dtype=torch.float32)
    return space.n_features, space.labels, space.render(z, torch.arange(z.shape[0])), space.expand(values)


def _declared(obj: Any, report: Reporter) -> frozenset[str] | None:
    declared = getattr(type(obj), "space_provides", None)
    if declared is None:
        return None
    unknown = sorted(set(declared) - set(SPACE_PROPERTIES))
    if unknown:
        raise report(
            "declaration",
            f"space_provides names unknown properties {unknown[:5]}",
            f"Use names of {sorted(SPACE_PROPERTIES)}.",
        )
    return space_closure(frozenset(declared))


def _check_basics(space: Any, shape: tuple[int, int, int], report: Reporter) -> None:
    if not isinstance(space, FeatureSpace):
        raise report("space", f"segment() returned a {type(space).__name__}, not a FeatureSpace")
    if space.n_features < 1 or tuple(space.shape) != shape:
        raise report(
            "space", f"space has n_features={space.n_features}, shape={space.shape}; clip is {shape}"
        )


def _check_render(space: FeatureSpace, shape: tuple[int, int, int], report: Reporter) -> None:
    z = torch.stack([torch.ones(space.n_features), torch.zeros(space.n_features)])
    keep = space.render(z, torch.arange(2))
    if keep.shape != (2, *shape) or keep.min() < 0 or keep.max() > 1:
        raise report("render", f"render() gave shape {tuple(keep.shape)} / values outside [0, 1]")
    if not torch.allclose(keep[0], torch.ones_like(keep[0])):
        raise report("render", "render(all ones) must keep every pixel")
    if space.expand(torch.zeros(space.n_features)).shape != shape:
        raise report("expand", "expand() must return [T, H, W]")


def _check_labels(space: FeatureSpace, partition: bool, report: Reporter) -> None:
    labels, f = space.labels, space.n_features
    if labels is None:
        if partition:
            raise report("partition", "declares 'partition' but space.labels is None", _DECLARE)
        return
    if tuple(labels.shape) != tuple(space.shape) or labels.is_floating_point():
        raise report(
            "labels", f"space.labels must be integer [T, H, W], got {labels.dtype} {tuple(labels.shape)}"
        )
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= f:
        raise report("labels", f"feature ids in [{lo}, {hi}], outside [0, {f - 1}] for n_features={f}")
    counts = torch.bincount(labels.reshape(-1).long().cpu(), minlength=f)
    empty = torch.nonzero(counts == 0).flatten()
    if empty.numel():
        raise report("empty feature", f"feature {int(empty[0])} has no pixel ({empty.numel()} of {f} empty)")
    if partition:
        z = _probe(f)
        want = z[:, labels.long().cpu()]
        got = space.render(z, torch.arange(z.shape[0])).cpu().float()
        if not torch.equal(got, want):
            raise report("partition", "declares 'partition' but render(z) is not z[labels]", _DECLARE)


def _check_features(space: FeatureSpace, provides: frozenset[str], report: Reporter) -> None:
    f = space.n_features
    for start in range(
        0, f if "nonempty" in provides else 0, _CHUNK
    ):  # chunks of one-feature-removed rows, batched
        n = min(_CHUNK, f - start)
        z = torch.ones(n, f)
        z[torch.arange(n), torch.arange(start, start + n)] = 0.0
        removed = (1.0 - space.render(z, torch.arange(start, start + n))).reshape(n, -1).amax(1)
        empty = torch.nonzero(removed <= 0).flatten()
        if empty.numel():
            raise report(
                "empty feature",
                f"removing feature {start + int(empty[0])} removes no pixel ({empty.numel()} such features "
                f"among {start}..{start + n - 1})",
                f"Drop empty features, or {_DECLARE} without 'nonempty'.",
            )
    z = _probe(f)
    keep = space.render(z, torch.arange(z.shape[0]))
    if "hard_masks" in provides and not bool(((keep == 0) | (keep == 1)).all()):
        soft = keep[(keep != 0) & (keep != 1)]
        raise report(
            "hard masks", f"declares hard masks but render() gave values such as {float(soft[0]):.3g}"
        )
    left = keep[1] > 0  # all features removed
    if "covering" in provides and bool(left.any()):
        t, h, w = (int(i) for i in torch.nonzero(left)[0])
        raise report(
            "coverage",
            f"{int(left.sum())} of {left.numel()} pixels are in no feature (removing every feature keeps "
            f"pixel t={t}, y={h}, x={w})",
            f"Cover every pixel, or {_DECLARE} without 'covering'.",
        )


def check_segmenter(obj: Any, make: Callable[[], Any], video: Tensor, report: Reporter) -> None:
    """Check a segmenter on ``video``; ``make()`` builds a fresh one with the same config."""
    shape = (int(video.shape[0]), int(video.shape[1]), int(video.shape[2]))
    declared = _declared(obj, report)
    provides = declared if declared is not None else frozenset({"covering", "nonempty"})
    space = obj.segment(video, torch.Generator().manual_seed(0))
    _check_basics(space, shape, report)
    _check_labels(space, "partition" in provides, report)  # before render(), which may index by labels
    _check_render(space, shape, report)
    _check_features(space, provides, report)
    first, second = run_twice(lambda: _signature(make().segment(video, torch.Generator().manual_seed(0))))
    diff = difference(first, second)
    if diff is not None:
        raise report(
            "determinism",
            f"two runs with generator seed 0 differ ({diff}) while torch's global generator moved",
            "Draw random numbers only from the generator segment() is given.",
        )
