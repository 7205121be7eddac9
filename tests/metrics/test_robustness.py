"""Robustness metrics: hand oracles, temporal perturbations, plugins, and Quantus as an oracle.

Quantus draws its own noise, so the Quantus tests inject removalx's perturbations: Quantus'
``perturb_func`` is replaced by one that returns, at step ``i``, exactly the clip removalx
perturbs at sample ``i`` (same seed, same clipping). The case is image-shaped: a one-frame
clip through a 2D model, explained by gradient x input of that model on both sides. Forward
passes run one clip at a time on contiguous input on both sides, so the logits are bitwise
equal: ROS divides by a small logit change, which would amplify float32 rounding differences.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from removalx.core.classifier import VideoClassifier
from removalx.core.types import Attribution
from removalx.errors import ConfigError
from removalx.metrics.robustness import (
    explanation_robustness,
    noise_perturbations,
    robustness_ratios,
    temporal_perturbations,
)
from removalx.testing.data import ToyClassifier, tiny_video

# -- the image-shaped case ------------------------------------------------------------


class Net2D(nn.Module):
    """A seeded tiny 2D CNN on ``[N, C, H, W]``."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.conv(x)).mean(dim=(2, 3)))


class OneFrame(nn.Module):
    """``[B, 1, H, W, C]`` clips through the 2D net."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, 0].permute(0, 3, 1, 2).contiguous())


def _grad_x_input(net: nn.Module, x_nchw: torch.Tensor, target: int) -> torch.Tensor:
    """Gradient x input summed over channels: ``[N, H, W]``."""
    x = x_nchw.detach().float().clone().requires_grad_(True)
    with torch.enable_grad():
        net(x)[:, target].sum().backward()
    assert x.grad is not None
    return (x.grad * x).sum(1).detach()


@pytest.fixture(scope="module")
def image_case():
    net = Net2D()
    g = torch.Generator().manual_seed(1)
    x = 0.3 + 0.4 * torch.rand(1, 3, 6, 6, generator=g)  # away from 0 and 1: no clipping, no x == 0
    model = VideoClassifier(OneFrame(net), layout="BTHWC")
    video = x[0].permute(1, 2, 0)[None].contiguous()  # [T=1, H, W, C]
    target = int(net(x).argmax())

    def explain(m, v, t):
        return Attribution(values=_grad_x_input(net, v[0].permute(2, 0, 1)[None], int(t)), target=int(t))

    return net, x, model, video, target, explain


def _quantus_run(metric_cls, kwargs, case, perturbed, **call):
    """Run a Quantus metric with removalx's perturbed clips injected as its perturbations."""
    net, x, _, _, target, _ = case
    steps = iter([p[0].permute(2, 0, 1).reshape(1, -1).numpy() for p in perturbed])

    def injected(arr, indices, **_):
        return next(steps).astype(arr.dtype)

    def q_explain(model, inputs, targets, **_):
        inp = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
        return _grad_x_input(net, inp, int(np.asarray(targets).ravel()[0]))[:, None].numpy()

    x_np = x.numpy()
    y = np.array([target])
    a = q_explain(net, x_np, y)
    metric = metric_cls(nr_samples=len(perturbed), perturb_func=injected, disable_warnings=True, **kwargs)
    return float(metric(model=net, x_batch=x_np, y_batch=y, a_batch=a, explain_func=q_explain, **call)[0])


QUANTUS_CASES = [
    ("max_sensitivity", "MaxSensitivity", {}),
    ("avg_sensitivity", "AvgSensitivity", {}),
    ("local_lipschitz", "LocalLipschitzEstimate", {"normalise": False}),
    ("ris", "RelativeInputStability", {}),
    ("ros", "RelativeOutputStability", {}),
]


@pytest.mark.parametrize("measure, name, kwargs", QUANTUS_CASES, ids=[c[0] for c in QUANTUS_CASES])
def test_quantus_agrees_with_injected_perturbations(image_case, measure, name, kwargs):
    quantus = pytest.importorskip("quantus")
    _, _, model, video, target, explain = image_case
    n, radius = 6, 0.05
    keep = measure in ("ris", "ros")
    ours = explanation_robustness(
        model, video, explain(model, video, target).importance(), target, explain,
        measure=measure, n_samples=n, radius=radius, seed=11, keep_prediction=keep, batch_size=1,
    )  # fmt: skip
    perturbed = noise_perturbations(video, torch.arange(n), radius, seed=11)
    theirs = _quantus_run(getattr(quantus, name), kwargs, image_case, list(perturbed))
    assert ours["kept"] == n  # small noise: no perturbation changed the prediction
    assert ours["value"] == pytest.approx(theirs, rel=1e-6, abs=1e-9)


