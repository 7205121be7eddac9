"""Sparseness (Gini), complexity (entropy) and effective complexity: hand oracles and Quantus.

Quantus 0.6.0 is the oracle on the image-shaped case (a one-frame map, Quantus' default
normalise-by-max and abs); it adds 1e-7 to every value before the Gini index and 1e-12 inside
the logarithm, which move the results by far less than the 1e-6 tolerance on these maps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from removalx.core.types import Attribution
from removalx.errors import ConfigError
from removalx.metrics.complexity import complexity, effective_complexity, sparseness


def _map(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(1, 1, -1)


def test_gini_hand_cases():
    assert sparseness(_map([0, 0, 0, 1])) == pytest.approx(0.75)  # 1 - 1/N
    assert sparseness(_map([2, 2, 2, 2])) == pytest.approx(0.0)
    # sorted 1,2,3,4: sum (2k - 5) v_k = -3 - 2 + 3 + 12 = 10; / (4 * 10)
    assert sparseness(_map([4, 1, 3, 2])) == pytest.approx(0.25)
    assert sparseness(_map([-4, 1, -3, 2])) == pytest.approx(0.25)  # magnitudes
    assert sparseness(_map([0, 0, 0])) == 0.0


def test_entropy_hand_cases():
    assert complexity(_map([1, 1, 0, 0])) == pytest.approx(math.log(2))
    assert complexity(_map([0, 5, 0, 0])) == pytest.approx(0.0)
    assert complexity(_map([3, 3, 3, 3, 3])) == pytest.approx(math.log(5))
    p = np.array([1, 2, 3, 4]) / 10
    assert complexity(_map([1, -2, 3, -4])) == pytest.approx(float(-(p * np.log(p)).sum()))
    assert complexity(_map([0, 0])) == pytest.approx(math.log(2))


def test_effective_complexity_hand_cases():
    assert effective_complexity(_map([1.0, 1e-6, -0.5, 0.0])) == 2
    assert effective_complexity(_map([1.0, 2e-5, 0.0]), eps=1e-5) == 2
    assert effective_complexity(_map([1.0, 2e-5, 0.0]), eps=1e-4) == 1
    assert effective_complexity(_map([0.0, 0.0])) == 0


def test_frames_pooling_sees_per_frame_totals():
    a = torch.zeros(4, 2, 2)
    a[1] = 1.0  # all mass in one frame, spread over its pixels
    assert sparseness(a, pool="frames") == pytest.approx(0.75)
    assert complexity(a, pool="frames") == pytest.approx(0.0)
    assert complexity(a, pool="pixels") == pytest.approx(math.log(4))
    assert effective_complexity(a, pool="frames") == 1


def test_non_finite_map_is_refused():
    with pytest.raises(ConfigError, match="non-finite"):
        sparseness(_map([1.0, float("nan")]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantus_agrees_on_an_image_shaped_map(seed):
    quantus = pytest.importorskip("quantus")
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(1, 7, 9, generator=g)  # one frame, signed
    a[0, 0, :3] = 0.0  # exact zeros too
    x = torch.rand(1, 3, 7, 9, generator=g).numpy()
    a_q = a.numpy()[:, None].astype(np.float64)  # (N=1, 1, H, W)
    kw = {"disable_warnings": True}
    ours = (sparseness(a), complexity(a), effective_complexity(a, eps=1e-5))
    q_sp = quantus.Sparseness(**kw)(model=None, x_batch=x, y_batch=np.array([0]), a_batch=a_q.copy())[0]
    q_cx = quantus.Complexity(**kw)(model=None, x_batch=x, y_batch=np.array([0]), a_batch=a_q.copy())[0]
    q_ec = quantus.EffectiveComplexity(eps=1e-5, **kw)(
        model=None, x_batch=x, y_batch=np.array([0]), a_batch=a_q.copy()
    )[0]
    assert ours[0] == pytest.approx(q_sp, abs=1e-6)
    assert ours[1] == pytest.approx(q_cx, abs=1e-6)
    assert ours[2] == int(q_ec)


def test_plugins_score_without_a_forward_pass(registry):
    a = Attribution(values=torch.tensor([[[0.0, 1.0], [0.0, 0.0]]]), target=0)
    video = torch.zeros(1, 2, 2, 3)
    sp = registry.make("metric", "sparseness", {}).score(None, video, a)
    cx = registry.make("metric", "complexity", {}).score(None, video, a)
    ec = registry.make("metric", "effective_complexity", {"eps": 0.5}).score(None, video, a)
    assert sp["value"] == pytest.approx(0.75) and sp["higher_is_better"] and sp["value_range"] == [0.0, 1.0]
    assert cx["value"] == pytest.approx(0.0) and not cx["higher_is_better"]
    assert cx["value_range"] == pytest.approx([0.0, math.log(4)])
    assert ec["value"] == 1 and ec["fraction"] == 0.25 and ec["value_range"] == [0.0, 4.0]
    assert sp["n_forward"] == cx["n_forward"] == ec["n_forward"] == 0
    assert ec["settings"] == {"eps": 0.5, "pool": "pixels"}
