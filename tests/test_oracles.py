"""Pipeline results against independent oracles.

Every expected value here is computed outside the pipeline: perturbed clips are built
by hand from the feature labels (black fill), the model is called directly, and the
attribution is computed from its definition (brute-force Shapley values, LOCO,
univariate differences, RISE sums) or by a reference library (shap, lime, Captum).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import removalx
from removalx.core.types import SamplePlan
from removalx.testing import LinearVideoModel, ToyClassifier, tiny_video

T, S = 4, 8  # tiny clip: 4 frames of 8 x 8


@pytest.fixture(scope="module")
def video() -> torch.Tensor:
    return tiny_video(frames=T, size=S, seed=1)


@pytest.fixture(scope="module")
def toy() -> removalx.VideoClassifier:
    return removalx.VideoClassifier(ToyClassifier(n_classes=3, seed=2))


def _grid_recipe(cells, fsel, ssel, summary, behavior="probability", **extra):
    r = {
        "name": "oracle",
        "segmentation": {"name": "grid3d", "cells": list(cells)},
        "feature_selection": fsel,
        "sample_selection": ssel,
        "removal": {"name": "constant", "value": 0.0},
        "behavior": {"name": behavior},
        "summary": summary,
    }
    r.update(extra)
    return r


def _perturb(video: torch.Tensor, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Black out removed features: ``z float[N, F]`` -> clips ``[N, T, H, W, C]``."""
    keep = (z[:, labels.reshape(-1)] > 0.5).reshape(z.shape[0], *labels.shape)
    return torch.where(keep[..., None], video[None], torch.zeros(()))


def _probs(model, clips: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(clips).softmax(-1).double()


def _all_coalitions(f: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=f)))


def _brute_force_shapley(value: dict[tuple[int, ...], float], f: int) -> np.ndarray:
    """Exact Shapley values from the definition, v given on every coalition."""
    phi = np.zeros(f)
    for i in range(f):
        others = [j for j in range(f) if j != i]
        for r in range(f):
            w = math.factorial(r) * math.factorial(f - r - 1) / math.factorial(f)
            for sub in itertools.combinations(others, r):
                with_i = tuple(sorted((*sub, i)))
                phi[i] += w * (value[with_i] - value[tuple(sub)])
    return phi


def _coalition_values(model, video, labels, target):
    f = int(labels.max()) + 1
    z = _all_coalitions(f)
    y = _probs(model, _perturb(video, labels, z))[:, target].numpy()
    return {tuple(np.flatnonzero(row.numpy()).tolist()): float(v) for row, v in zip(z, y)}, z, y


# -- Kernel SHAP ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ssel",
    [{"name": "exhaustive"}, {"name": "fixed", "n_samples": 254}, {"name": "fixed", "n_samples": 400}],
    ids=["exhaustive", "fixed-2^F-2", "fixed-more"],
)
def test_kernel_shap_exact_equals_brute_force_shapley(video, toy, ssel):
    recipe = _grid_recipe([2, 2, 2], {"name": "shapley_kernel"}, ssel, {"name": "shapley"})
    attr = removalx.Explainer.from_recipe(recipe, seed=0, progress=False).explain(toy, video, target=1)
    labels = attr.space.labels
    f = int(labels.max()) + 1
    assert f == 8 and attr.feature_values.shape == (8,)
    value, _, _ = _coalition_values(toy, video, labels, target=1)
    phi = _brute_force_shapley(value, f)
    # the model is not additive: the Shapley values differ from the univariate effects
    univariate = np.array([value[(i,)] - value[()] for i in range(f)])
    assert np.abs(phi - univariate).max() > 1e-4
    np.testing.assert_allclose(attr.feature_values.numpy(), phi, atol=1e-5, rtol=0)
    # efficiency: sum = f(full) - f(empty), against the pipeline's base cases and the oracle's
    full, empty = value[tuple(range(f))], value[()]
    assert attr.feature_values.double().sum().item() == pytest.approx(full - empty, abs=1e-5)
    assert attr.meta["base"]["full"] == pytest.approx(full, abs=1e-6)
    assert attr.meta["base"]["empty"] == pytest.approx(empty, abs=1e-6)
    # pixel values are the feature values spread over the partition
    torch.testing.assert_close(attr.values, attr.feature_values[labels], atol=0, rtol=0)


