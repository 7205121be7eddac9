"""Similarity functions, MPRT / eMPRT / random logit: hand oracles and Quantus oracles.

Quantus cases are image-shaped: a 2D model wrapped as a video model of one-frame clips, the
same Gradient x Input explain function on both sides.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
import torch
from torch import nn

from removalx.core.classifier import VideoClassifier
from removalx.core.types import Attribution
from removalx.errors import ConfigError
from removalx.metrics import randomisation as rnd
from removalx.metrics.similarity import pearson, spearman, ssim, top_k_intersection


# -- similarity ---------------------------------------------------------------------------------
def test_spearman_and_pearson_match_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 5, 6, generator=g, dtype=torch.float64).round()  # many ties
    b = (a + torch.randn(3, 5, 6, generator=g, dtype=torch.float64)).round()
    assert spearman(a, b) == pytest.approx(st.spearmanr(a.ravel(), b.ravel())[0], abs=1e-12)
    assert pearson(a, b) == pytest.approx(st.pearsonr(a.ravel(), b.ravel())[0], abs=1e-12)
    rows = spearman(torch.stack([a, b]), torch.stack([b, -a]), batched=True)
    assert rows[0] == pytest.approx(spearman(a, b)) and rows[1] == pytest.approx(spearman(b, -a))
    assert spearman(torch.ones(4), torch.arange(4.0)) == 0.0  # constant: no ranking


def test_ssim_matches_skimage_in_1d_and_2d_and_averages_frames():
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 12, 10, generator=g, dtype=torch.float64)
    b = a + 0.3 * torch.rand(2, 12, 10, generator=g, dtype=torch.float64)
    rng = float(torch.maximum(a.max(), b.max()) - torch.minimum(a.min(), b.min()))
    frames = [structural_similarity(a[t].numpy(), b[t].numpy(), data_range=rng) for t in range(2)]
    assert ssim(a, b) == pytest.approx(np.mean(frames), abs=1e-10)
    assert ssim(a[0], b[0], data_range=rng) == pytest.approx(frames[0], abs=1e-10)
    flat = structural_similarity(a.ravel().numpy(), b.ravel().numpy(), data_range=rng)
    assert ssim(a.ravel(), b.ravel()) == pytest.approx(flat, abs=1e-10)  # joint range by default
    assert ssim(a, a) == pytest.approx(1.0)


def test_top_k_intersection_by_hand():
    a = torch.tensor([5.0, 4, 3, 2, 1])
    b = torch.tensor([5.0, 1, 4, 2, 3])
    assert top_k_intersection(a, b, 2) == 0.5  # {0, 1} vs {0, 2}
    assert top_k_intersection(a, b, 5) == 1.0
    with pytest.raises(ConfigError):
        top_k_intersection(a, b, 6)


# -- a linear model: Gradient x Input in closed form ---------------------------------------------
class Flat(nn.Module):
    """Linear classifier of a flattened BCTHW clip."""

    def __init__(self, n_in: int, k: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(n_in, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def grad_x_input(model, video, target):
    """Gradient x Input summed over channels, as an Attribution."""
    x = video.detach().clone().float().requires_grad_(True)
    with torch.enable_grad():
        model(x[None])[0, target].backward()
    return Attribution(values=(x.grad * x).sum(-1).detach(), target=target)


def _linear_case():
    video = torch.rand(2, 3, 4, 3, generator=torch.Generator().manual_seed(2))
    clf = VideoClassifier(Flat(video.numel()), layout="BCTHW")
    return clf, video


def test_mprt_on_a_linear_model_equals_the_closed_form():
    clf, video = _linear_case()
    before = clf.module.fc.weight.detach().clone()
    attr = grad_x_input(clf, video, 1)
    out = rnd.mprt(grad_x_input, clf, video, 1, attr.importance(), layers="all", seed=7)
    # the closed form: GxI of a linear map = w[target] * x; randomising its only layer draws
    # nn.Linear's default init from the CPU generator seeded 7 + 1
    fresh = nn.Linear(video.numel(), 3)
    torch.manual_seed(8)
    fresh.reset_parameters()
    w = fresh.weight[1].detach().reshape(3, 2, 3, 4).permute(1, 2, 3, 0)  # C,T,H,W -> T,H,W,C
    expected_map = (w * video).sum(-1)
    orig_map = (before[1].reshape(3, 2, 3, 4).permute(1, 2, 3, 0) * video).sum(-1)
    expected = st.spearmanr(orig_map.abs().ravel(), expected_map.abs().ravel())[0]
    assert out["value"] == pytest.approx(expected, abs=1e-9)
    assert out["layers"] == ["fc"] and len(out["similarity_by_layer"]) == 1
    assert torch.equal(clf.module.fc.weight, before)  # the caller's model is untouched
    again = rnd.mprt(grad_x_input, clf, video, 1, attr.importance(), layers="all", seed=7)
    assert again["value"] == out["value"]
    other = rnd.mprt(grad_x_input, clf, video, 1, attr.importance(), layers="all", seed=8)
    assert other["value"] != out["value"]


def test_randomisation_leaves_the_global_generator_alone():
    clf, _ = _linear_case()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    list(rnd.randomised_models(clf, layers="all", seed=0))
    assert torch.equal(torch.rand(3), expected)


def test_emprt_and_random_logit_on_the_linear_model():
    clf, video = _linear_case()
    attr = grad_x_input(clf, video, 0)
    out = rnd.emprt(grad_x_input, clf, video, 0, attr.importance(), layers="all", seed=3)
    rand = next(rnd.randomised_models(clf, layers="all", seed=3, order="bottom_up"))[1]
    h0 = st.entropy(np.histogram(attr.importance().double().numpy(), bins=100)[0])
    h1 = st.entropy(np.histogram(grad_x_input(rand, video, 0).importance().double().numpy(), bins=100)[0])
    assert out["value"] == pytest.approx((h1 - h0) / h0, abs=1e-12)
    rl = rnd.random_logit(grad_x_input, clf, video, 0, attr.importance(), seed=5, similarity="spearman")
    assert rl["off_target"] in (1, 2)
    other = grad_x_input(clf, video, rl["off_target"]).importance()
    assert rl["value"] == pytest.approx(st.spearmanr(attr.importance().ravel(), other.ravel())[0], abs=1e-9)
    assert (
        rnd.random_logit(grad_x_input, clf, video, 0, attr.importance(), seed=5)["off_target"]
        == rl["off_target"]
    )


def test_layer_groups_bound_the_cost_and_names_are_checked():
    layers = [(f"l{i}", nn.Linear(1, 1)) for i in range(12)]
    groups = rnd.layer_groups(layers, "groups", 5)
    assert [len(g) for g in groups] == [3, 3, 2, 2, 2]
    assert [n for n, _ in rnd.layer_groups(layers, ["l3"])[0]] == ["l3"]
    with pytest.raises(ConfigError):
        rnd.layer_groups(layers, ["nope"])


def test_plugins_need_explain_and_run_through_the_registry(rx_toy_model, rx_tiny_video):
    from removalx.core.registry import get_registry

    reg = get_registry()
    attr = grad_x_input(rx_toy_model, rx_tiny_video, 0)
    for name in ("mprt", "smprt", "emprt", "random_logit"):
        metric = reg.make("metric", name, {"smooth_samples": 2} if name == "smprt" else None)
        with pytest.raises(ConfigError, match="explain"):
            metric.score(rx_toy_model, rx_tiny_video, attr)
        out = metric.score(rx_toy_model, rx_tiny_video, attr, explain=grad_x_input, seed=0)
        assert np.isfinite(out["value"]) and out["n_forward"] >= 1 and "settings" in out
        assert out == metric.score(rx_toy_model, rx_tiny_video, attr, explain=grad_x_input, seed=0)


# -- Quantus oracles ------------------------------------------------------------------------------
class Net2d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class OneFrame(nn.Module):
    """A 2D model as a video model of one-frame clips (BCTHW -> BCHW)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, :, 0])


