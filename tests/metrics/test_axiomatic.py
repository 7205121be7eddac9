"""Completeness and input invariance: hand oracles and Quantus oracles (image-shaped case)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from removalx.core.classifier import VideoClassifier
from removalx.core.types import Attribution
from removalx.errors import ConfigError
from removalx.metrics.axiomatic import completeness, input_invariance, shifted_model


def _explain(times_input: bool):
    def explain(model, video, target):
        x = video.detach().clone().float().requires_grad_(True)
        with torch.enable_grad():
            model(x[None])[0, target].backward()
        g = x.grad * x if times_input else x.grad
        return Attribution(values=g.sum(-1).detach(), target=target)

    return explain


grad, gxi = _explain(False), _explain(True)


class Linear(nn.Module):
    """f(x) = W x + b with small integer weights: sums are exact in float32."""

    def __init__(self, n_in: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n_in, 3)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randint(-3, 4, (3, n_in), generator=g).float())
            self.fc.bias.copy_(torch.tensor([1.0, -2.0, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def _linear():
    g = torch.Generator().manual_seed(1)
    video = torch.randint(0, 3, (2, 3, 4, 3), generator=g).float() / 2  # 0, 0.5, 1: exact
    return VideoClassifier(Linear(video.numel()), layout="BCTHW"), video


def test_completeness_by_hand_on_a_linear_model():
    clf, video = _linear()
    out = completeness(clf, video, gxi(clf, video, 2).importance(), 2)
    w = clf.module.fc.weight[2].detach().reshape(3, 2, 3, 4).permute(1, 2, 3, 0)
    assert out["delta"] == pytest.approx(float((w * video).sum().detach()), abs=0)  # f(x) - f(0) = w . x
    assert out["value"] == 0.0 and out["passed"] and out["n_forward"] == 2
    g = completeness(clf, video, grad(clf, video, 2).importance(), 2)
    assert g["value"] == pytest.approx(abs(float(w.sum()) - out["delta"]))
    rel = completeness(clf, video, grad(clf, video, 2).importance(), 2, relative=True)
    assert rel["value"] == pytest.approx(g["value"] / abs(out["delta"]))
    gray = completeness(clf, video, gxi(clf, video, 2).importance(), 2, baseline="gray")
    assert gray["delta"] == pytest.approx(float((w * (video - 0.5)).sum()), abs=1e-5)


def test_relative_completeness_is_undefined_when_the_output_does_not_change():
    clf, video = _linear()
    black = torch.zeros_like(video)  # x = baseline: f(x) - f(x') = 0
    ones = torch.ones(video.shape[:3])
    assert np.isnan(completeness(clf, black, ones, 2, relative=True)["value"])  # gap 24, delta 0
    assert completeness(clf, black, torch.zeros(video.shape[:3]), 2, relative=True)["value"] == 0.0


class Net2d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3)  # no padding: Quantus's bias compensation is exact
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class OneFrame(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, :, 0])


def _image_case():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    clf = VideoClassifier(OneFrame(Net2d()), layout="BCTHW")
    with torch.no_grad():
        y = clf.module.net(x).argmax(1)
    return clf, x, x.permute(0, 2, 3, 1)[:, None], y


def test_shifted_model_matches_quantus_compensation_and_gradients_are_invariant():
    pytest.importorskip("quantus")
    from quantus.helpers.model.pytorch_model import PyTorchModel

    clf, x, videos, y = _image_case()
    # Quantus's compensated model (bias change; exact here: the first conv has no padding)
    q_model = PyTorchModel(clf.module.net, channel_first=True).add_mean_shift_to_first_layer(-1, (1, 3, 8, 8))
    ours = shifted_model(clf, videos[0], -1.0)
    with torch.no_grad():
        expected = q_model(x - 1)
        got = ours(videos - 1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    for i in range(len(x)):
        a = grad(clf, videos[i], int(y[i])).importance()
        out = input_invariance(grad, clf, videos[i], int(y[i]), a, shift=-1.0)
        assert out["value"] == 1.0 and out["logit_gap"] < 1e-4
        b = gxi(clf, videos[i], int(y[i])).importance()
        assert input_invariance(gxi, clf, videos[i], int(y[i]), b, shift=-1.0)["value"] == 0.0


def test_quantus_0_6_shift_misses_one_value_so_its_scores_cannot_be_matched():
    """Why no end-to-end agreement test: Quantus 0.6.0 InputInvariance leaves one value per input
    unshifted (and its batched Completeness baseline replaces only part of the input), so its
    verdicts differ from the papers' definitions that removalx implements."""
    quantus = pytest.importorskip("quantus")
    from quantus.functions.perturb_func import perturb_batch

    x = np.random.default_rng(0).random((2, 3, 8, 8)).astype("f4")
    q = quantus.InputInvariance(input_shift=-1, disable_warnings=True)
    idx = np.tile(np.arange(x[0].size), (2, 1))
    moved = perturb_batch(perturb_func=q.perturb_func, indices=idx, indexed_axes=np.arange(x[0].ndim), arr=x)
    assert int((np.abs(moved - x + 1) > 1e-6).sum()) == 2  # one unshifted value per input


def test_shifted_model_cancels_the_shift_with_zero_padding(rx_toy_model, rx_tiny_video):
    moved = shifted_model(rx_toy_model, rx_tiny_video, -0.5)
    with torch.inference_mode():
        a = rx_toy_model(rx_tiny_video[None])
        b = moved(rx_tiny_video[None] - 0.5)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert moved.module is not rx_toy_model.module


def test_plugins_contract_and_errors(rx_toy_model, rx_tiny_video):
    from removalx.core.registry import get_registry

    reg = get_registry()
    attr = gxi(rx_toy_model, rx_tiny_video, 0)
    inv = reg.make("metric", "input_invariance")
    with pytest.raises(ConfigError, match="explain"):
        inv.score(rx_toy_model, rx_tiny_video, attr)
    out = inv.score(rx_toy_model, rx_tiny_video, attr, explain=grad)
    assert out["value"] == 1.0 and out["higher_is_better"]  # gradients: invariant
    assert inv.score(rx_toy_model, rx_tiny_video, attr, explain=gxi)["value"] == 0.0
    comp = reg.make("metric", "completeness").score(rx_toy_model, rx_tiny_video, attr)
    assert comp["value"] >= 0 and comp["n_forward"] == 2
    with pytest.raises(ConfigError):
        input_invariance(grad, rx_toy_model, rx_tiny_video, 0, None, shift=1.5, contract=True)