@pytest.mark.parametrize("cells,target", [((2, 1, 2), 0), ((1, 2, 3), 2)])
def test_kernel_shap_exact_equals_shap_kernel_explainer(video, toy, cells, target):
    # shap.explainers.Exact gives the same numbers but JIT-compiles for ~20 s: too slow here
    shap = pytest.importorskip("shap")
    recipe = _grid_recipe(cells, {"name": "shapley_kernel"}, {"name": "exhaustive"}, {"name": "shapley"})
    attr = removalx.Explainer.from_recipe(recipe, seed=0, progress=False).explain(toy, video, target=target)
    labels = attr.space.labels
    f = int(labels.max()) + 1
    assert f == math.prod(cells)

    def fz(z: np.ndarray) -> np.ndarray:
        zz = torch.as_tensor(np.asarray(z), dtype=torch.float32).reshape(-1, f)
        return _probs(toy, _perturb(video, labels, zz))[:, target].numpy()

    # background = all features removed (black), explained point = all kept
    ke = shap.KernelExplainer(fz, np.zeros((1, f)))
    sv = np.asarray(ke.shap_values(np.ones((1, f)), nsamples=2**f, silent=True)).reshape(-1)
    assert float(np.ravel(ke.expected_value)[0]) == pytest.approx(attr.meta["base"]["empty"], abs=1e-6)
    np.testing.assert_allclose(attr.feature_values.numpy(), sv, atol=1e-5, rtol=0)


# -- additive model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def linear_setup(video):
    g = torch.Generator().manual_seed(5)
    k = 3
    weight = torch.randn(k, T, S, S, 3, generator=g) * 0.1
    bias = torch.randn(k, generator=g)
    model = removalx.VideoClassifier(LinearVideoModel(weight, bias), layout="BTHWC")
    return model, weight


def _region_sums(weight, video, labels, target, fill=0.0):
    contrib = (weight[target].double() * (video.double() - fill)).sum(-1)  # [T, H, W]
    f = int(labels.max()) + 1
    return torch.zeros(f, dtype=torch.float64).index_add_(0, labels.reshape(-1), contrib.reshape(-1))


def test_shapley_sampled_recovers_additive_model(video, linear_setup):
    model, weight = linear_setup
    recipe = _grid_recipe(
        [1, 3, 4],
        {"name": "shapley_kernel"},
        {"name": "fixed", "n_samples": 200},
        {"name": "shapley"},
        "logit",
    )
    attr = removalx.Explainer.from_recipe(recipe, seed=3, progress=False).explain(model, video, target=1)
    labels = attr.space.labels
    assert attr.space.n_features == 12
    assert attr.meta["n_samples"] <= 200 < 2**12 - 2  # sampled, not enumerated
    expected = _region_sums(weight, video, labels, 1)
    assert expected.abs().max() > 0.05
    np.testing.assert_allclose(attr.feature_values.double().numpy(), expected.numpy(), atol=2e-5, rtol=0)


@pytest.mark.parametrize("fill", [0.0, 0.5])
def test_linear_without_penalty_recovers_additive_model(video, linear_setup, fill):
    model, weight = linear_setup
    recipe = _grid_recipe(
        [1, 3, 4],
        {"name": "bernoulli", "p": 0.5},
        {"name": "fixed", "n_samples": 200},
        {"name": "linear", "alpha": 0.0, "kernel_width": 100.0},
        "logit",
    )
    recipe["removal"] = {"name": "constant", "value": fill}
    attr = removalx.Explainer.from_recipe(recipe, seed=4, progress=False).explain(model, video, target=2)
    expected = _region_sums(weight, video, attr.space.labels, 2, fill=fill)
    np.testing.assert_allclose(attr.feature_values.double().numpy(), expected.numpy(), atol=2e-5, rtol=0)


