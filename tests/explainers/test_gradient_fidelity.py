"""The journal-baseline recipes (STEP journal Sec. V-B, Eq. 22-27; XRAI; Sec. IV-B random maps).

Every recipe is run as shipped (only sizes reduced where the equation does not depend on
them) and compared with a hand computation of its equation on a tiny input: linear and
quadratic models whose gradients, Integrated Gradients and SmoothGrad expectations are known
in closed form, computed here in float64 numpy, independently of the implementation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage.segmentation import slic
from torch import Tensor, nn

import removalx
from removalx.core.recipe import load_recipe
from removalx.testing import LinearVideoModel, ToyClassifier, tiny_video
from removalx.video.filters import blur_frames
from removalx_plugins.machinery.gradients import normalize_map

T, S, C = 4, 16, 3
MEAN = np.array([0.43216, 0.394666, 0.37645])  # a model normalisation (Kinetics) ...
STD = np.array([0.22803, 0.22145, 0.216989])  # ... so that pixel and model units differ


def explain(recipe: str, model: removalx.VideoClassifier, video: Tensor, target: int = 0, **over: object):
    overrides = {f"explainer.{k}": v for k, v in over.items()}
    ex = removalx.Explainer.from_recipe(recipe, seed=0, overrides=overrides, progress=False)
    return ex.explain(model, video, target=target)


def pnorm(v: np.ndarray, q: float = 99.9) -> np.ndarray:
    """The STEP authors' map normalisation: clip((v - min) / (P_q - min), 0, 1)."""
    lo, hi = v.min(), np.percentile(v, q)
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.fixture()
def video() -> Tensor:
    return tiny_video(frames=T, size=S, seed=2)