def q_explain(model, inputs, targets, **_):
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32).requires_grad_(True)
    with torch.enable_grad():
        model(x)[torch.arange(len(x)), torch.as_tensor(np.asarray(targets))].sum().backward()
    return (x.grad * x).sum(1).detach().numpy()


def _image_case(n: int = 2):
    g = torch.Generator().manual_seed(4)
    x = torch.rand(n, 3, 8, 8, generator=g)
    clf = VideoClassifier(OneFrame(Net2d()), layout="BCTHW")
    videos = x.permute(0, 2, 3, 1)[:, None]  # [n, T=1, H, W, C]
    with torch.no_grad():
        y = clf.module.net(x).argmax(1)
    return clf, x, videos, y


def test_mprt_agrees_with_quantus_on_an_image_case(monkeypatch):
    quantus = pytest.importorskip("quantus")
    clf, x, videos, y = _image_case()
    q = quantus.MPRT(layer_order="top_down", seed=42, disable_warnings=True)
    q_scores = q(
        model=clf.module.net, x_batch=x.numpy(), y_batch=y.numpy(), explain_func=q_explain, channel_first=True
    )
    q_curve = np.array([v for k, v in q_scores.items() if k != "original"]).T  # [n, layers]
    # Quantus re-seeds every layer with seed + 1; removalx seeds layer i with seed + 1 + i. Pin
    # removalx's draws to Quantus's scheme to compare the computation itself.
    real = rnd._reset
    monkeypatch.setattr(rnd, "_reset", lambda m, s: real(m, 43))
    for i in range(len(x)):
        a = grad_x_input(clf, videos[i], int(y[i])).importance()
        out = rnd.mprt(grad_x_input, clf, videos[i], int(y[i]), a, layers="all", seed=42)
        assert out["layers"] == ["net.fc", "net.conv"]
        np.testing.assert_allclose(out["similarity_by_layer"], q_curve[i], atol=1e-6)


