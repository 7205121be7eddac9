"""STEP / EP-3D (STEP journal Sec. III) and XRAI on tiny clips."""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy import ndimage

import removalx
from removalx.core.classifier import VideoClassifier
from removalx.testing.data import LinearVideoModel, ToyClassifier, square_evidence, tiny_video
from removalx_plugins.machinery.extremal import (
    BlurPyramid,
    SmoothMaxUpsampler,
    area_loss,
    ellipsoid_kernel,
    kernel_beta,
    smoothness_loss,
)

# Settings scaled to a 4 x 16 x 16 clip (the paper's are for 16 x 112 x 112): lambda_2 = lambda_1
# (growing) after the first quarter, as the `step_torchray` recipe does.
TINY = {
    "areas": [0.1],
    "iterations": 200,
    "step": 2,
    "sigma": 1.5,
    "learning_rate": 0.2,
    "lambda1": 1.0,
    "lambda_growth": 1.0035,
    "smooth_sigma": 0.0,
}
TINY_L2 = {"lambda2": 1.0, "lambda2_start": 50, "lambda2_grows": True}


def square_model() -> VideoClassifier:
    """Logit 0 = +3 on the clean clip, driven by the moving square (class 1 is its negative)."""
    video, ev = tiny_video(), square_evidence()
    w = torch.zeros(2, 4, 16, 16, 3)
    w[0][ev] = 1.0
    w[0][~ev] = -float(ev.sum()) / float((~ev).sum())
    w[1] = -w[0]
    w = w * (3.0 / (w[0] * video).sum().abs())
    return VideoClassifier(LinearVideoModel(w), layout="BTHWC")


def explain(reg, name, model, video, **cfg):
    recipe = {"name": name, "seed": 0, "explainer": {"name": name, **cfg}}
    return removalx.Explainer.from_recipe(recipe, registry=reg, progress=False).explain(model, video, 0)


# -- Eq. 6-10 on hand-made cases -------------------------------------------------------------
def test_ellipsoid_kernel_eq9_eq10():
    k = ellipsoid_kernel((3, 3, 3))
    # (2t/2 - 1)^2 + ... <= 1: the centre and its 6 face neighbours (corners/edges are > 1).
    raw = torch.zeros(3, 3, 3)
    raw[1, 1, 1] = 1
    for d in ((0, 1, 1), (2, 1, 1), (1, 0, 1), (1, 2, 1), (1, 1, 0), (1, 1, 2)):
        raw[d] = 1
    torch.testing.assert_close(k, raw / 7)
    k8 = ellipsoid_kernel((8, 11, 11))
    assert k8.shape == (8, 11, 11) and float(k8.sum()) == pytest.approx(1.0)
    assert k8[4, 5, 5] > 0 and k8[0, 0, 0] == 0  # centre in, corner out
    assert torch.equal(k8, k8.flip(0)) and torch.equal(k8, k8.flip(1)) and torch.equal(k8, k8.transpose(1, 2))


def test_beta_eq8_and_area_loss_eq6():
    assert kernel_beta((16, 112, 112), (8, 11, 11)) == pytest.approx(16 * 112 * 112 / (23 * 122 * 122))
    m = torch.tensor([[0.0, 1.0, 0.5, 0.0]])
    # sorted desc (1, .5, 0, 0) vs template v=0.5: (1, 1, 0, 0) -> mean((0, .25, 0, 0)) = 1/16
    assert float(area_loss(m, [0.5])[0]) == pytest.approx(1 / 16)
    # L_K = L_S^{beta v}(M * K): a 2x2x2 mean kernel with stride 2 on a 2x4x4 mask.
    mask = torch.zeros(1, 2, 4, 4)
    mask[0, :, :2, :2] = 1.0
    kern = torch.full((2, 2, 2), 1 / 8)
    beta = kernel_beta((2, 4, 4), (2, 2, 2))
    assert beta == pytest.approx(32 / (3 * 5 * 5))
    conv = torch.tensor([1.0, 0.0, 0.0, 0.0])  # the 4 stride-2 windows
    ones = round(beta * 0.25 * 4)
    ref = torch.zeros(4)
    ref[:ones] = 1
    expect = float(((conv.sort(descending=True).values - ref) ** 2).mean())
    got = float(smoothness_loss(mask, [0.25], kern, (2, 2, 2), beta)[0])
    assert got == pytest.approx(expect)


