"""Faithfulness correlation, sensitivity-n, infidelity, IROF: hand oracles and Quantus 0.6.0 oracles.

Quantus cases are image-shaped (one frame, one channel, a 2D CNN) so that a pixel is one
feature in both libraries; Quantus' random draws are replaced by ours (monkeypatched
``np.random.choice``) or configured to be deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from removalx.core.classifier import VideoClassifier
from removalx.metrics.faithfulness import (
    _random_subsets,
    faithfulness_correlation,
    feature_labels,
    infidelity,
    irof,
    sensitivity_n,
)
from removalx.testing.data import LinearVideoModel, ToyClassifier, tiny_video

H = W = 8


def _net2d(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)  # test-only model initialisation
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * H * W, 4))
    return net.eval()


def _as_video_model(net: nn.Module) -> VideoClassifier:
    return VideoClassifier(lambda x: net(x[:, 0].permute(0, 3, 1, 2)), layout="BTHWC")


def _image(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, H, W, 1, generator=g), torch.randn(1, H, W, generator=g)


def _linear(c: int = 1, seed: int = 0) -> tuple[VideoClassifier, torch.Tensor, torch.Tensor]:
    """A logit-linear model, a clip and Gradient x Input of class 0 (summed over channels)."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(2, 2, 6, 6, c, generator=g)
    video = torch.rand(2, 6, 6, c, generator=g)
    model = VideoClassifier(LinearVideoModel(weight), layout="BTHWC")
    return model, video, (weight[0] * video).sum(-1)


# -- hand oracles -------------------------------------------------------------------------------------


def test_gradient_x_input_of_a_linear_model_correlates_perfectly() -> None:
    model, video, gxi = _linear(c=3)
    fc = faithfulness_correlation(model, video, gxi, 0, subset_size=10, n_runs=30, behavior="logit")
    assert fc["value"] == pytest.approx(1.0, abs=1e-9)
    assert torch.allclose(fc["att_sums"], fc["drops"], atol=1e-4)  # drop = sum of G x I over S, exactly
    assert fc["n_forward"] == 31
    sn = sensitivity_n(model, video, gxi, 0, n_subsets=20, behavior="logit")
    assert all(c == pytest.approx(1.0, abs=1e-9) for c in sn["curve"])
    assert sn["value"] == pytest.approx(1.0, abs=1e-9)


def test_a_random_map_does_not_correlate_and_the_sign_flips() -> None:
    model, video, gxi = _linear(c=3)
    assert faithfulness_correlation(model, video, -gxi, 0, subset_size=10, n_runs=30)[
        "value"
    ] == pytest.approx(-1.0)
    rnd = torch.randn(gxi.shape, generator=torch.Generator().manual_seed(5))
    assert abs(faithfulness_correlation(model, video, rnd, 0, subset_size=10, n_runs=60)["value"]) < 0.6


def test_infidelity_of_the_exact_attribution_is_zero() -> None:
    """Gaussian (real-valued I = x - x0): the gradient is exact; square (binary I): Gradient x Input."""
    model, video, gxi = _linear(c=1)
    grad = model.module.weight[0, ..., 0].detach()  # type: ignore[attr-defined]  # d logit_0 / d x
    out = infidelity(model, video, grad, 0, perturbation="gaussian", n_samples=40, scale=False)
    assert out["value"] == pytest.approx(0.0, abs=1e-8)
    out = infidelity(model, video, gxi, 0, perturbation="square", n_samples=40, scale=False)
    assert out["value"] == pytest.approx(0.0, abs=1e-8)
    assert (
        infidelity(model, video, gxi, 0, perturbation="gaussian", n_samples=40, scale=False)["value"] > 1e-3
    )
    # a halved map is perfect after the optimal scaling (beta = 2), and not without it
    scaled = infidelity(model, video, gxi / 2, 0, perturbation="square", n_samples=40)
    assert scaled["beta"] == pytest.approx(2.0, rel=1e-6) and scaled["value"] == pytest.approx(0.0, abs=1e-8)
    assert (
        infidelity(model, video, gxi / 2, 0, perturbation="square", n_samples=40, scale=False)["value"] > 1e-3
    )


def test_infidelity_hand_computed_on_two_perturbations() -> None:
    model, video, gxi = _linear(c=1)
    imp = torch.zeros_like(gxi)
    imp[0, 0, 0] = 1.0  # one pixel carries all the attribution
    a = video.clone()
    a[0, 0, 0] = 0.0
    b = video.clone()
    b[1] = 0.0
    full = float(model(video[None])[0, 0])
    dy = torch.tensor([full - float(model(a[None])[0, 0]), full - float(model(b[None])[0, 0])]).double()
    s = torch.tensor([float(video[0, 0, 0, 0]), 0.0]).double()
    out = infidelity(model, video, imp, 0, perturbed=torch.stack([a, b]), scale=False)
    assert out["value"] == pytest.approx(float(((dy - s) ** 2).mean()), rel=1e-5)


def test_irof_hand_oracle_on_two_segments() -> None:
    model, video, _ = _linear(c=1)
    labels = torch.zeros(2, 6, 6, dtype=torch.long)
    labels[1] = 1
    imp = torch.zeros(2, 6, 6)
    imp[1] = 1.0  # segment 1 first
    out = irof(model, video, imp, 0, labels=labels, fill="black", behavior="logit")
    f = lambda v: float(model(v[None])[0, 0])  # noqa: E731
    y1 = f(torch.cat([video[:1], torch.zeros_like(video[1:])])) / f(video)
    y2 = f(torch.zeros_like(video)) / f(video)
    area = 0.5 * ((1 + y1) / 2 + (y1 + y2) / 2)
    assert out["value"] == pytest.approx(1 - area, rel=1e-5)
    assert out["n_segments"] == 2 and out["n_forward"] == 3


