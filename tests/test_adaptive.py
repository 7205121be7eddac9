"""``adaptive`` sample selection: stops when converged, runs to max_samples otherwise.

Oracles: games with closed-form Shapley values and output variances
(:class:`removalx.testing.games.UnanimityGameModel`).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import removalx
from removalx.cli.explain import adaptive_line
from removalx.core.types import Attribution
from removalx.errors import ConfigError
from removalx.testing.games import UnanimityGameModel, random_unanimity_game

CELLS = (1, 4, 4)
F = math.prod(CELLS)


pytestmark = pytest.mark.usefixtures("rx_one_thread")  # tiny tensors: one torch thread


def _setup(max_order=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    video = 0.3 + 0.7 * torch.rand(4, 16, 16, 3, generator=g)
    labels = (
        removalx.get_registry()
        .make("segmentation", "grid3d", {"cells": list(CELLS)})
        .segment(video, torch.Generator())
        .labels
    )
    sets, w = random_unanimity_game(F, F, g, max_order=max_order)
    return video, labels, UnanimityGameModel(labels, video, sets, w)


class Noisy(nn.Module):
    """The game plus N(0, 1) noise on every call: no estimate converges to a small SE."""

    def __init__(self, game: nn.Module) -> None:
        super().__init__()
        self.game = game
        self.gen = torch.Generator().manual_seed(0)

    def forward(self, x):
        out = self.game(x)
        return out + torch.randn(out.shape, generator=self.gen) * torch.tensor([1.0, 0.0])


def _explain(recipe, model, video, batch_size=16, **ssel):
    overrides = {
        "segmentation.name": "grid3d",
        "segmentation.cells": list(CELLS),
        "behavior.name": "logit",
        "sample_selection.name": "adaptive",
        **{f"sample_selection.{k}": v for k, v in ssel.items()},
    }
    if recipe == "rise3d":
        overrides["summary.include_original"] = False
    ex = removalx.Explainer.from_recipe(recipe, seed=3, overrides=overrides, progress=False)
    return ex.explain(removalx.VideoClassifier(model, layout="BTHWC"), video, target=0, batch_size=batch_size)


@pytest.mark.parametrize("recipe", ["kernelshap3d", "leverage_shap3d"])
def test_kernel_shap_stops_at_once_on_an_additive_game(recipe):
    # paired Kernel SHAP is exact on additive games: the residuals and the SE are zero
    video, _, game = _setup(max_order=1)
    attr = _explain(recipe, game, video, tolerance=1e-4, round_size=40, max_samples=400)
    info = attr.meta["adaptive"]
    assert info["tolerance_met"] is True and info["rounds"] == 2
    assert attr.meta["n_samples"] == info["samples_used"] == 80
    assert attr.meta["n_forward"] == 80 + 2  # + full (clean) + empty
    assert info["max_se"] < 1e-4 and len(info["se"]) == F
    np.testing.assert_allclose(attr.feature_values.numpy(), game.shapley_values().numpy(), atol=1e-4)


def test_rise_se_matches_the_known_variance_and_stops_early():
    # y = sum_j a_j z_j with z_j ~ Bernoulli(1/2): Var(y | z_j = 1) = sum_{k != j} a_k^2 / 4
    video, _, game = _setup(max_order=1)
    a = game.shapley_values().numpy()
    attr = _explain("rise3d", game, video, tolerance=0.05, round_size=200, max_samples=4000)
    info = attr.meta["adaptive"]
    n_used = info["samples_used"]
    assert info["tolerance_met"] is True and n_used < 4000
    z = attr.meta["n_samples"]
    assert z == n_used
    expected = np.sqrt((np.sum(a**2) - a**2) / 4 / (n_used / 2))
    np.testing.assert_allclose(np.array(info["se"]), expected, rtol=0.25)
    assert max(info["se"]) <= 0.05
    # the values are the means when included: a_j + sum_{k != j} a_k / 2
    np.testing.assert_allclose(attr.feature_values.numpy(), a + (a.sum() - a) / 2, atol=4 * expected.max())


@pytest.mark.parametrize("recipe", ["kernelshap3d", "lime3d", "rise3d"])
def test_noisy_model_runs_to_max_samples(recipe):
    video, _, game = _setup()
    attr = _explain(recipe, Noisy(game), video, tolerance=1e-3, round_size=50, max_samples=300)
    info = attr.meta["adaptive"]
    assert info["tolerance_met"] is False
    assert info["samples_used"] == attr.meta["n_samples"] == 300 and info["rounds"] == 6
    assert info["max_se"] > 1e-3
    assert "NOT met" in adaptive_line(info)


@pytest.mark.parametrize("recipe", ["kernelshap3d", "lime3d", "rise3d"])
def test_same_seed_same_result_whatever_the_batch_size(recipe):
    video, _, game = _setup(seed=1)
    runs = [
        _explain(recipe, game, video, batch_size=bs, tolerance=0.05, round_size=60, max_samples=360)
        for bs in (7, 64)
    ]
    a, b = (r.meta["adaptive"] for r in runs)
    assert a["samples_used"] == b["samples_used"] and a["tolerance_met"] == b["tolerance_met"]
    assert a["samples_used"] % 60 == 0
    torch.testing.assert_close(runs[0].feature_values, runs[1].feature_values, atol=1e-6, rtol=0)
    np.testing.assert_allclose(a["se"], b["se"], atol=1e-6)


def test_top_k_criterion_checks_only_the_top_features():
    from removalx_plugins.selection.adaptive import Adaptive, AdaptiveConfig

    values = torch.tensor([5.0, -4.0, 0.1, 0.0])
    se = torch.tensor([0.01, 0.02, 9.0, 9.0])
    assert Adaptive(AdaptiveConfig(tolerance=0.05, criterion="top_k", top_k=2)).converged(values, se)
    assert not Adaptive(AdaptiveConfig(tolerance=0.05, criterion="all")).converged(values, se)
    assert not Adaptive(AdaptiveConfig(tolerance=0.015, criterion="top_k", top_k=2)).converged(values, se)


def test_summary_without_error_estimate_is_a_config_error():
    video, _, game = _setup()
    overrides = {
        "segmentation.name": "grid3d",
        "segmentation.cells": list(CELLS),
        "feature_selection.name": "bernoulli",
        "summary.name": "difference",
        "sample_selection.name": "adaptive",
    }
    ex = removalx.Explainer.from_recipe("kernelshap3d", overrides=overrides, progress=False)
    with pytest.raises(ConfigError, match="standard"):
        ex.explain(removalx.VideoClassifier(game, layout="BTHWC"), video, target=0)


@pytest.mark.parametrize(
    "tolerance,used,met", [(1e6, 40, "met"), (1e-9, 60, "NOT met (stopped at max_samples)")]
)
def test_cli_explain_prints_the_adaptive_line(tmp_path, capsys, tolerance, used, met):
    from removalx.cli import EXIT_OK, main
    from removalx.testing import tiny_video
    from removalx.video.io import write_gif

    gif = write_gif((tiny_video(frames=4, size=16) * 255).round().to(torch.uint8), tmp_path / "c.gif", fps=4)
    (tmp_path / "m.py").write_text(
        "from removalx.testing import ToyClassifier\n\ndef make():\n    return ToyClassifier(n_classes=3)\n"
    )
    sets = {
        "segmentation.name": "grid3d",
        "segmentation.cells": "[2,2,2]",
        "sample_selection.name": "adaptive",
        "sample_selection.tolerance": tolerance,
        "sample_selection.round_size": 20,
        "sample_selection.max_samples": 60,
    }
    args = ["explain", str(gif), "--model", f"python:{tmp_path / 'm.py'}:make", "--frames", "4"]
    args += ["--recipe", "kernelshap3d", "--format", "png", "--out", str(tmp_path / "out")]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    assert main(args) == EXIT_OK
    lines = [ln.strip() for ln in capsys.readouterr().out.splitlines()]
    info = json.loads((tmp_path / "out" / "summary.json").read_text())["adaptive"]
    assert info["samples_used"] == used and info["max_samples"] == 60
    expected = (
        f"adaptive sampling: {used} of at most 60 samples in {used // 20} rounds; largest standard error "
    )
    line = next(ln for ln in lines if ln.startswith("adaptive sampling:"))
    assert line.startswith(expected) and line.endswith(f"(all), tolerance {tolerance:.3g} {met}")
    assert line == adaptive_line(info)
    saved = Attribution.load(tmp_path / "out" / "attribution.npz").meta["adaptive"]
    assert len(saved["se"]) == 8 and max(saved["se"]) == pytest.approx(info["max_se"])


@pytest.mark.parametrize("selector,n", [("shapley_kernel", 400), ("leverage_shapley", 1000)])
def test_streamed_plan_enumerates_the_smallest_sizes_first(selector, n):
    from removalx_plugins.machinery.streamed_pairs import complement_pairs_of_size

    fsel = removalx.get_registry().make("feature_selection", selector, {})
    m = 16
    # what the fixed plan of a quarter of the budget enumerates: sizes 1 and 15
    plan = fsel.streamed_plan(m, n, torch.Generator().manual_seed(0))
    e = plan.meta["n_enumerated"]
    assert plan.meta["enumerated_sizes"] == [1] and e == 2 * m
    z, w = plan.rows(torch.arange(plan.n_samples))
    torch.testing.assert_close(z[:e], complement_pairs_of_size(m, 1))
    # the head carries exactly the kernel mass of sizes 1 and F - 1; the rest is sampled
    kernel = torch.tensor([(m - 1) / (s * (m - s)) for s in range(1, m)], dtype=torch.float64)
    kernel /= kernel.sum()
    assert float(w[:e].double().sum()) == pytest.approx(float(kernel[0] + kernel[-1]), rel=1e-6)
    assert plan.meta["sampled_mass"] == pytest.approx(1 - float(kernel[0] + kernel[-1]))
    sizes = z[e:].sum(1)
    assert ((sizes >= 2) & (sizes <= m - 2)).all()  # enumerated sizes are not drawn again
    torch.testing.assert_close(z[e::2], 1 - z[e + 1 :: 2])  # complement pairs
    assert float(w[e:].double().mean()) == pytest.approx(1.0, abs=0.15)  # sampled weights average 1
    chunked = torch.cat([c.z for c in plan.chunks(37)])
    torch.testing.assert_close(chunked, z)  # rows do not depend on the chunk size


@pytest.mark.parametrize("recipe", ["kernelshap3d", "leverage_shap3d"])
def test_enumerating_every_coalition_stops_with_exact_values_and_zero_se(recipe):
    g = torch.Generator().manual_seed(4)
    video = 0.3 + 0.7 * torch.rand(2, 8, 8, 3, generator=g)
    cells = [1, 2, 4]  # 8 features: 254 proper coalitions, enumerated at a quarter of 1200
    labels = removalx.get_registry().make("segmentation", "grid3d", {"cells": cells}).segment(video, g).labels
    sets, w = random_unanimity_game(8, 8, g, max_order=4)
    game = UnanimityGameModel(labels, video, sets, w)
    overrides = {
        "segmentation.name": "grid3d",
        "segmentation.cells": cells,
        "behavior.name": "logit",
        "sample_selection.name": "adaptive",
        "sample_selection.tolerance": 1e-9,
        "sample_selection.round_size": 50,
        "sample_selection.max_samples": 1200,
    }
    ex = removalx.Explainer.from_recipe(recipe, seed=0, overrides=overrides, progress=False)
    attr = ex.explain(removalx.VideoClassifier(game, layout="BTHWC"), video, target=0)
    info = attr.meta["adaptive"]
    assert info["samples_used"] == info["max_samples"] == 254 and info["tolerance_met"] is True
    assert info["max_se"] == 0.0
    np.testing.assert_allclose(attr.feature_values.numpy(), game.shapley_values().numpy(), atol=1e-5)


@pytest.mark.parametrize("recipe", ["kernelshap3d", "leverage_shap3d", "lime3d", "rise3d"])
def test_se_matches_the_spread_over_seeds(recipe):
    # an order-4 game (Kernel SHAP: enumerated sizes 1 and F-1 plus sampled pairs); the
    # reported SE must match the standard deviation of the estimates over independent seeds
    video, _, game = _setup(max_order=4, seed=2)
    est, ses = [], []
    for seed in range(40):
        overrides = {
            "segmentation.name": "grid3d",
            "segmentation.cells": list(CELLS),
            "behavior.name": "logit",
            "sample_selection.name": "adaptive",
            "sample_selection.tolerance": 1e-9,
            "sample_selection.round_size": 100,
            "sample_selection.max_samples": 1000,
        }
        ex = removalx.Explainer.from_recipe(recipe, seed=seed, overrides=overrides, progress=False)
        attr = ex.explain(removalx.VideoClassifier(game, layout="BTHWC"), video, target=0, batch_size=500)
        if "shap" in recipe:
            assert attr.meta["plan"]["n_enumerated"] == 2 * F
        est.append(attr.feature_values.double().numpy())
        ses.append(attr.meta["adaptive"]["se"])
    spread = np.std(np.array(est), axis=0, ddof=1)
    ratio = np.mean(ses, axis=0).mean() / spread.mean()
    assert 0.7 < ratio < 1.4, ratio


@pytest.mark.parametrize("recipe", ["kernelshap3d", "lime3d", "rise3d"])
def test_checked_values_are_the_attribution(recipe, monkeypatch):
    # the values the stopping rule sees after the last round are the ones returned
    from removalx_plugins.selection.adaptive import Adaptive

    seen = []
    monkeypatch.setattr(Adaptive, "converged", lambda self, v, se: seen.append(v.clone()) or False)
    video, _, game = _setup(seed=3)
    overrides = {
        "segmentation.name": "grid3d",
        "segmentation.cells": list(CELLS),
        "behavior.name": "logit",
        "sample_selection.name": "adaptive",
        "sample_selection.round_size": 50,
        "sample_selection.max_samples": 200,
    }  # the recipes' own summaries (rise3d adds the clean clip as a sample)
    ex = removalx.Explainer.from_recipe(recipe, seed=0, overrides=overrides, progress=False)
    attr = ex.explain(removalx.VideoClassifier(game, layout="BTHWC"), video, target=0)
    assert len(seen) == 3  # after rounds 2, 3 and 4
    torch.testing.assert_close(seen[-1].float(), attr.feature_values, atol=1e-6, rtol=1e-6)