def test_smooth_max_upsampler_and_blur_pyramid():
    up = SmoothMaxUpsampler((16, 16), step=4, sigma=4.0)
    assert up.seed_shape == (4, 4)
    # smooth max = softmax-weighted mean of k(d) * seed: slightly below the hard max
    torch.testing.assert_close(up(torch.ones(2, 4, 4)), torch.ones(2, 16, 16), atol=0.05, rtol=0)
    hard = SmoothMaxUpsampler((16, 16), step=4, sigma=4.0, coldness=float("inf"))
    torch.testing.assert_close(hard(torch.ones(2, 4, 4)), torch.ones(2, 16, 16), atol=0.01, rtol=0)
    assert float(up(torch.zeros(4, 4)).abs().max()) == 0.0
    one = torch.zeros(4, 4)
    one[1, 1] = 1.0
    m = up(one)
    assert float(m[5, 5]) == pytest.approx(1.0, abs=1e-4) and float(m[15, 15]) < 0.05
    video = tiny_video()
    pyr = BlurPyramid(video, levels=8, max_blur=5.0)
    torch.testing.assert_close(pyr(torch.ones(1, 4, 16, 16))[0], video)
    # m = 0 is the clip blurred with max_blur and zero borders (TorchRay's imsmooth, radius 4 sigma)
    oracle = torch.from_numpy(
        ndimage.gaussian_filter(video.double().numpy(), (0, 5, 5, 0), mode="constant", truncate=4.0)
    )
    torch.testing.assert_close(pyr(torch.zeros(1, 4, 16, 16))[0], oracle.float(), atol=1e-6, rtol=0)
    # m = 3/7 lies on level 3 exactly: sigma = (1 - 3/7) x 5
    sig3 = (1 - 3 / 7) * 5.0
    oracle3 = ndimage.gaussian_filter(
        video.double().numpy(), (0, sig3, sig3, 0), mode="constant", radius=(0, 12, 12, 0)
    )  # radius ceil(4 sigma) = 12
    got3 = pyr(torch.full((1, 4, 16, 16), 3 / 7))[0]
    torch.testing.assert_close(got3, torch.from_numpy(oracle3).float(), atol=1e-5, rtol=0)


# -- the optimisation --------------------------------------------------------------------------
def test_step_preserves_the_object_and_loss_decreases(reg):
    video, ev = tiny_video(), square_evidence()
    a = explain(
        reg, "step", square_model(), video, kernel_size=[3, 5, 5], kernel_stride=[1, 5, 5], **TINY, **TINY_L2
    )
    assert a.values.shape == (4, 16, 16)
    mask = a.meta["masks"][0]
    k = int(0.1 * mask.numel())
    top = mask.flatten().topk(k).indices
    recall = float(ev.flatten()[top].float().sum() / ev.sum())  # share of the object in the top 10 %
    print(f"STEP area 0.1: object recall in top-10% = {recall:.3f} (chance 0.10)")
    assert recall >= 0.6
    assert a.meta["area_rewards"][0] > 0.9  # Phi_c of the preserved clip (clean: 0.9975)
    hist = a.meta["loss_history"]
    warm = TINY_L2["lambda2_start"]  # L_K switches on here
    assert hist[-1] < hist[warm] and hist[-1] < hist[0]
    assert a.meta["kernel_size"] == (3, 5, 5)
    assert a.meta["n_forward_method"] == TINY["iterations"] + 2  # + the final masks and the clean clip
    assert a.meta["n_backward_method"] == TINY["iterations"]


def test_step_defaults_clip_the_kernel_and_run(reg):
    video = tiny_video()
    a = explain(reg, "step", VideoClassifier(ToyClassifier()), video, iterations=3, areas=[0.1, 0.2])
    assert a.meta["kernel_size"] == (4, 11, 11)  # T_K = 8 clipped to the 4 frames
    assert a.meta["masks"].shape == (2, 4, 16, 16) and a.values.shape == (4, 16, 16)
    b = explain(
        reg, "step", VideoClassifier(ToyClassifier()), video, iterations=3, areas=[0.1, 0.2], init="uniform"
    )
    c = explain(
        reg, "step", VideoClassifier(ToyClassifier()), video, iterations=3, areas=[0.1, 0.2], init="uniform"
    )
    assert torch.equal(b.values, c.values)  # seeded init


def test_ep3d_runs_without_smoothness_term(reg):
    video, ev = tiny_video(), square_evidence()
    a = explain(reg, "ep3d", square_model(), video, **TINY)
    assert "kernel_size" not in a.meta and a.meta["method"] == "ep3d"
    mask = a.meta["masks"][0]
    top = mask.flatten().topk(int(0.1 * mask.numel())).indices
    recall = float(ev.flatten()[top].float().sum() / ev.sum())
    print(f"EP-3D area 0.1: object recall in top-10% = {recall:.3f}")
    assert recall >= 0.5


