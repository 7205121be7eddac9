"""Leverage SHAP (``leverage_shapley`` / ``leverage_shap3d``) against closed-form Shapley values.

The oracle is :class:`removalx.testing.games.UnanimityGameModel`, whose Shapley values are
``sum_{T containing i} c_T / |T|``, played through segmentation, rendering and removal.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import removalx
from removalx.testing.games import UnanimityGameModel, random_unanimity_game
from removalx_plugins.selection.leverage_shapley import size_counts

pytestmark = pytest.mark.usefixtures("rx_one_thread")  # tiny tensors: one torch thread


def _game(cells, seed, max_order=4, n_terms=None):
    g = torch.Generator().manual_seed(seed)
    video = 0.3 + 0.7 * torch.rand(4, 16, 16, 3, generator=g)
    labels = (
        removalx.get_registry()
        .make("segmentation", "grid3d", {"cells": list(cells)})
        .segment(video, torch.Generator())
        .labels
    )
    f = math.prod(cells)
    sets, w = random_unanimity_game(f, n_terms or f, g, max_order=max_order)
    model = UnanimityGameModel(labels, video, sets, w)
    return video, removalx.VideoClassifier(model, layout="BTHWC"), model.shapley_values().numpy()


def _explain(recipe, cells, video, model, ssel, seed=0, batch_size=64):
    overrides = {
        "segmentation.name": "grid3d",
        "segmentation.cells": list(cells),
        "behavior.name": "logit",
        **{f"sample_selection.{k}": v for k, v in ssel.items()},
    }
    ex = removalx.Explainer.from_recipe(recipe, seed=seed, overrides=overrides, progress=False)
    return ex.explain(model, video, target=0, batch_size=batch_size)


def test_game_model_shapley_values_equal_brute_force():
    cells = (1, 2, 3)
    video, model, phi = _game(cells, seed=4)
    f = 6
    z = torch.tensor([[(r >> j) & 1 for j in range(f)] for r in range(2**f)], dtype=torch.float32)
    labels = (
        removalx.get_registry()
        .make("segmentation", "grid3d", {"cells": list(cells)})
        .segment(video, None)
        .labels
    )
    keep = z[:, labels.reshape(-1)].reshape(-1, *labels.shape)
    v = model(video[None] * keep[..., None])[:, 0].double()
    value = {tuple(row.int().tolist()): float(x) for row, x in zip(z, v)}
    brute = np.zeros(f)
    for row, x in value.items():
        s = sum(row)
        for i in range(f):
            if row[i] == 0:
                with_i = list(row)
                with_i[i] = 1
                w = math.factorial(s) * math.factorial(f - s - 1) / math.factorial(f)
                brute[i] += w * (value[tuple(with_i)] - x)
    np.testing.assert_allclose(phi, brute, atol=1e-5)


@pytest.mark.parametrize("ssel", [{"name": "exhaustive"}, {"name": "fixed", "n_samples": 254}])
def test_leverage_enumerated_is_exact(ssel):
    cells = (2, 2, 2)
    video, model, phi = _game(cells, seed=1)
    attr = _explain("leverage_shap3d", cells, video, model, ssel)
    assert attr.meta["plan"]["exhaustive"] is True
    np.testing.assert_allclose(attr.feature_values.numpy(), phi, atol=1e-5)


@pytest.mark.parametrize("recipe", ["leverage_shap3d", "kernelshap3d"])
def test_paired_sampling_is_exact_on_games_of_order_two(recipe):
    # Covert & Lee (2021): paired Kernel SHAP regression is exact for games of order <= 2
    cells = (2, 4, 4)
    video, model, phi = _game(cells, seed=2, max_order=2)
    attr = _explain(recipe, cells, video, model, {"name": "fixed", "n_samples": 150})
    assert attr.meta["plan"]["exhaustive"] is False and attr.meta["n_samples"] == 150
    np.testing.assert_allclose(attr.feature_values.numpy(), phi, atol=2e-4)


def test_leverage_sampled_error_on_higher_order_game():
    cells = (2, 4, 4)
    errs = []
    for seed in range(3):
        video, model, phi = _game(cells, seed=10 + seed)
        attr = _explain(
            "leverage_shap3d", cells, video, model, {"name": "fixed", "n_samples": 640}, seed=seed
        )
        errs.append(float(np.sqrt(((attr.feature_values.double().numpy() - phi) ** 2).mean())))
        # efficiency holds exactly whatever the sample
        assert attr.feature_values.double().sum().item() == pytest.approx(phi.sum(), abs=1e-4)
    scale = 1.0  # N(0, 1) weights: |phi| is of order 1
    assert 0 < np.mean(errs) < 0.2 * scale


@pytest.mark.parametrize(
    "m,budget,paired", [(32, 160, True), (32, 640, True), (9, 200, True), (12, 300, False)]
)
def test_size_counts_fill_the_budget_uniformly(m, budget, paired):
    counts = size_counts(m, budget, torch.Generator().manual_seed(0), paired)
    assert sum(counts) == budget or (paired and sum(counts) == budget - 1)
    sampled = [c for s, c in enumerate(counts, 1) if c < math.comb(m, s)]
    full = [s for s, c in enumerate(counts, 1) if c == math.comb(m, s)]
    if sampled:
        assert max(sampled) - min(sampled) <= 2  # equal share per size (rounding)
        assert all(math.comb(m, s) <= max(sampled) + 2 for s in full)  # only small sizes enumerated
    if paired:
        assert counts == counts[::-1]


def test_plan_weights_give_every_size_its_shapley_kernel_mass():
    from removalx_plugins.selection.leverage_shapley import LeverageShapley, LeverageShapleyConfig

    m = 20
    plan = LeverageShapley(LeverageShapleyConfig()).plan(m, 400, torch.Generator().manual_seed(0))
    sizes = plan.z.sum(1).long()
    assert len(torch.unique(plan.z, dim=0)) == plan.n_samples  # without replacement
    mass = torch.zeros(m + 1, dtype=torch.float64).index_add_(0, sizes, plan.weights.double())
    s = torch.arange(1, m, dtype=torch.float64)
    kernel = (m - 1) / (s * (m - s))
    torch.testing.assert_close(mass[1:m], kernel / kernel.sum(), atol=1e-6, rtol=1e-5)
    # paired: row 2k + 1 is the complement of row 2k
    torch.testing.assert_close(plan.z[1::2], 1 - plan.z[0::2])