def linear(k: int = 3, normalised: bool = True, seed: int = 1, scale: float = 0.01):
    """``VideoClassifier`` with logits ``W x_n + b`` (``x_n`` the normalised clip); and W, b."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(k, T, S, S, C, generator=g) * scale
    b = torch.randn(k, generator=g) * 0.1
    kw = {"mean": MEAN.tolist(), "std": STD.tolist()} if normalised else {}
    clf = removalx.VideoClassifier(LinearVideoModel(w, b), layout="BTHWC", **kw)
    return clf, w.double().numpy(), b.double().numpy()


def x_model(video: Tensor) -> np.ndarray:
    return (video.double().numpy() - MEAN) / STD


class Quadratic(nn.Module):
    """``logits = [sum(a * x^2), 0]`` for ``x[B, T, H, W, C]``: gradient ``2 a x``."""

    def __init__(self, a: float = 1.0) -> None:
        super().__init__()
        self.a = a

    def forward(self, x: Tensor) -> Tensor:
        z = (self.a * x * x).sum(dim=(1, 2, 3, 4))
        return torch.stack([z, torch.zeros_like(z)], 1)


# -- the map normalisation ----------------------------------------------------------------------
def test_percentile_normalisation_hand_values():
    v = torch.arange(1000, dtype=torch.float32).view(10, 10, 10)
    # numpy's linear percentile: position 0.999 * 999 = 998.001 -> value 998.001
    out = normalize_map(v, "percentile", 99.9)
    np.testing.assert_allclose(
        out.numpy(), np.clip(np.arange(1000) / 998.001, 0, 1).reshape(10, 10, 10), atol=1e-7
    )
    assert float(out.max()) == 1.0 and int((out == 1).sum()) == 1  # only 999 lies above P99.9
    v10 = torch.arange(10, dtype=torch.float32).view(1, 2, 5) + 3.0  # 3..12, P50 = 7.5
    np.testing.assert_allclose(
        normalize_map(v10, "percentile", 50).numpy().ravel(), np.clip(np.arange(10) / 4.5, 0, 1)
    )
    assert torch.equal(normalize_map(torch.full((2, 3, 3), 0.7)), torch.zeros(2, 3, 3))  # constant map
    assert torch.equal(normalize_map(v10, "none"), v10)


# -- Eq. 22, Eq. 23: gradient of the softmax probability -------------------------------------------
def test_gradient_recipe_is_softmax_gradient_abs_mean_normalised(video):
    clf, w, b = linear(k=3)
    xn = x_model(video)
    p = softmax(np.einsum("thwc,kthwc->k", xn, w) + b)
    target = 1
    grad_n = p[target] * (w[target] - np.einsum("k,kthwc->thwc", p, w))  # dp_c / dx_n
    a = explain("gradient", clf, video, target=target)
    np.testing.assert_allclose(a.values.numpy(), pnorm(np.abs(grad_n).mean(-1)), atol=2e-5)
    np.testing.assert_allclose(a.meta["signed"].numpy(), np.abs(grad_n).mean(-1), rtol=1e-4, atol=1e-9)
    # the pixel-space variant: dp/dx = dp/dx_n / std
    px = explain("gradient", clf, video, target=target, input_space="pixel", normalize="none")
    np.testing.assert_allclose(px.values.numpy(), np.abs(grad_n / STD).mean(-1), rtol=1e-4, atol=1e-9)
    # the plugin defaults: the signed sum over RGB, no normalisation
    sg = explain(
        "gradient", clf, video, target=target, input_space="pixel", normalize="none", channel_reduction="sum"
    )
    np.testing.assert_allclose(sg.values.numpy(), (grad_n / STD).sum(-1), rtol=1e-4, atol=1e-9)


def test_gradient_x_input_recipe_multiplies_the_model_input(video):
    clf, w, b = linear(k=3)
    xn = x_model(video)
    p = softmax(np.einsum("thwc,kthwc->k", xn, w) + b)
    grad_n = p[0] * (w[0] - np.einsum("k,kthwc->thwc", p, w))
    a = explain("gradient_x_input", clf, video)
    np.testing.assert_allclose(a.values.numpy(), pnorm(np.abs(xn * grad_n).mean(-1)), atol=2e-5)
    # Eq. 23 on the clip in [0, 1]: x * dp/dx
    px = explain(
        "gradient_x_input", clf, video, input_space="pixel", normalize="none", channel_reduction="sum"
    )
    expected = (video.double().numpy() * grad_n / STD).sum(-1)
    np.testing.assert_allclose(px.values.numpy(), expected, rtol=1e-4, atol=1e-9)


def test_model_space_equals_pixel_space_without_normalisation(video):
    clf, _, _ = linear(k=2, normalised=False)
    for recipe in ("gradient", "gradient_x_input"):
        a = explain(recipe, clf, video)
        b = explain(recipe, clf, video, input_space="pixel")
        torch.testing.assert_close(a.values, b.values, rtol=0, atol=0)


# -- Eq. 24: Integrated Gradients ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "factor"),
    [
        ("riemann_right", lambda m: (m + 1) / m),
        ("riemann_left", lambda m: (m - 1) / m),
        ("riemann_trapezoid", lambda m: 1.0),
    ],
)
def test_ig_on_a_quadratic_hand_values(video, method, factor):
    # f(x) = sum a x^2, baseline 0: (1/m) sum_k 2 a (k/m) x * x = a x^2 (m + 1) / m for k = 1..m (Eq. 24)
    a, m = 0.5, 10
    clf = removalx.VideoClassifier(Quadratic(a), layout="BTHWC")
    attr = explain(
        "ig", clf, video, output="logit", steps=m, method=method, channel_reduction="sum", normalize="none"
    )
    x2 = (video.double().numpy() ** 2).sum(-1)
    np.testing.assert_allclose(attr.values.numpy(), a * x2 * factor(m), rtol=1e-5)
    # completeness up to the quadrature factor: sum = (f(x) - f(0)) * factor
    assert float(attr.values.double().sum()) == pytest.approx(a * x2.sum() * factor(m), rel=1e-5)


def test_ig_recipe_softmax_closed_form_and_invariance(video):
    # two classes, logits linear in x_n: p = sigmoid(d), d = (W0 - W1) . x_n + (b0 - b1)
    clf, w, b = linear(k=2, scale=0.02)
    xn = x_model(video)
    base = (0.0 - MEAN) / STD  # black, in model units
    dw = w[0] - w[1]
    m = 50
    ds = [np.sum(dw * (base + k / m * (xn - base))) + b[0] - b[1] for k in range(1, m + 1)]
    sig = [1 / (1 + np.exp(-d)) for d in ds]
    ig = (xn - base) * dw * np.mean([s * (1 - s) for s in sig])  # Eq. 24, right sum, k = 1..m
    a = explain("ig", clf, video)
    np.testing.assert_allclose(a.values.numpy(), pnorm(np.abs(ig).mean(-1)), atol=2e-5)
    np.testing.assert_allclose(a.meta["signed"].numpy(), np.abs(ig).mean(-1), rtol=1e-3, atol=1e-9)
    # completeness (sum over RGB keeps signs): p(x) - p(black) up to the Riemann error
    full = explain("ig", clf, video, channel_reduction="sum", normalize="none", steps=400)
    p = 1 / (1 + np.exp(-(np.sum(dw * xn) + b[0] - b[1])))
    p0 = 1 / (1 + np.exp(-(np.sum(dw * base) + b[0] - b[1])))
    assert float(full.values.double().sum()) == pytest.approx(p - p0, rel=2e-2)


# -- Eq. 25, Eq. 26: SmoothGrad -----------------------------------------------------------------
def test_smoothgrad_on_a_linear_model_is_the_weight(video):
    clf, w, _ = linear(k=2)
    # logit: every noisy gradient w.r.t. x_n is W, whatever the noise
    a = explain("smoothgrad", clf, video, output="logit", n_samples=3, normalize="none")
    np.testing.assert_allclose(a.values.numpy(), np.abs(w[0]).sum(-1), rtol=1e-5)
    sq = explain("smoothgrad_sq", clf, video, output="logit", n_samples=3, normalize="none")
    np.testing.assert_allclose(sq.values.numpy(), (w[0] ** 2).sum(-1), rtol=1e-5)
    px = explain("smoothgrad", clf, video, output="logit", n_samples=3, normalize="none", input_space="pixel")
    np.testing.assert_allclose(px.values.numpy(), np.abs(w[0] / STD).sum(-1), rtol=1e-5)
    full = explain("smoothgrad", clf, video, output="logit", n_samples=3)
    np.testing.assert_allclose(full.values.numpy(), pnorm(np.abs(w[0]).sum(-1)), atol=2e-5)


@pytest.mark.parametrize("space", ["model", "pixel"])
def test_smoothgrad_noise_is_15_percent_of_the_value_range(video, space):
    # f = sum a x^2 in the space the noise is drawn in: E[(2 a (x + e))^2] = 4 a^2 (x^2 + sigma^2)
    a, n = 1.0, 50
    if space == "model":
        clf = removalx.VideoClassifier(Quadratic(a), layout="BTHWC", mean=MEAN.tolist(), std=STD.tolist())
        x = x_model(video)
    else:
        clf = removalx.VideoClassifier(Quadratic(a), layout="BTHWC")
        x = video.double().numpy()
    sigma = 0.15 * (x.max() - x.min())
    over = {"output": "logit", "normalize": "none", "channel_reduction": "sum", "input_space": space}
    sq = explain("smoothgrad_sq", clf, video, **over)
    assert sq.meta["sigma"] == pytest.approx(sigma, rel=1e-6)
    est = (sq.values.double().numpy().sum() / (4 * a * a) - (x**2).sum()) / x.size
    assert est == pytest.approx(sigma**2, rel=0.1)  # 153 600 noise draws: about 2 % error
    sg = explain("smoothgrad", clf, video, **over)  # E[2 a (x + e)] = 2 a x
    err = sg.values.double().numpy() - 2 * a * x.sum(-1)
    assert abs(err.mean()) < 4 * 2 * a * sigma * np.sqrt(C / (n * x.size / C)) + 1e-9
    assert err.std() == pytest.approx(2 * a * sigma * np.sqrt(C / n), rel=0.1)


# -- Eq. 27: Blur IG -------------------------------------------------------------------------------
def scipy_blur(frames: np.ndarray, sigma: float, fill: np.ndarray) -> np.ndarray:
    """Per-frame, per-channel Gaussian, radius round(4 sigma), constant padding with ``fill``."""
    out = np.empty_like(frames)
    for t in range(frames.shape[0]):
        for c in range(frames.shape[-1]):
            out[t, :, :, c] = gaussian_filter(
                frames[t, :, :, c], sigma, mode="constant", cval=fill[c], truncate=4.0
            )
    return out


def test_blur_ig_eq27_hand_computation(video):
    clf, w, _ = linear(k=2)
    x = video.double().numpy()
    m, smax, h = 3, 2.1, 0.01  # sigma 0.7, 1.4 (+0.01): radius ceil(4 sigma) = scipy's round(4 sigma)
    sig = [(k - 1) * smax / m for k in range(1, m + 1)]

    def g(s: float) -> np.ndarray:
        return x if s == 0 else scipy_blur(x, s, MEAN)  # padded with 0 of the model's input

    # logit W . x_n: dPhi/dg (pixels) = W / std
    big = sum((w[0] / STD) * (g(s + h) - g(s)) / h * smax / m for s in sig)
    a = explain("blur_ig", clf, video, output="logit", steps=m, max_sigma=smax, normalize="none")
    np.testing.assert_allclose(a.values.numpy(), np.abs(big).mean(-1), rtol=2e-3, atol=1e-7)
    full = explain("blur_ig", clf, video, output="logit", steps=m, max_sigma=smax)
    np.testing.assert_allclose(full.values.numpy(), pnorm(np.abs(big).mean(-1)), atol=2e-3)


@pytest.mark.parametrize("negate", [False, True])
def test_blur_ig_sign_and_completeness_telescoping(video, negate):
    # with the finite-difference step equal to sigma_max / m the sum telescopes:
    # Eq. 27 = W (.) (g(X, sigma_max) - X) / std, summing to f(blurred) - f(X); Xu et al. negate it
    clf, w, b = linear(k=2)
    x = video.double().numpy()
    m, smax = 4, 1.5
    gmax = scipy_blur(x, smax, MEAN)
    over = {"output": "logit", "steps": m, "max_sigma": smax, "grad_step": smax / m, "negate": negate}
    a = explain("blur_ig", clf, video, channel_reduction="sum", normalize="none", **over)
    expected = (w[0] / STD * (gmax - x)).sum(-1) * (-1 if negate else 1)
    np.testing.assert_allclose(a.values.numpy(), expected, rtol=1e-3, atol=1e-6)
    f = lambda v: np.sum(w[0] * (v - MEAN) / STD) + b[0]  # noqa: E731
    gap = f(gmax) - f(x)
    assert float(a.values.double().sum()) == pytest.approx(-gap if negate else gap, rel=1e-3)


def test_blur_reflect_option_is_the_old_blur(video):
    from removalx_plugins.explainers.blur_ig import gaussian_blur

    for s in (0.5, 2.0, 7.0):  # 7 px: the radius reaches the frame size, replicate padding
        torch.testing.assert_close(gaussian_blur(video, s, 3.0, None), blur_frames(video, s))


# -- XRAI ------------------------------------------------------------------------------------------
def test_xrai_greedy_hand_example():
    from removalx_plugins.explainers.xrai import xrai_greedy

    attr = torch.tensor([[[4.0, 2.0, 0.0, 6.0, 1.0, 1.0]]])  # 1 x 1 x 6
    coarse = torch.tensor([[[0, 0, 0, 1, 1, 1]]])
    fine = torch.tensor([[[0, 0, 1, 1, 2, 2]]])
    # gains: coarse 0: 6/3 = 2, coarse 1: 8/3; fine 0: 3, fine 1: 3, fine 2: 1.
    # 1. fine 0 (3; the tie with fine 1 goes to the lower label): pixels 0, 1 get 3
    # 2. coarse 0: pixel 2 (0), coarse 1: 8/3, fine 1: pixels 2, 3 (3) -> fine 1: pixels 2, 3 get 3
    # 3. coarse 1: pixels 4, 5 (1), fine 2: 1 -> the tie goes to the coarser level: pixels 4, 5 get 1
    out, added = xrai_greedy(attr, [coarse, fine], min_pixel_diff=1, area_threshold=1.0)
    assert out.flatten().tolist() == [3.0, 3.0, 3.0, 3.0, 1.0, 1.0] and added == 3
    out2, added2 = xrai_greedy(attr, [coarse, fine], min_pixel_diff=3, area_threshold=1.0)
    # only regions with >= 3 uncovered pixels: coarse 1 (8/3) then coarse 0 (2)
    np.testing.assert_allclose(out2.flatten().numpy(), [2, 2, 2, 8 / 3, 8 / 3, 8 / 3], rtol=1e-6)
    assert added2 == 2


def greedy_oracle(attr: np.ndarray, levels: list[np.ndarray], min_pixel_diff: int) -> np.ndarray:
    """XRAI's Algorithm 1 with boolean masks, as the reference implementations write it."""
    masks = [lab == i for lab in levels for i in range(int(lab.max()) + 1)]
    out = np.full(attr.shape, -np.inf)
    covered = np.zeros(attr.shape, bool)
    remaining = list(range(len(masks)))
    while remaining:
        best, best_i, keep = -np.inf, None, []
        for i in remaining:
            diff = masks[i] & ~covered
            if diff.sum() < min_pixel_diff:
                continue
            keep.append(i)
            if attr[diff].mean() > best:
                best, best_i = attr[diff].mean(), i
        remaining = keep
        if best_i is None:
            break
        out[masks[best_i] & ~covered] = best
        covered |= masks[best_i]
        remaining.remove(best_i)
    if (~covered).any():
        out[~covered] = attr[~covered].mean()
    return out