# -- LIME ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel_width", [0.25, 0.6])
def test_linear_equals_lime_base(video, toy, kernel_width):
    pytest.importorskip("lime")
    from lime.lime_base import LimeBase
    from sklearn.metrics import pairwise_distances

    seed, n, target = 7, 60, 1
    summary = {"name": "linear"} if kernel_width == 0.25 else {"name": "linear", "kernel_width": kernel_width}
    recipe = _grid_recipe(
        [2, 2, 3], {"name": "bernoulli", "p": 0.5}, {"name": "fixed", "n_samples": n}, summary
    )
    attr = removalx.Explainer.from_recipe(recipe, seed=seed, progress=False).explain(
        toy, video, target=target
    )
    labels = attr.space.labels
    f = attr.space.n_features
    assert f == 12

    # grid3d draws nothing, so the plan comes from a generator seeded with the recipe seed
    fsel = removalx.get_registry().make("feature_selection", "bernoulli", {"p": 0.5})
    plan = fsel.plan(f, n, torch.Generator().manual_seed(seed))
    assert plan.digest() == attr.meta["plan_digest"]
    z = plan.z

    data = np.vstack([np.ones((1, f)), z.numpy()])  # LIME's first row: the original
    probs = _probs(toy, _perturb(video, labels, torch.as_tensor(data, dtype=torch.float32))).numpy()
    distances = pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()

    def kernel_fn(d):
        return np.sqrt(np.exp(-(d**2) / kernel_width**2))

    base = LimeBase(kernel_fn, random_state=0)
    intercept, local_exp, score, _ = base.explain_instance_with_data(
        data, probs, distances, label=target, num_features=f, feature_selection="none"
    )
    coef = np.zeros(f)
    for j, c in local_exp:
        coef[j] = c
    assert np.abs(coef).max() > 1e-3
    np.testing.assert_allclose(attr.feature_values.numpy(), coef, rtol=1e-4, atol=1e-6)
    # LIME's intercept and weighted R^2 ("score") come out of the same streamed statistics
    assert attr.meta["summary"]["intercept"] == pytest.approx(intercept, rel=1e-4, abs=1e-6)
    assert attr.meta["summary"]["r2"] == pytest.approx(score, rel=1e-4, abs=1e-6)


# -- occlusion vs Captum --------------------------------------------------------------------


@pytest.mark.parametrize(
    "window,stride",
    [((2, 4, 4), (2, 4, 4)), ((3, 5, 5), (2, 2, 2)), ((2, 4, 4), (1, 3, 3))],
    ids=["divides", "ragged", "overlapping-ragged"],
)
def test_occlusion_difference_equals_captum(video, toy, window, stride):
    pytest.importorskip("captum")
    from captum.attr import Occlusion

    target = 0
    ex = removalx.Explainer.from_recipe(
        "occlusion3d",
        seed=0,
        overrides={
            "segmentation.window": list(window),
            "segmentation.stride": list(stride),
            "summary.name": "difference",
        },
        progress=False,
    )
    attr = ex.explain(toy, video, target=target)

    def forward_fn(x):
        return toy(x).softmax(-1)

    c = video.shape[-1]
    with torch.no_grad():
        ref = Occlusion(forward_fn).attribute(
            video[None],
            sliding_window_shapes=(*window, c),
            strides=(*stride, c),
            baselines=0,
            target=target,
        )[0]
    torch.testing.assert_close(ref[..., 0], ref[..., -1])
    assert ref.abs().max() > 1e-4
    torch.testing.assert_close(attr.values, ref[..., 0].float(), atol=1e-6, rtol=1e-5)


