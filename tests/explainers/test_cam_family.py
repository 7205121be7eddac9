"""The CAM family: Grad-CAM++, LayerCAM (grad_cam variants), Score-CAM and Ablation-CAM (recipes).

Each against pytorch-grad-cam on a one-frame clip through a 2D network (maps min-max
normalised as pytorch-grad-cam returns them; the layer keeps the input's size, so its resize
is the identity), and against a hand computation on a tiny 3D network.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import removalx
from removalx.core.classifier import VideoClassifier
from removalx.core.recipe import load_recipe
from removalx.errors import ConfigError

pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402


# -- a 2D network, and the same network as a one-frame video model ----------------------------
class Net2D(nn.Module):
    """conv 3->4 (3x3) -> ReLU -> conv 4->6 (3x3) -> ReLU (the target) -> mean -> linear 6->3."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.act2 = nn.ReLU()
        self.fc = nn.Linear(6, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.8)

    def forward(self, x: Tensor) -> Tensor:
        a = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.fc(a.mean(dim=(2, 3)))


class OneFrame(nn.Module):
    """``[B, C, 1, H, W]`` -> the 2D network on the single frame."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x[:, :, 0])


def image(seed: int = 0) -> Tensor:
    return torch.rand(1, 12, 12, 3, generator=torch.Generator().manual_seed(seed))  # [T=1, H, W, C]


def scaled(cam: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's ``scale_cam_image`` without the (identity) resize."""
    cam = cam - cam.min()
    return cam / (1e-7 + cam.max())


def oracle(kind: str, net: nn.Module, video: Tensor, target: int) -> np.ndarray:
    x = video[0].permute(2, 0, 1)[None].contiguous()  # [1, C, H, W]
    cls = getattr(pgc, kind)
    kwargs = {"batch_size": 4} if kind == "AblationCAM" else {}
    with cls(model=net, target_layers=[net.act2], **kwargs) as cam:
        if kind == "ScoreCAM":
            cam.batch_size = 4
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])[0]


def explain(recipe: dict | str, model: VideoClassifier, video: Tensor, target: int):
    r = load_recipe(recipe) if isinstance(recipe, str) else recipe
    return removalx.Explainer.from_recipe(r, progress=False).explain(model, video, target)


def grad_recipe(variant: str) -> dict:
    return {
        "name": "g",
        "seed": 0,
        "explainer": {"name": "grad_cam", "variant": variant, "layer": "net.act2"},
    }


def removal_recipe(name: str, **summary) -> dict:
    """The shipped ``name`` recipe as a dict, the layer set, the summary options overridden."""
    raw = load_recipe(name).to_dict()
    raw["segmentation"]["layer"] = "net.act2"
    raw["summary"].update(summary)
    return raw


@pytest.mark.parametrize(
    ("kind", "variant"), [("GradCAM", "gradcam"), ("GradCAMPlusPlus", "gradcam++"), ("LayerCAM", "layercam")]
)
@pytest.mark.parametrize("target", [0, 2])
def test_gradient_variants_agree_with_pytorch_grad_cam(kind, variant, target):
    net, video = Net2D().eval(), image(1)
    with torch.no_grad():  # gradients far above pytorch-grad-cam's eps of 1e-6 in Grad-CAM++'s alpha
        net.fc.weight.mul_(300.0)
    got = explain(grad_recipe(variant), VideoClassifier(OneFrame(net)), video, target)
    assert got.meta["variant"] == variant and got.meta["layer_shape"] == (1, 12, 12)
    want = oracle(kind, net, video, target)
    np.testing.assert_allclose(scaled(got.values[0].double().numpy()), want, atol=2e-5)