def test_xrai3d_recipe_against_the_authors_pipeline(video):
    clf, w, _ = linear(k=2)
    xn = x_model(video)
    levels = [4, 8]
    a = explain("xrai3d", clf, video, output="logit", levels=levels, min_pixel_diff=8)
    # 1. IG of a linear logit from a constant baseline is (x_n - b) W for any quadrature; the
    #    baselines are the clip's min and max in model units; each map |.|-mean, normalised, averaged
    maps = [pnorm(np.abs((xn - bv) * w[0]).mean(-1)) for bv in (xn.min(), xn.max())]
    pix = (maps[0] + maps[1]) / 2
    np.testing.assert_allclose(a.meta["pixel_attribution"].numpy(), pix, atol=2e-5)
    # 2. independent 3D SLIC levels on frames min-max scaled to [-1, 1], SLICO, sigma 0.8 (the
    #    frames in the model's units with its float32 constants, so that SLIC sees the same array)
    xn = (video.double().numpy() - clf.mean.double().numpy()) / clf.std.double().numpy()
    lo = xn.min(axis=(1, 2, 3), keepdims=True)
    hi = xn.max(axis=(1, 2, 3), keepdims=True)
    frames = (xn - lo) / (hi - lo) * 2 - 1
    segs = [
        slic(frames, n_segments=n, sigma=0.8, slic_zero=True, start_label=0, channel_axis=-1) for n in levels
    ]
    for got, want in zip(a.meta["level_labels"], segs, strict=True):
        assert np.array_equal(got.numpy(), want)
    assert a.meta["nested"] is False
    # 3. the greedy ranking, then the final normalisation
    np.testing.assert_allclose(a.meta["signed"].numpy(), greedy_oracle(pix, segs, 8), atol=2e-5)
    np.testing.assert_allclose(a.values.numpy(), pnorm(greedy_oracle(pix, segs, 8)), atol=1e-4)