# -- LOCO / univariate --------------------------------------------------------------------


def test_loco_equals_definition(video, toy):
    attr = removalx.Explainer.from_recipe(
        "loco_lv",
        seed=0,
        overrides={"segmentation.name": "grid3d", "segmentation.cells": [2, 2, 2]},
        progress=False,
    ).explain(toy, video, target=2)
    labels = attr.space.labels
    f = 8
    z = torch.cat([torch.ones(1, f), 1.0 - torch.eye(f)])
    y = _probs(toy, _perturb(video, labels, z))[:, 2]
    expected = y[0] - y[1:]
    assert expected.abs().max() > 1e-4
    np.testing.assert_allclose(attr.feature_values.double().numpy(), expected.numpy(), atol=1e-6, rtol=0)
    assert attr.meta["n_forward"] == 1 + f  # clean clip (also the full base case), one per feature


def test_univariate_equals_definition(video, toy):
    attr = removalx.Explainer.from_recipe(
        "univariate_lv",
        seed=0,
        overrides={"segmentation.name": "grid3d", "segmentation.cells": [2, 2, 2]},
        progress=False,
    ).explain(toy, video, target=0)
    labels = attr.space.labels
    f = 8
    z = torch.cat([torch.zeros(1, f), torch.eye(f)])
    y = _probs(toy, _perturb(video, labels, z))[:, 0]
    expected = y[1:] - y[0]
    assert expected.abs().max() > 1e-4
    np.testing.assert_allclose(attr.feature_values.double().numpy(), expected.numpy(), atol=1e-6, rtol=0)
    assert attr.meta["base"]["empty"] == pytest.approx(float(y[0]), abs=1e-6)


# -- RISE ---------------------------------------------------------------------------------


def test_rise_equals_weighted_mask_sum(video, toy):
    seed, n, target = 11, 40, 1
    attr = removalx.Explainer.from_recipe(
        "rise3d",
        seed=seed,
        overrides={
            "segmentation.cells": [2, 2, 2],
            "segmentation.random_shift": False,
            "sample_selection.n_samples": n,
            "summary.normalize": "p",  # Petsiuk et al.'s 1 / (N p); the recipe's default is coverage
            "summary.include_original": False,
        },
        progress=False,
    ).explain(toy, video, target=target)
    space = attr.space
    f = space.n_features
    assert f == 8
    gen = torch.Generator().manual_seed(seed)
    torch.randint(0, 2**31 - 1, (1,), generator=gen)  # soft_grid draws its seed first
    plan = removalx.get_registry().make("feature_selection", "bernoulli", {"p": 0.5}).plan(f, n, gen)
    assert plan.digest() == attr.meta["plan_digest"]

    masks = space.render(plan.z, torch.arange(n)).double()  # [N, T, H, W]
    assert masks.shape == (n, T, S, S)
    assert masks.min() >= 0 and masks.max() <= 1
    assert ((masks > 0) & (masks < 1)).any()  # soft masks
    clips = video[None].double() * masks[..., None]  # black fill: keep * video
    y = _probs(toy, clips.float())[:, target]
    expected = torch.einsum("n,nthw->thw", y, masks) / (n * 0.5)
    assert expected.std() > 1e-4
    torch.testing.assert_close(attr.values.double(), expected, atol=1e-5, rtol=1e-5)
    # feature values: the same sum on the coalitions
    fexp = (y[:, None] * plan.z.double()).sum(0) / (n * 0.5)
    torch.testing.assert_close(attr.feature_values.double(), fexp, atol=1e-5, rtol=1e-5)


def test_sample_plan_digest_distinguishes_plans():
    a = SamplePlan(torch.eye(3))
    b = SamplePlan(1 - torch.eye(3))
    assert a.digest() != b.digest() and a.digest() == SamplePlan(torch.eye(3)).digest()