def test_black_box_callable_raises_model_error(reg):
    from removalx.errors import ModelError

    def black_box(x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3, 4))
        return torch.stack([m, -m], 1)

    for name in ("step", "ep3d", "xrai"):
        with pytest.raises(ModelError, match="differentiable"):
            explain(reg, name, black_box, tiny_video(), iterations=1) if name != "xrai" else explain(
                reg, name, black_box, tiny_video()
            )


# -- XRAI --------------------------------------------------------------------------------------
def test_xrai_levels_nest_and_map(reg):
    video = tiny_video()
    a = explain(
        reg, "xrai", VideoClassifier(ToyClassifier()), video, levels=[4, 8, 16], steps=4, min_pixel_diff=8
    )
    levels = a.meta["level_labels"]
    assert len(levels) == 3
    for coarse, fine in itertools.pairwise(levels):
        pairs = torch.unique(torch.stack([fine.flatten(), coarse.flatten()]), dim=1)
        # every fine region maps to exactly one coarse region
        assert pairs.shape[1] == int(fine.max()) + 1
        assert int(fine.max()) >= int(coarse.max())
    assert a.values.shape == (4, 16, 16) and torch.isfinite(a.values).all()
    assert a.meta["regions_added"] >= 1
    # XRAI's map is constant on each newly added region; the best region has the top value
    assert float(a.values.max()) >= float(a.meta["pixel_attribution"].mean())


# -- recipes -----------------------------------------------------------------------------------
MY_RECIPES = {
    "step": {"explainer.iterations": 2},
    "step_logit": {"explainer.iterations": 2},
    "step_torchray": {"explainer.iterations": 2},
    "ep3d": {"explainer.iterations": 2},
    "gradient": {},
    "gradient_x_input": {},
    "ig": {"explainer.steps": 4},
    "smoothgrad": {"explainer.n_samples": 2},
    "smoothgrad_sq": {"explainer.n_samples": 2},
    "blur_ig": {"explainer.steps": 2},
    "xrai3d": {"explainer.steps": 2, "explainer.levels": [4, 8], "explainer.min_pixel_diff": 8},
    "grad_cam": {},
    "grad_cam_step": {},
    "random": {},
}


def test_explainer_recipes_validate_and_run(reg):
    from removalx.core.recipe import builtin_recipes, load_recipe

    r = reg
    paths = builtin_recipes()
    video = tiny_video()
    model = VideoClassifier(ToyClassifier())
    for name, over in MY_RECIPES.items():
        recipe = load_recipe(paths[name], registry=r)
        assert not recipe.is_pipeline and "Sec." in recipe.reference
        ex = removalx.Explainer.from_recipe(paths[name], overrides=over, registry=r, progress=False)
        assert ex.explain(model, video).values.shape == (4, 16, 16)


@pytest.mark.parametrize(
    ("name", "cfg"),
    [("step", {"iterations": 3}), ("ep3d", {"iterations": 3}), ("xrai", {"levels": [4, 8], "steps": 2})],
)
def test_conformance_check(reg, name, cfg):
    from removalx.testing import check_plugin

    check_plugin("explainer", name, config=cfg, registry=reg)


# -- the authors' schedule and final map, against hand computations ------------------------------
def test_lambda_schedule_authors_and_torchray_values():
    from removalx_plugins.machinery.extremal import lambda_schedule

    # STEP authors: lambda_1 = 300 x 1.0008668^i; lambda_2 = 0 for i <= 100, then 300 (constant)
    authors = {"lambda1": 300.0, "growth": 1.0008668, "lambda2": 300.0, "lambda2_start": 101}
    assert lambda_schedule(0, **authors) == (300.0, 0.0)
    l1, l2 = lambda_schedule(100, **authors)
    assert l1 == pytest.approx(300 * 1.0008668**100) and l2 == 0.0
    assert lambda_schedule(101, **authors)[1] == 300.0
    # last of 1200 iterations: 300 exp(1199 ln 1.0008668) = 847.7837
    l1, l2 = lambda_schedule(1199, **authors)
    assert l1 == pytest.approx(847.7837, abs=1e-3) and l2 == 300.0
    # step_torchray: lambda_1 = 300 x 1.0035^i; lambda_2 = 0 for the first 200 (25 % of 800), then lambda_1
    tr = {"lambda1": 300.0, "growth": 1.0035, "lambda2": 300.0, "lambda2_start": 200, "lambda2_grows": True}
    assert lambda_schedule(199, **tr)[1] == 0.0
    l1, l2 = lambda_schedule(200, **tr)
    assert l1 == l2 == pytest.approx(300 * 1.0035**200)  # = 603.3879
    assert lambda_schedule(799, **tr)[0] == pytest.approx(4892.2128, abs=1e-3)  # 300 x 1.0035^799