def test_xrai_original_pixel_attribution_option(video):
    clf, w, _ = linear(k=2, normalised=False)
    x = video.double().numpy()
    a = explain(
        "xrai3d",
        clf,
        video,
        output="logit",
        levels=[4],
        min_pixel_diff=8,
        baseline_source="constant",
        input_space="pixel",
        channel_reduction="max",
        normalize_each=False,
    )
    # XRAI: the IG maps from black and white averaged, then the signed max over RGB
    expected = (((x - 0.0) * w[0] + (x - 1.0) * w[0]) / 2).max(-1)
    np.testing.assert_allclose(a.meta["pixel_attribution"].numpy(), expected, rtol=1e-4, atol=1e-8)


# -- random maps (Sec. IV-B) -----------------------------------------------------------------------
def test_random_recipe_draws_standard_normal_values():
    video = torch.zeros(16, 64, 64, 3)
    clf = removalx.VideoClassifier(ToyClassifier(n_classes=2))
    a = removalx.Explainer.from_recipe("random", seed=0, progress=False).explain(clf, video, target=0)
    v = a.values.double()
    assert abs(float(v.mean())) < 0.02 and float(v.std()) == pytest.approx(1.0, abs=0.02)
    assert float((v < 0).double().mean()) == pytest.approx(0.5, abs=0.01)
    u = removalx.Explainer.from_recipe(
        "random", seed=0, overrides={"explainer.distribution": "uniform"}, progress=False
    )
    vu = u.explain(clf, video, target=0).values
    assert float(vu.min()) >= 0 and float(vu.max()) < 1 and float(vu.mean()) == pytest.approx(0.5, abs=0.01)