@pytest.mark.parametrize("target", [0, 1])
def test_score_cam_agrees_with_pytorch_grad_cam(target):
    net, video = Net2D().eval(), image(2)
    # pytorch-grad-cam's ScoreCAM: the logit of X (.) H_k, softmax over the channels
    recipe = removal_recipe("score_cam", weights="softmax")
    recipe["behavior"] = {"name": "logit", "incremental": False}
    got = explain(recipe, VideoClassifier(OneFrame(net)), video, target)
    assert got.meta["n_samples"] == 6
    np.testing.assert_allclose(
        scaled(got.values[0].double().numpy()), oracle("ScoreCAM", net, video, target), atol=2e-5
    )


@pytest.mark.parametrize("target", [0, 2])
def test_ablation_cam_agrees_with_pytorch_grad_cam(target):
    net, video = Net2D().eval(), image(3)
    got = explain(removal_recipe("ablation_cam"), VideoClassifier(OneFrame(net)), video, target)
    want = oracle("AblationCAM", net, video, target)
    np.testing.assert_allclose(scaled(got.values[0].double().numpy()), want, atol=2e-5)


# -- a tiny 3D network, by hand ----------------------------------------------------------------
W = torch.tensor([[1.0, -0.5, 0.25], [-0.3, 0.8, 0.6], [0.5, 0.4, -0.9]])
V = torch.tensor([[1.5, -2.0, 0.7], [-1.0, 0.5, 1.2]])
B = torch.tensor([0.4, -0.2])