def test_step_loop_follows_the_schedule(reg):
    video = tiny_video()
    model = VideoClassifier(ToyClassifier())
    base = {"iterations": 103, "areas": [0.1], "step": 4, "sigma": 4.0}
    kernel = {"kernel_size": [3, 5, 5], "kernel_stride": [1, 5, 5]}  # 18 windows, one of them ~1
    # the authors' lambda_2: 0 up to iteration 100, then 300
    a = explain(reg, "step", model, video, **base, **kernel)
    lam1, lam2 = a.meta["lambda1_history"], a.meta["lambda2_history"]
    assert lam2[:101] == [0.0] * 101 and lam2[101:] == [300.0, 300.0]
    assert lam1[0] == 300.0 and lam1[102] == pytest.approx(300 * 1.0008668**102)
    # L_K enters the energy exactly from iteration 101 on: same run without it differs only there
    b = explain(reg, "step", model, video, **base, **kernel, lambda2=0.0)
    assert a.meta["loss_history"][:101] == b.meta["loss_history"][:101]
    assert a.meta["loss_history"][101] > b.meta["loss_history"][101]
    e = explain(reg, "ep3d", model, video, **base)
    assert e.meta["lambda2_history"] == [0.0] * 103 and e.meta["loss_history"] == b.meta["loss_history"]


def test_final_map_is_the_authors_smoothing_of_the_summed_masks(reg):
    from skimage.filters import gaussian

    video = tiny_video(frames=2, size=96)  # > radius 40: the border rule matters
    a = explain(reg, "ep3d", VideoClassifier(ToyClassifier()), video, iterations=2, areas=[0.1, 0.2], step=4)
    summed = a.meta["masks"].sum(0).double().numpy()  # sum over the areas
    # the authors' post-processing: skimage.filters.gaussian(sigma=10) on each frame
    oracle = torch.stack([torch.from_numpy(gaussian(f, sigma=10)) for f in summed]).float()
    torch.testing.assert_close(a.values, oracle, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("reward", "expect"), [("probability", 0.7310586), ("logit", 1.0), ("log_probability", -0.3132617)]
)
def test_reward_kinds_by_hand(reg, reward, expect):
    # constant logits (1, 0): Phi_c = e / (e + 1) = 0.7310586, log Phi_c = -0.3132617, logit 1
    model = VideoClassifier(
        LinearVideoModel(torch.zeros(2, 4, 16, 16, 3), torch.tensor([1.0, 0.0])), layout="BTHWC"
    )
    a = explain(reg, "ep3d", model, tiny_video(), iterations=2, areas=[0.1], reward=reward)
    assert a.meta["reward_history"] == pytest.approx([expect, expect], abs=1e-6)
    assert a.meta["area_rewards"] == pytest.approx([expect], abs=1e-6)


AUTHORS = {
    "iterations": 1200,
    "learning_rate": 0.05,
    "momentum": 0.9,
    "lambda1": 300.0,
    "lambda_growth": 1.0008668,
    "step": 7,
    "sigma": 11.0,
    "coldness": 20.0,
    "levels": 8,
    "max_blur": 20.0,
    "blur_padding": "zeros",
    "areas": (0.05, 0.10, 0.15, 0.20),
    "init": "ones",
    "jitter": False,
    "smooth_sigma": 10.0,
}
AUTHORS_STEP = {
    "kernel_size": (8, 11, 11),
    "kernel_stride": (1, 11, 11),
    "lambda2": 300.0,
    "lambda2_start": 101,
}


def test_defaults_and_recipes_are_the_authors_settings():
    from removalx.core.recipe import load_recipe
    from removalx_plugins.explainers.ep3d import EP3DConfig
    from removalx_plugins.explainers.step import STEPConfig

    step, ep3d = STEPConfig(), EP3DConfig()
    for key, value in {**AUTHORS, **AUTHORS_STEP, "reward": "probability", "lambda2_grows": False}.items():
        assert getattr(step, key) == value, key
        assert getattr(load_recipe("step").explainer, key) == value, key
    for key, value in AUTHORS.items():
        assert getattr(ep3d, key) == value and getattr(load_recipe("ep3d").explainer, key) == value, key
    logit = load_recipe("step_logit").explainer
    assert (
        logit.reward == "logit"
        and logit.model_copy(update={"reward": "probability"}) == load_recipe("step").explainer
    )
    tr = load_recipe("step_torchray").explainer
    assert (tr.iterations, tr.learning_rate, tr.lambda_growth, tr.sigma) == (800, 0.01, 1.0035, 21.0)
    assert (tr.lambda2, tr.lambda2_start, tr.lambda2_grows, tr.reward) == (300.0, 200, True, "probability")
