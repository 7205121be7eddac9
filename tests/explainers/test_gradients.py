"""Gradient-family explainers (STEP journal Sec. V-B): exact values on small models."""

from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients, Saliency

import removalx
from removalx.core.classifier import VideoClassifier
from removalx.core.registry import Registry
from removalx.errors import ConfigError, ModelError
from removalx.testing.data import LinearVideoModel, ToyClassifier, tiny_video
from removalx_plugins.machinery.gradients import CaptumForward

MODULES = [
    "gradient",
    "gradient_x_input",
    "integrated_gradients",
    "smoothgrad",
    "smoothgrad_sq",
    "blur_ig",
    "grad_cam",
    "random",
]
SMALL = {  # reduced internal steps for speed
    "integrated_gradients": {"steps": 8},
    "smoothgrad": {"n_samples": 4},
    "smoothgrad_sq": {"n_samples": 4},
    "blur_ig": {"steps": 6, "max_sigma": 4.0},
}


def run(reg: Registry, name: str, model, video, target=0, seed=0, **cfg):
    recipe = {"name": name, "seed": seed, "explainer": {"name": name, **SMALL.get(name, {}), **cfg}}
    return removalx.Explainer.from_recipe(recipe, registry=reg, progress=False).explain(model, video, target)


@pytest.fixture()
def video() -> torch.Tensor:
    return tiny_video(frames=4, size=16)


@pytest.fixture()
def toy() -> VideoClassifier:
    return VideoClassifier(ToyClassifier(n_classes=3))


@pytest.fixture()
def linear() -> tuple[VideoClassifier, torch.Tensor]:
    w = torch.randn(2, 4, 16, 16, 3, generator=torch.Generator().manual_seed(1)) * 0.01
    return VideoClassifier(LinearVideoModel(w), layout="BTHWC"), w


@pytest.mark.parametrize("name", MODULES)
def test_every_explainer_returns_thw_attribution(reg, name, toy, video):
    a = run(reg, name, toy, video)
    assert a.values.shape == (4, 16, 16)
    assert a.values.dtype == torch.float32 and a.values.device.type == "cpu"
    assert torch.isfinite(a.values).all()
    assert a.meta["n_forward"] >= 1 and "n_forward_method" in a.meta
    if name != "random":
        assert a.meta["n_backward_method"] >= 1
        assert a.meta["signed"].shape == (4, 16, 16)


def test_gradient_of_linear_logit_is_the_weight(reg, linear, video):
    clf, w = linear
    a = run(reg, "gradient", clf, video, output="logit")
    torch.testing.assert_close(a.values, w[0].sum(-1), rtol=1e-5, atol=1e-7)
    b = run(reg, "gradient", clf, video, output="logit", channel_reduction="max_abs")
    torch.testing.assert_close(b.values, w[0].abs().amax(-1), rtol=1e-5, atol=1e-7)
    gi = run(reg, "gradient_x_input", clf, video, output="logit")
    torch.testing.assert_close(gi.values, (w[0] * video).sum(-1), rtol=1e-5, atol=1e-7)


def test_gradient_equals_captum_saliency_on_probability(reg, toy, video):
    a = run(reg, "gradient", toy, video, target=1)
    x = video[None].clone().requires_grad_(True)
    ref = Saliency(CaptumForward(toy, "probability")).attribute(x, target=1, abs=False)[0].sum(-1)
    torch.testing.assert_close(a.values, ref.detach(), rtol=1e-5, atol=1e-8)


def test_absolute_keeps_signed_map_in_meta(reg, linear, video):
    clf, w = linear
    a = run(reg, "gradient", clf, video, output="logit", absolute=True)
    assert (a.values >= 0).all()
    torch.testing.assert_close(a.meta["signed"], w[0].sum(-1), rtol=1e-5, atol=1e-7)


