"""``check_plugin`` for behaviors and summaries: hand cases whose answer is known.

Behavior: on fixed logits ``float[3, 5]`` the score must be ``float[3]``, finite, the same
row by row as in a batch, and must grow when the target's logit grows with the others
fixed (a probability, a logit and log-odds all do).

Summary: an additive game over four quadrant features, ``y(z) = b + sum_i c_i z_i``, played
on all ``2^4`` coalitions. Every removal summary ranks such features by ``c`` (regression
and Shapley values give ``c`` itself; occlusion differences, RISE's masked means and mean
outputs are increasing -- or, for summaries whose low values mark importance, decreasing --
functions of ``c_i``), so the feature values must follow ``c`` and, for reversed ``c``,
the reversed order: a summary that ignores ``y`` or ``z`` fails. Streaming the same rows
in batches of 3 must give the same values, and so must a second run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from removalx.core.plans import SamplePlan
from removalx.core.types import PartitionSpace
from removalx.testing.check_report import Reporter
from removalx.testing.determinism import difference, run_twice

__all__ = ["GAME_COEFFICIENTS", "additive_game", "check_behavior", "check_summary"]

#: ``c`` of the summary hand case: distinct, so that the ranking is strict.
GAME_COEFFICIENTS = (0.5, 2.0, 1.0, 3.0)
_BIAS = 0.25
_LOGITS = ((2.0, 0.0, -1.0, 0.5, 0.0), (0.0, 0.0, 0.0, 0.0, 0.0), (-1.0, 3.0, 0.5, 0.0, 1.0))
_TARGET = 2


def check_behavior(make: Callable[[], Any], report: Reporter) -> None:
    """Check a behavior's ``score`` on fixed logits."""
    obj = make()
    logits = torch.tensor(_LOGITS)
    y = obj.score(logits, _TARGET)
    if not isinstance(y, Tensor) or tuple(y.shape) != (logits.shape[0],):
        shape = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise report("shape", f"score() of logits [3, 5] gave {shape}, expected [3] (one value per clip)")
    if not torch.isfinite(y).all():
        raise report("finite", f"score() gave non-finite values {y.tolist()}")
    rows = torch.cat([obj.score(logits[i : i + 1], _TARGET) for i in range(logits.shape[0])])
    if not torch.allclose(rows, y, atol=1e-6, rtol=1e-5):
        raise report(
            "batch consistency", f"score() row by row {rows.tolist()} differs from the batch {y.tolist()}"
        )
    up = logits.clone()
    up[:, _TARGET] += 1.0
    grown = obj.score(up, _TARGET) - y
    if float(grown.min()) < -1e-6 or float(grown.max()) <= 0:
        raise report(
            "hand case",
            f"raising the target logit by 1 changed the scores by {[round(v, 4) for v in grown.tolist()]}; "
            "a behavior must grow with the target's logit",
        )
    first, second = run_twice(lambda: make().score(logits, _TARGET))
    diff = difference(first, second)
    if diff is not None:
        raise report("determinism", f"two runs differ ({diff}) while torch's global generator moved")


def additive_game(coefficients: Tensor, bias: float = _BIAS) -> tuple[Tensor, Tensor]:
    """All ``2^F`` coalitions ``z float[2^F, F]`` and ``y = bias + z @ coefficients``."""
    f = int(coefficients.shape[0])
    bits = torch.arange(2**f)[:, None].bitwise_right_shift(torch.arange(f)).bitwise_and(1)
    z = bits.float()
    return z, bias + z @ coefficients.float()


def _quadrants(t: int, h: int, w: int) -> PartitionSpace:
    labels = torch.zeros(t, h, w, dtype=torch.long)
    labels[:, h // 2 :, :] += 2
    labels[:, :, w // 2 :] += 1
    return PartitionSpace(labels)


def _run_summary(obj: Any, space: PartitionSpace, c: Tensor, batch: int) -> tuple[Any, Any]:
    z, y = additive_game(c)
    keep = space.render(z, torch.arange(z.shape[0]))
    obj.begin(space, SamplePlan(z, meta={"exhaustive": True}), {"full": float(y[-1]), "empty": float(y[0])})
    for s in range(0, z.shape[0], batch):
        obj.update(z[s : s + batch], keep[s : s + batch], y[s : s + batch], None)
    values, feature_values = obj.finalize(space)
    return values, feature_values


def _feature_scores(values: Any, feature_values: Any, space: PartitionSpace, report: Reporter) -> Tensor:
    if not isinstance(values, Tensor) or tuple(values.shape) != tuple(space.shape):
        shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise report("shape", f"finalize() gave values {shape}, expected {tuple(space.shape)}")
    if feature_values is not None and (
        not isinstance(feature_values, Tensor) or tuple(feature_values.shape) != (space.n_features,)
    ):
        raise report("shape", f"finalize() feature values must be float[{space.n_features}] or None")
    if not torch.isfinite(values).all():
        raise report("finite", "finalize() gave non-finite values")
    if feature_values is not None:
        return feature_values.detach().double().cpu()
    flat, labels = values.detach().double().cpu().reshape(-1), space.labels.reshape(-1)
    return torch.zeros(space.n_features, dtype=torch.float64).index_add_(0, labels, flat) / space.sizes()


def check_summary(make: Callable[[], Any], video: Tensor, report: Reporter) -> None:
    """Check a summary on the additive game (module docstring)."""
    space = _quadrants(int(video.shape[0]), int(video.shape[1]), int(video.shape[2]))
    sign = -1.0 if getattr(make(), "lower_is_important", False) else 1.0
    c = torch.tensor(GAME_COEFFICIENTS)
    for coef in (c, c.flip(0)):
        scores = sign * _feature_scores(*_run_summary(make(), space, coef, 16), space, report)
        if not torch.equal(scores.argsort(), coef.argsort()) or bool((scores.diff().abs() < 1e-9).any()):
            raise report(
                "hand case",
                f"on the additive game y = {_BIAS} + z @ {coef.tolist()} the feature values "
                f"{[round(v, 4) for v in (sign * scores).tolist()]} do not rank the features by the "
                "coefficients (does the summary read z and y?)",
            )
    whole = _run_summary(make(), space, c, 16)
    batched = _run_summary(make(), space, c, 3)
    for got, want in zip(batched, whole):
        if (got is None) != (want is None) or (got is not None and not torch.allclose(got, want, atol=1e-5)):
            raise report(
                "streaming", "the same rows in batches of 3 give other values than in one batch of 16"
            )
    first, second = run_twice(lambda: _run_summary(make(), space, c, 16))
    diff = difference(first, second)
    if diff is not None:
        raise report("determinism", f"two runs differ ({diff}) while torch's global generator moved")
