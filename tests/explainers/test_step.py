"""STEP / EP-3D (STEP journal Sec. III) and XRAI on tiny clips."""

from __future__ import annotations

import itertools

import pytest
import torch

import removalx
from removalx.extremal import (
    BlurPyramid,
    SmoothMaxUpsampler,
    area_loss,
    ellipsoid_kernel,
    kernel_beta,
    smoothness_loss,
)
from removalx.filters import blur_frames
from removalx.models import VideoClassifier
from removalx.testing.data import LinearVideoModel, ToyClassifier, square_evidence, tiny_video

# Settings scaled to a 4 x 16 x 16 clip (the paper's are for 16 x 112 x 112).
TINY = {
    "areas": [0.1],
    "iterations": 200,
    "step": 2,
    "sigma": 1.5,
    "learning_rate": 0.2,
    "lambda1": 1.0,
    "smooth_sigma": 0.0,
}






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
    torch.testing.assert_close(pyr(torch.zeros(1, 4, 16, 16))[0], blur_frames(video, 5.0))


# -- the optimisation --------------------------------------------------------------------------
def test_step_preserves_the_object_and_loss_decreases(reg):
    video, ev = tiny_video(), square_evidence()
    a = explain(reg, "step", square_model(), video, kernel_size=[3, 5, 5], kernel_stride=[1, 5, 5], **TINY)
    assert a.values.shape == (4, 16, 16)
    mask = a.meta["masks"][0]
    k = int(0.1 * mask.numel())
    top = mask.flatten().topk(k).indices
    recall = float(ev.flatten()[top].float().sum() / ev.sum())  # share of the object in the top 10 %
    print(f"STEP area 0.1: object recall in top-10% = {recall:.3f} (chance 0.10)")
    assert recall >= 0.6
    assert a.meta["area_rewards"][0] > 0.9  # Phi_c of the preserved clip (clean: 0.9975)
    hist = a.meta["loss_history"]
    warm = round(0.25 * TINY["iterations"])  # L_K switches on here (lambda2 warm-up)
    assert hist[-1] < hist[warm] and hist[-1] < hist[0]
    assert a.meta["kernel_size"] == (3, 5, 5)
    assert a.meta["n_forward_method"] == TINY["iterations"] + 1
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
    "ep3d": {"explainer.iterations": 2},
    "gradient": {},
    "gradient_x_input": {},
    "ig": {"explainer.steps": 4},
    "smoothgrad": {"explainer.n_samples": 2},
    "smoothgrad_sq": {"explainer.n_samples": 2},
    "blur_ig": {"explainer.steps": 2},
    "xrai3d": {"explainer.steps": 2, "explainer.levels": [4, 8], "explainer.min_pixel_diff": 8},
    "grad_cam": {},
    "random": {},
}


def test_explainer_recipes_validate_and_run(reg):
    from removalx.recipe import builtin_recipes, load_recipe

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