# -- the recipes carry the papers' values -----------------------------------------------------------
PAPER = {
    "gradient": {"output": "probability", "input_space": "model", "channel_reduction": "abs_mean"},
    "gradient_x_input": {"output": "probability", "input_space": "model", "channel_reduction": "abs_mean"},
    "ig": {
        "output": "probability",
        "steps": 50,
        "baseline": 0.0,
        "method": "riemann_right",
        "channel_reduction": "abs_mean",
    },
    "smoothgrad": {
        "output": "probability",
        "n_samples": 50,
        "noise_level": 0.15,
        "input_space": "model",
        "channel_reduction": "abs_sum",
    },
    "smoothgrad_sq": {
        "output": "probability",
        "n_samples": 50,
        "noise_level": 0.15,
        "input_space": "model",
        "channel_reduction": "abs_sum",
    },
    "blur_ig": {
        "output": "probability",
        "steps": 50,
        "max_sigma": 50.0,
        "grad_step": 0.01,
        "negate": False,
        "truncate": 4.0,
        "padding": "model_zero",
    },
    "xrai3d": {
        "output": "probability",
        "levels": (50, 100, 150, 250, 500, 1200),
        "steps": 50,
        "method": "riemann_right",
        "baseline_source": "clip_min_max",
        "channel_reduction": "abs_mean",
        "normalize_each": True,
        "nested": False,
        "slic_input": "frame_minmax",
        "slic_sigma": 0.8,
        "slic_zero": True,
        "min_pixel_diff": 50,
        "area_threshold": 1.0,
    },
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_recipe_settings_are_the_papers(name):
    cfg = load_recipe(name).explainer
    assert cfg is not None
    for key, value in {**PAPER[name], "normalize": "percentile", "percentile": 99.9}.items():
        assert getattr(cfg, key) == value, f"{name}.{key}"
    assert load_recipe("random").explainer.distribution == "normal"  # type: ignore[union-attr]
