"""The ECCV-W study's shape loss (Eq. 8-9) against a NumPy computation, and its recipes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import removalx
from removalx.core.classifier import VideoClassifier
from removalx.core.recipe import load_recipe
from removalx.errors import ConfigError
from removalx.testing.data import LinearVideoModel, square_evidence, tiny_video
from removalx_plugins.machinery.extremal import eccvw_kernel, eccvw_shape_loss

T = 8
SMALL = {"step": 2, "sigma": 1.5, "learning_rate": 0.2, "lambda1": 1.0, "smooth_sigma": 0.0, "iterations": 6}


def np_kernel(tk: int, hk: int, wk: int, radius: float) -> np.ndarray:
    """Eq. 9 read literally with loops: ``K[t, i, j]`` for ``t <= T_K, i <= H_K, j <= W_K``."""
    k = np.zeros((tk + 1, hk + 1, wk + 1))

    def rel(a: int, n: int) -> float:
        return 0.0 if n == 0 else a / n - 0.5

    for t in range(tk + 1):
        for i in range(hk + 1):
            for j in range(wk + 1):
                r = math.sqrt(rel(i, hk) ** 2 + rel(j, wk) ** 2 + rel(t, tk) ** 2)
                k[t, i, j] = 0.0 if r > radius else 1.0
    return k


def np_loss(mask: np.ndarray, k: np.ndarray) -> float:
    """Eq. 8 by brute force: the max over every valid window of sum(M K), minus sum K, squared."""
    (t, h, w), (kt, kh, kw) = mask.shape, k.shape
    best = max(
        float((mask[a : a + kt, b : b + kh, c : c + kw] * k).sum())
        for a in range(t - kt + 1)
        for b in range(h - kh + 1)
        for c in range(w - kw + 1)
    )
    return (best - float(k.sum())) ** 2


@pytest.mark.parametrize("size", [(2, 4, 4), (4, 6, 8), (0, 4, 4), (3, 0, 5)])
@pytest.mark.parametrize("radius", [0.5, 0.3, 1.0])
def test_kernel_is_eq9(size, radius):
    got = eccvw_kernel(tuple(s + 1 for s in size), radius)
    np.testing.assert_array_equal(got.numpy(), np_kernel(*size, radius))


def test_the_printed_threshold_keeps_the_whole_box():
    # every term of Eq. 9 is at most 0.25, so sqrt(...) <= sqrt(0.75) < 1: no position is 0
    assert bool((eccvw_kernel((5, 7, 9), 1.0) == 1).all())
    inscribed = eccvw_kernel((5, 7, 9), 0.5)
    assert 0 < float(inscribed.sum()) < 5 * 7 * 9 and float(inscribed[2, 3, 4]) == 1.0
    assert float(inscribed[0, 0, 0]) == 0.0  # a corner is outside the ellipsoid


def test_loss_is_eq8_by_brute_force():
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(3, 5, 9, 10, generator=g, dtype=torch.float64)
    mask[1] = (mask[1] > 0.5).double()
    mask[2] = 1.0  # a kept window everywhere: loss 0
    k = eccvw_kernel((3, 5, 5), 0.5).double()
    got = eccvw_shape_loss(mask, k)
    want = [np_loss(mask[a].numpy(), k.numpy()) for a in range(3)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    assert want[2] == 0.0 and want[0] > 0


def test_gradient_reaches_only_the_best_window():
    mask = torch.zeros(1, 3, 6, 6, dtype=torch.float64)
    mask[0, :, 3:, 3:] = 0.8  # the best 3x3x3 window is the bottom-right corner
    mask.requires_grad_(True)
    k = torch.ones(3, 3, 3, dtype=torch.float64)
    eccvw_shape_loss(mask, k).sum().backward()
    assert mask.grad is not None
    # d/dM (peak - 27)^2 = 2 (peak - 27) on the window's positions, 0 elsewhere
    expect = torch.zeros(1, 3, 6, 6, dtype=torch.float64)
    expect[0, :, 3:, 3:] = 2 * (0.8 * 27 - 27)
    torch.testing.assert_close(mask.grad, expect)


def square_model() -> VideoClassifier:
    video, ev = tiny_video(T), square_evidence(T)
    w = torch.zeros(2, T, 16, 16, 3)
    w[0][ev] = 1.0
    w[0][~ev] = -float(ev.sum()) / float((~ev).sum())
    w[1] = -w[0]
    w = w * (3.0 / (w[0] * video).sum().abs())
    return VideoClassifier(LinearVideoModel(w), layout="BTHWC")


def explain(name: str, **cfg):
    recipe = {"name": name, "seed": 0, "explainer": {"name": name, **cfg}}
    ex = removalx.Explainer.from_recipe(recipe, progress=False)
    return ex.explain(square_model(), tiny_video(T), 0)


def test_ep3d_option_records_eq8_of_its_masks():
    attr = explain("ep3d", eccvw_weight=300.0, eccvw_kernel=[4, 5, 5], eccvw_radius=0.5, **SMALL)
    info = attr.meta["eccvw_loss"]
    assert info["kernel_size"] == (4, 5, 5) and info["weight"] == 300.0
    k = np_kernel(3, 4, 4, 0.5)
    assert info["kernel_ones"] == int(k.sum())
    masks = attr.meta["masks"].double().numpy()
    want = [np_loss(m, k) for m in masks]
    np.testing.assert_allclose(info["final"], want, rtol=1e-4, atol=1e-3)


def test_weight_changes_the_optimisation_and_zero_is_the_plain_method():
    plain = explain("ep3d", **SMALL)
    off = explain("ep3d", eccvw_weight=0.0, **SMALL)
    on = explain("ep3d", eccvw_weight=1e4, eccvw_kernel=[4, 5, 5], **SMALL)
    torch.testing.assert_close(plain.values, off.values, rtol=0, atol=0)
    assert "eccvw_loss" not in plain.meta
    assert not torch.allclose(plain.meta["masks"], on.meta["masks"])


def test_kernel_is_clipped_to_the_clip():
    attr = explain("ep3d", eccvw_weight=1.0, eccvw_kernel=[50, 5, 5], **SMALL)
    assert attr.meta["eccvw_loss"]["kernel_size"] == (T, 5, 5)


def test_unsync_refuses_the_shape_loss():
    with pytest.raises(ConfigError, match="eccvw_weight"):
        explain("ep2d", sync=False, eccvw_weight=1.0, **SMALL)


def test_recipes_reproduce_the_study_settings():
    plain, shape = load_recipe("ep3d_eccvw"), load_recipe("ep3d_eccvw_shape")
    for r in (plain, shape):
        cfg = r.stage("explainer")
        assert tuple(cfg.areas) == (0.01, 0.05, 0.1) and cfg.reward == "probability"
    assert plain.stage("explainer").eccvw_weight == 0.0
    cfg = shape.stage("explainer")
    assert cfg.eccvw_weight == 300.0 and tuple(cfg.eccvw_kernel) == (8, 11, 11) and cfg.eccvw_radius == 0.5