# -- hand oracles -----------------------------------------------------------------------


def test_ratios_by_hand():
    a = torch.tensor([3.0, 4.0])  # ||a|| = 5
    a_p = torch.tensor([[3.0, 4.0], [0.0, 4.0], [3.0, 0.0]])
    x = torch.tensor([1.0, 2.0])
    x_p = torch.tensor([[1.0, 2.5], [1.0, 1.0], [2.0, 2.0]])
    h, h_p = torch.tensor([1.0, 0.0]), torch.tensor([[1.0, 0.0], [1.0, 3.0], [4.0, 4.0]])
    sens = robustness_ratios("max_sensitivity", a, a_p)
    assert sens.tolist() == pytest.approx([0.0, 3 / 5, 4 / 5])
    assert robustness_ratios("avg_sensitivity", a, a_p, relative=False).tolist() == pytest.approx([0, 3, 4])
    lle = robustness_ratios("local_lipschitz", a, a_p, x=x, x_pert=x_p)
    assert lle.tolist() == pytest.approx([0.0, 3 / 1, 4 / 1])
    # RIS: ||(a - a') / a|| / max(||(x - x') / x||, eps): row 1 -> 1 / 0.5, row 2 -> 1 / 1
    ris = robustness_ratios("ris", a, a_p, x=x, x_pert=x_p)
    assert ris.tolist() == pytest.approx([0.0, 2.0, 1.0])
    ros = robustness_ratios("ros", a, a_p, h=h, h_pert=h_p)  # ||h - h'|| = 0 (-> eps), 3, 5
    assert ros.tolist() == pytest.approx([0.0, 1 / 3, 1 / 5])


def test_eps_min_guards_zero_divisors():
    a = torch.tensor([0.0, 1.0])
    a_p = torch.tensor([[1.0, 1.0]])
    x = torch.tensor([0.5, 0.5])
    r = robustness_ratios("ris", a, a_p, x=x, x_pert=x[None].clone(), eps_min=1e-3)
    # numerator ||(0 - 1) / 1e-3, 0|| = 1000; input unchanged: denominator eps_min
    assert r.item() == pytest.approx(1000 / 1e-3)


def _linear_explain(model, video, target):
    """A map that follows the content: the clip's channel sum (shift- and rate-equivariant)."""
    return Attribution(values=video.sum(-1), target=int(target))


@pytest.fixture
def toy():
    return VideoClassifier(ToyClassifier(n_classes=3)), tiny_video(frames=4, size=8)


def test_sensitivity_of_a_linear_map_by_hand(toy):
    model, video = toy
    a = video.sum(-1)
    out = explanation_robustness(
        model, video, a, 0, _linear_explain, measure="max_sensitivity", n_samples=5, radius=0.01, seed=3
    )
    x_p = noise_perturbations(video, torch.arange(5), 0.01, seed=3)
    expected = [float((a - p.sum(-1)).norm() / a.norm()) for p in x_p]
    assert out["ratios"] == pytest.approx(expected, rel=1e-6)
    assert out["value"] == pytest.approx(max(expected), rel=1e-6)
    assert out["n_forward"] == 1 + 5 and out["kept"] == 5


def test_temporal_perturbations_of_an_equivariant_map_score_zero(toy):
    model, video = toy
    a = video.sum(-1)
    for perturbation in ("frame_shift", "frame_rate"):
        for measure in ("max_sensitivity", "avg_sensitivity", "ros"):
            out = explanation_robustness(
                model, video, a, 0, _linear_explain, measure=measure, perturbation=perturbation
            )
            assert out["value"] == pytest.approx(0.0, abs=1e-12), (perturbation, measure)
    shifts = temporal_perturbations(video, "frame_shift")
    assert [torch.equal(p, torch.roll(video, s, 0)) for (p, _), s in zip(shifts, (1, -1))] == [True, True]
    assert explanation_robustness(model, video, a, 0, _linear_explain, measure="max_sensitivity",
                                  perturbation="frame_rate")["n_perturbations"] == 1  # fmt: skip