def test_sensitivity_n_equals_faithfulness_correlation_at_each_n() -> None:
    model, video = VideoClassifier(ToyClassifier(3)), tiny_video(2, 8)
    imp = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(1))
    sn = sensitivity_n(model, video, imp, 1, fractions=(0.1, 0.5), n_subsets=12, seed=3)
    gen = torch.Generator().manual_seed(3)
    sets = [_random_subsets(128, n, 12, gen) for n in sn["n"]]
    for n, s, c in zip(sn["n"], sets, sn["curve"], strict=True):
        fc = faithfulness_correlation(model, video, imp, 1, subset_size=n, subsets=s)
        assert fc["value"] == pytest.approx(c, abs=1e-12)


def test_seeded_and_units() -> None:
    model, video = VideoClassifier(ToyClassifier(3)), tiny_video(2, 8)
    imp = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(1))
    one = faithfulness_correlation(
        model, video, imp, 1, subset_size=5, n_runs=10, unit="patch", patch=2, seed=4
    )
    two = faithfulness_correlation(
        model, video, imp, 1, subset_size=5, n_runs=10, unit="patch", patch=2, seed=4
    )
    assert one["value"] == two["value"] and one["n_features"] == 32
    assert (
        infidelity(model, video, imp, 1, n_samples=8, seed=2)["value"]
        == infidelity(model, video, imp, 1, n_samples=8, seed=2)["value"]
    )
    assert int(feature_labels(video, "pixel").max()) == 127


def test_bad_inputs_raise_config_errors() -> None:
    from removalx.errors import ConfigError

    model, video, gxi = _linear()
    with pytest.raises(ConfigError, match="subset size"):
        faithfulness_correlation(model, video, gxi, 0, subset_size=10_000)
    with pytest.raises(ConfigError, match="attribution has shape"):
        infidelity(model, video, gxi[:1], 0, n_samples=4)
    with pytest.raises(ConfigError, match="perturbation"):
        infidelity(model, video, gxi, 0, perturbation="blob", n_samples=4)  # type: ignore[arg-type]


# -- Quantus oracles ----------------------------------------------------------------------------------


def test_faithfulness_correlation_matches_quantus_with_the_same_subsets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quantus = pytest.importorskip("quantus")
    net = _net2d()
    video, imp = _image()
    sets = _random_subsets(H * W, 9, 20, torch.Generator().manual_seed(7))
    ours = faithfulness_correlation(_as_video_model(net), video, imp, 2, subsets=sets, behavior="logit")
    draws = iter([np.flatnonzero(row.numpy()) for row in sets])
    monkeypatch.setattr(np.random, "choice", lambda *a, **k: next(draws))
    metric = quantus.FaithfulnessCorrelation(
        nr_runs=20, subset_size=9, perturb_baseline=0.0, normalise=False, disable_warnings=True
    )
    x = video[..., 0].numpy()[:, None]  # [1, 1, H, W]
    theirs = metric(model=net, x_batch=x, y_batch=np.array([2]), a_batch=imp.numpy()[:, None], device="cpu")
    assert ours["value"] == pytest.approx(float(np.ravel(theirs)[0]), abs=1e-6)


def test_infidelity_matches_quantus_on_its_block_perturbations() -> None:
    """Quantus 0.6.0 removes ``patch x patch`` blocks cumulatively in raster order (no random draw)."""
    quantus = pytest.importorskip("quantus")
    net = _net2d(1)
    video, imp = _image(1)
    p = 4
    clips, cur = [], video.clone()
    for by in range(H // p):
        for bx in range(W // p):
            cur = cur.clone()
            cur[0, by * p : (by + 1) * p, bx * p : (bx + 1) * p] = 0.0
            clips.append(cur)
    ours = infidelity(_as_video_model(net), video, imp, 1, perturbed=torch.stack(clips), scale=False)
    metric = quantus.Infidelity(
        perturb_patch_sizes=[p], n_perturb_samples=1, perturb_baseline=0.0, disable_warnings=True
    )
    x = video[..., 0].numpy()[:, None]
    theirs = metric(model=net, x_batch=x, y_batch=np.array([1]), a_batch=imp.numpy()[:, None], device="cpu")
    assert ours["value"] == pytest.approx(float(np.ravel(theirs)[0]), rel=1e-6, abs=1e-6)


def test_irof_matches_quantus_up_to_its_unnormalised_area(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quantus returns ``N - trapezoid(y_1 .. y_N)`` (unit spacing, no ``y_0 = 1``); removalx the area
    over ``k / N`` from ``y_0 = 1``: ``1 - ((y_0 + y_1) / 2 + trapezoid(y_1 .. y_N)) / N``."""
    quantus = pytest.importorskip("quantus")
    from skimage.segmentation import slic

    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)  # Quantus 0.6.0 calls np.trapz (NumPy < 2)
    net = _net2d(2)
    video, imp = _image(2)
    labels = torch.from_numpy(slic(video[0].double().numpy(), start_label=0)).long()[None]
    ours = irof(_as_video_model(net), video, imp, 3, labels=labels, fill="black", behavior="probability")
    metric = quantus.IROF(
        perturb_baseline=0.0, normalise=False, disable_warnings=True, return_aggregate=False
    )
    x = video[..., 0].numpy()[:, None]
    theirs = float(
        np.ravel(metric(model=net, x_batch=x, y_batch=np.array([3]), a_batch=imp.numpy()[:, None]))[0]
    )
    n, y = ours["n_segments"], ours["curve"]["y"]
    assert n > 2
    converted = 1 - ((y[0] + y[1]) / 2 + (n - theirs)) / n
    assert ours["value"] == pytest.approx(converted, abs=1e-5)  # the curve is rounded to 6 decimals