def test_mprt_first_step_uses_quantus_seed_without_pinning():
    quantus = pytest.importorskip("quantus")
    clf, x, videos, y = _image_case(1)
    q = quantus.MPRT(layer_order="top_down", seed=42, disable_warnings=True, return_last_correlation=False)
    q_scores = q(
        model=clf.module.net, x_batch=x.numpy(), y_batch=y.numpy(), explain_func=q_explain, channel_first=True
    )
    a = grad_x_input(clf, videos[0], int(y[0])).importance()
    out = rnd.mprt(grad_x_input, clf, videos[0], int(y[0]), a, layers="all", seed=42)
    assert out["similarity_by_layer"][0] == pytest.approx(q_scores["fc"][0], abs=1e-6)


def test_random_logit_agrees_with_quantus_on_an_image_case():
    quantus = pytest.importorskip("quantus")
    clf, x, videos, y = _image_case()
    q = quantus.RandomLogit(num_classes=5, seed=42, disable_warnings=True)
    for i in range(len(x)):
        # one clip per call: Quantus's normalise_by_max divides by the maximum over the whole
        # batch, removalx (like the papers) by each map's own maximum
        (q_score,) = q(
            model=clf.module.net,
            x_batch=x[i : i + 1].numpy(),
            y_batch=y[i : i + 1].numpy(),
            explain_func=q_explain,
            channel_first=True,
        )
        np.random.seed(42)  # Quantus's off-class draw (NumPy's global generator), repeated
        off = [c for c in range(5) if c != int(y[i])][np.random.randint(0, 4, 1)[0]]
        a = grad_x_input(clf, videos[i], int(y[i])).importance()
        out = rnd.random_logit(grad_x_input, clf, videos[i], int(y[i]), a, off_target=off)
        b = grad_x_input(clf, videos[i], off).importance()
        pa, pb = rnd.prepare_map(a, False), rnd.prepare_map(b, False)
        # Quantus applies SSIM to the flattened maps (1D windows); removalx per frame in 2D
        assert ssim(pa.ravel(), pb.ravel()) == pytest.approx(q_score, abs=1e-6)
        assert out["value"] == pytest.approx(ssim(pa, pb), abs=1e-12)


def test_randomised_copies_print_no_incremental_notice():
    """One notice per model: the copies a metric makes (one per layer group) stay quiet."""
    from removalx.metrics.randomisation import rewrap

    clf = VideoClassifier(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), layout="BCTHW", name="m")
    copy = rewrap(clf, nn.Sequential(nn.Flatten(), nn.Linear(12, 3)))
    assert getattr(copy, "_incremental_notice", False) and not getattr(clf, "_incremental_notice", False)
    assert copy.name == "m (randomised)" and copy.layout == clf.layout