def test_a_map_fixed_in_time_is_not_robust_to_a_shift(toy):
    model, video = toy
    a = torch.zeros(4, 8, 8)
    a[0] = 1.0  # always points at the first frame, whatever the content

    def fixed(m, v, t):
        return Attribution(values=a.clone(), target=int(t))

    out = explanation_robustness(
        model, video, a, 0, fixed, measure="max_sensitivity", perturbation="frame_shift"
    )
    # rolled back, the mass sits on frame 1 (or 3): ||a - a'|| = sqrt(2) ||a||
    assert out["value"] == pytest.approx(2**0.5)


def test_input_relative_measures_refuse_temporal_perturbations(toy):
    model, video = toy
    for measure in ("local_lipschitz", "ris"):
        with pytest.raises(ConfigError, match="perturbation=noise"):
            explanation_robustness(
                model, video, video.sum(-1), 0, _linear_explain, measure=measure, perturbation="frame_shift"
            )


def test_dropped_perturbations_and_determinism(toy):
    model, video = toy
    a = video.sum(-1)
    kw = {"measure": "ris", "n_samples": 4, "radius": 0.5, "seed": 5, "keep_prediction": True}
    one = explanation_robustness(model, video, a, 0, _linear_explain, **kw, batch_size=1)
    two = explanation_robustness(model, video, a, 0, _linear_explain, **kw, batch_size=3)
    assert one["ratios"] == pytest.approx(two["ratios"], nan_ok=True)  # batching does not change the draw
    x_p = noise_perturbations(video, torch.arange(4), 0.5, seed=5)
    with torch.inference_mode():
        same = model(x_p).argmax(1) == model(video[None]).argmax(1)
    assert one["kept"] == int(same.sum())
    assert [r != r for r in one["ratios"]] == (~same).tolist()  # NaN where dropped
    other = explanation_robustness(model, video, a, 0, _linear_explain, **{**kw, "seed": 6})
    assert other["ratios"] != pytest.approx(one["ratios"], nan_ok=True)


def test_noise_stays_in_the_ball_and_in_range():
    video = torch.full((2, 3, 3, 3), 0.5)
    video[0, 0, 0] = 0.99
    p = noise_perturbations(video, torch.arange(8), 0.2, seed=0)
    assert float((p - video).abs().max()) <= 0.2 + 1e-6
    assert float(p.min()) >= 0 and float(p.max()) <= 1
    g = noise_perturbations(video, torch.arange(8), 0.2, noise="gaussian", seed=0, clip=False)
    assert float(g.std()) == pytest.approx(0.2, rel=0.2)


# -- plugins ----------------------------------------------------------------------------


def test_plugin_needs_explain_and_uses_the_context_seed(registry, toy):
    model, video = toy
    attr = Attribution(values=video.sum(-1), target=0)
    metric = registry.make("metric", "max_sensitivity", {"n_samples": 3, "radius": 0.01})
    with pytest.raises(ConfigError, match="explain"):
        metric.score(model, video, attr)
    out = metric.score(model, video, attr, explain=_linear_explain, seed=4)
    direct = explanation_robustness(
        model,
        video,
        video.sum(-1),
        0,
        _linear_explain,
        measure="max_sensitivity",
        n_samples=3,
        radius=0.01,
        seed=4,
    )
    assert out["value"] == pytest.approx(direct["value"]) and out["higher_is_better"] is False
    assert out["settings"]["radius"] == 0.01 and "batch_size" not in out["settings"]


def test_plugin_configs_refuse_temporal_input_relative(registry):
    from pydantic import ValidationError

    for name in ("local_lipschitz", "ris"):
        with pytest.raises(ValidationError):
            registry.make("metric", name, {"perturbation": "frame_shift"})
    for name in ("max_sensitivity", "avg_sensitivity", "ros"):
        registry.make("metric", name, {"perturbation": "frame_rate"})


def test_plugin_with_a_real_explainer(registry, toy):
    import removalx

    model, video = toy
    ex = removalx.Explainer.from_recipe("gradient", seed=0, progress=False)
    attr = ex.explain_clip(model, video, 0)

    def explain(m, v, t):
        return ex.explain_clip(m, v, t, progress=False)

    out = registry.make("metric", "avg_sensitivity", {"n_samples": 2}).score(
        model, video, attr, explain=explain, seed=0
    )
    assert out["value"] > 0 and len(out["ratios"]) == 2
    assert out["n_forward"] >= 3 and out["n_backward"] >= 2