class SquareNet(nn.Module):
    """``A = conv(x - 0.5)`` (1x1x1, 3 -> 3 channels, weights W), ``logits = V mean(A^2) + b``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 3, kernel_size=1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(W.view(3, 3, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        a = self.conv(x - 0.5)
        return (a * a).mean(dim=(2, 3, 4)) @ V.T + B


def clip(seed: int = 0) -> Tensor:
    return torch.rand(4, 6, 6, 3, generator=torch.Generator().manual_seed(seed))


def hand_a(video: Tensor) -> Tensor:
    """``A[k, t, i, j]`` in float64."""
    return torch.einsum("thwc,kc->kthw", video.double() - 0.5, W.double())


def hand_logits(a: Tensor) -> Tensor:
    return V.double() @ (a * a).mean(dim=(1, 2, 3)) + B.double()


def test_grad_cam_pp_and_layer_cam_by_hand():
    video, target = clip(), 0
    a = hand_a(video)
    g = 2 * V[target].double()[:, None, None, None] * a / a[0].numel()  # dy_c / dA
    s = a.sum(dim=(1, 2, 3), keepdim=True)
    alpha = torch.where(g != 0, g**2 / (2 * g**2 + s * g**3), torch.zeros_like(g))
    w = (alpha * g.clamp_min(0)).sum(dim=(1, 2, 3))
    pp = torch.relu((w[:, None, None, None] * a).sum(0))
    lc = torch.relu((g.clamp_min(0) * a).sum(0))
    model = VideoClassifier(SquareNet())
    for variant, want in (("gradcam++", pp), ("layercam", lc)):
        got = explain(
            {**grad_recipe(variant), "explainer": {"name": "grad_cam", "variant": variant}},
            model,
            video,
            target,
        )
        assert got.meta["layer"] == "conv"
        torch.testing.assert_close(got.values, want.float(), rtol=1e-4, atol=1e-7)
        assert float(want.max()) > 0


def test_default_variant_is_grad_cam_bit_for_bit():
    video, model = clip(1), VideoClassifier(SquareNet())
    plain = explain({"name": "g", "seed": 0, "explainer": {"name": "grad_cam"}}, model, video, 1)
    named = explain(
        {"name": "g", "seed": 0, "explainer": {"name": "grad_cam", "variant": "gradcam"}}, model, video, 1
    )
    assert torch.equal(plain.values, named.values)


def test_score_cam_by_hand_on_3d():
    video, target = clip(2), 1
    a = hand_a(video)
    lo, hi = a.amin(dim=(1, 2, 3), keepdim=True), a.amax(dim=(1, 2, 3), keepdim=True)
    h = (a - lo) / (hi - lo)  # 1x1x1 layer: the maps are already at the clip's size
    scores = torch.stack(
        [torch.softmax(hand_logits(hand_a(video.double() * h[k][..., None])), 0)[target] for k in range(3)]
    )
    want = torch.relu((scores[:, None, None, None] * a).sum(0))
    got = explain("score_cam", VideoClassifier(SquareNet()), video, target)
    torch.testing.assert_close(got.feature_values, scores.float(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(got.values, want.float(), rtol=1e-4, atol=1e-6)


def test_ablation_cam_by_hand_on_3d():
    video, target = clip(3), 0
    a = hand_a(video)
    y = hand_logits(a)[target]
    drops = []
    for k in range(3):
        ak = a.clone()
        ak[k] = 0
        drops.append((y - hand_logits(ak)[target]) / y)
    w = torch.stack(drops)
    want = torch.relu((w[:, None, None, None] * a).sum(0))
    got = explain("ablation_cam", VideoClassifier(SquareNet()), video, target)
    torch.testing.assert_close(got.feature_values, w.float(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(got.values, want.float(), rtol=1e-4, atol=1e-6)


def test_ablation_needs_the_activation_maps_space():
    recipe = {
        "name": "bad",
        "seed": 0,
        "segmentation": {"name": "grid3d", "cells": [1, 2, 2]},
        "feature_selection": {"name": "leave_one_out"},
        "sample_selection": {"name": "exhaustive"},
        "removal": {"name": "layer_ablation"},
        "behavior": {"name": "logit", "incremental": False},
        "summary": {"name": "difference"},
    }
    with pytest.raises(ConfigError, match="activation_maps"):
        explain(recipe, VideoClassifier(SquareNet()), clip(), 0)


@pytest.mark.parametrize("name", ["score_cam", "ablation_cam"])
def test_removal_cams_do_not_depend_on_the_batch(name):
    video, model = clip(4), VideoClassifier(SquareNet())
    runs = [
        removalx.Explainer.from_recipe(name, progress=False).explain(model, video, 0, batch_size=bs)
        for bs in (1, 2, 8)
    ]
    for r in runs[1:]:
        torch.testing.assert_close(r.values, runs[0].values, rtol=1e-6, atol=1e-7)
    assert runs[0].meta["n_samples"] == 3 and runs[0].space.meta["layer"] == "conv"


def test_ablation_cam_never_runs_incremental_inference():
    """``layer_ablation`` acts inside the model: the pipeline turns incremental inference off."""
    recipe = load_recipe("ablation_cam", overrides={"behavior.incremental": True})
    video, model = clip(4), VideoClassifier(SquareNet())
    on = removalx.Explainer(recipe, progress=False).explain(model, video, 0)
    off = removalx.Explainer.from_recipe("ablation_cam", progress=False).explain(model, video, 0)
    assert "acts inside the model" in str(on.meta["incremental"])
    torch.testing.assert_close(on.values, off.values, rtol=0, atol=0)


@pytest.mark.parametrize(("full", "want"), [(2.0, [0.5, -0.25]), (-2.0, [-0.5, 0.25]), (0.0, [-1.0, 0.5])])
def test_relative_drop_by_hand_and_at_a_zero_output(full, want):
    """Ablation-CAM Eq. 3: w_k = (y - y_k) / y; y = 0 keeps the plain drop y - y_k."""
    from types import SimpleNamespace

    summary = removalx.get_registry().make("summary", "cam_weights", {"weights": "relative_drop"})
    space = SimpleNamespace(n_features=2)
    summary.begin(space, None, {"full": full})
    ablated = torch.tensor([full - want[0] * (full or 1.0), full - want[1] * (full or 1.0)])
    z = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # row k removes channel k
    summary.update(z, None, ablated, None)
    torch.testing.assert_close(summary.channel_weights(), torch.tensor(want, dtype=torch.float64))