def test_integrated_gradients_completeness_and_captum(reg, toy, video):
    a = run(reg, "integrated_gradients", toy, video, target=2, steps=32, output="logit")
    with torch.no_grad():
        gap = float(toy(video[None])[0, 2] - toy(torch.zeros_like(video)[None])[0, 2])
    assert abs(float(a.values.sum()) - gap) < 0.05 * abs(gap) + 1e-3
    x = video[None].clone().requires_grad_(True)
    ref = IntegratedGradients(CaptumForward(toy, "logit")).attribute(
        x, baselines=torch.zeros_like(x), target=2, n_steps=32, method="riemann_right"
    )[0]
    torch.testing.assert_close(a.values, ref.sum(-1).detach(), rtol=1e-4, atol=1e-6)
    # Linear model: IG with a black baseline is exactly x * w (Eq. 24).
    lin = LinearVideoModel(torch.randn(2, 4, 16, 16, 3, generator=torch.Generator().manual_seed(3)))
    b = run(reg, "integrated_gradients", VideoClassifier(lin, layout="BTHWC"), video, output="logit")
    torch.testing.assert_close(b.values, (lin.weight[0] * video).sum(-1), rtol=1e-4, atol=1e-5)


def test_smoothgrad_on_linear_model_and_determinism(reg, linear, toy, video):
    clf, w = linear
    sg = run(reg, "smoothgrad", clf, video, output="logit")
    torch.testing.assert_close(sg.values, w[0].sum(-1), rtol=1e-5, atol=1e-7)
    sq = run(reg, "smoothgrad_sq", clf, video, output="logit")
    torch.testing.assert_close(sq.values, (w[0] ** 2).sum(-1), rtol=1e-5, atol=1e-9)
    a1 = run(reg, "smoothgrad", toy, video, seed=5, internal_batch_size=4)
    a2 = run(reg, "smoothgrad", toy, video, seed=5, internal_batch_size=1)
    a3 = run(reg, "smoothgrad", toy, video, seed=6)
    torch.testing.assert_close(a1.values, a2.values, rtol=1e-5, atol=1e-9)
    assert not torch.allclose(a1.values, a3.values)
    assert a1.meta["sigma"] == pytest.approx(0.15 * float(video.max() - video.min()))


def test_blur_ig_completeness(reg, toy, video):
    from removalx.video.filters import blur_frames

    a = run(reg, "blur_ig", toy, video, target=1, steps=24, max_sigma=3.0, output="logit")
    with torch.no_grad():
        gap = float(toy(video[None])[0, 1] - toy(blur_frames(video, 3.0)[None])[0, 1])
    assert abs(float(a.values.sum()) - gap) < 0.15 * abs(gap) + 1e-3


def test_grad_cam_default_last_conv_and_bad_layer(reg, toy, video):
    a = run(reg, "grad_cam", toy, video)
    assert a.meta["layer"] == "conv2" and a.meta["layer_shape"] == (4, 16, 16)
    assert (a.values >= 0).all()
    b = run(reg, "grad_cam", toy, video, layer="conv1")
    assert b.meta["layer"] == "conv1"
    with pytest.raises(ConfigError) as err:
        run(reg, "grad_cam", toy, video, layer="layer4")
    assert "conv1" in str(err.value) and "conv2" in str(err.value)


def test_black_box_callable_raises_model_error(reg, video):
    def black_box(x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3, 4))
        return torch.stack([m, -m], 1)

    for name in ("gradient", "integrated_gradients", "smoothgrad", "blur_ig", "grad_cam"):
        with pytest.raises(ModelError, match="differentiable"):
            run(reg, name, black_box, video)


def test_random_is_seeded(reg, toy, video):
    a = run(reg, "random", toy, video, seed=3)
    b = run(reg, "random", toy, video, seed=3)
    c = run(reg, "random", toy, video, seed=4)
    assert torch.equal(a.values, b.values) and not torch.equal(a.values, c.values)
    assert a.meta["n_forward"] == 1  # only the pipeline's own top-class pass


@pytest.mark.parametrize("name", MODULES)
def test_conformance_check(reg, name):
    from removalx.testing import check_plugin

    check_plugin("explainer", name, config=SMALL.get(name), registry=reg)
