"""The six recipes of "removal-based video explanations" against hand computations.

- display (Sec. 4.5): negative relevance removed, the 30 % most important pixels kept, hot or
  cold orientation (Table 2, footnote 5), checked on hand-made attributions;
- 3D RISE's "mean when included" and Petsiuk et al.'s ``1 / (N p)`` normalisation, checked
  on three masks and two features computed by hand;
- 3D SOS window placement, checked against hand-listed window starts;
- the SLIC compactness retry, reported in the segmentation's meta when (and only when) it fires;
- every stage setting of the six recipes against Table 2 and Sec. 4.4-4.5.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from skimage.segmentation import slic

import removalx
from removalx.core.plans import SamplePlan
from removalx.core.types import Attribution, PartitionSpace
from removalx.display.visualize import render
from removalx.errors import ConfigError
from removalx.testing import ToyClassifier, tiny_video
from removalx_plugins.segmentation.slic3d import Slic3D, Slic3DConfig
from removalx_plugins.segmentation.sliding_window import SlidingWindow, SlidingWindowConfig
from removalx_plugins.summary.mask_mean import MaskMean, MaskMeanConfig
from removalx_plugins.visualization.heatmap import Heatmap, HeatmapConfig
from removalx_plugins.visualization.posneg import PosNeg, PosNegConfig

POSNEG_RECIPES = ["lime3d", "kernelshap3d", "loco_lv", "univariate_lv"]
SIX = [*POSNEG_RECIPES, "rise3d", "occlusion3d"]

# -- display (Sec. 4.5) ------------------------------------------------------------------

# ten pixels (T=1, H=2, W=5); the negatives have the largest magnitudes
TOY = torch.tensor([[[5.0, -9.0, 4.0, -8.0, 3.0], [2.0, -7.0, 1.0, 0.5, -6.0]]])
TOP3_POSITIVE = {(0, 0, 0), (0, 0, 2), (0, 0, 4)}  # 5, 4, 3: round(0.3 * 10) = 3 pixels
TOP3_ABS = {(0, 0, 1), (0, 0, 3), (0, 1, 1)}  # -9, -8, -7
GRAY = torch.full((1, 2, 5, 3), 0.5)


def _pixels(mask: torch.Tensor) -> set[tuple[int, ...]]:
    return {tuple(int(i) for i in idx) for idx in mask.nonzero()}


def _changed(frames: torch.Tensor) -> torch.Tensor:
    """``bool[T, H, W]``: pixels whose colour differs from the gray clip."""
    return (frames.int() - 128).abs().amax(-1) > 1  # 0.5 * 255 rounds to 128


@pytest.mark.parametrize("recipe", POSNEG_RECIPES)
def test_posneg_recipes_show_top_30_percent_positive_only(recipe):
    vis = removalx.load_recipe(recipe).visualization
    attr = Attribution(values=TOY.clone(), target=0)
    frames = render(GRAY, attr, vis)
    assert _pixels(_changed(frames)) == TOP3_POSITIVE
    # drawn green, never red
    shown = _changed(frames)
    assert (frames[shown][:, 1] > 128).all() and (frames[shown][:, 0] < 128).all()
    assert not ((frames[..., 0] > 128) & (frames[..., 1] < 128)).any()


def test_posneg_keeps_the_lime_display_as_an_option():
    vis = PosNeg(PosNegConfig(top_fraction=0.3, negatives="show", rank="abs"))
    frames = vis.frames(GRAY, Attribution(values=TOY.clone(), target=0))
    shown = _changed(frames)
    assert _pixels(shown) == TOP3_ABS
    assert (frames[shown][:, 0] > 128).all()  # all three are negative: red


def test_posneg_with_fewer_positives_than_the_fraction_shows_only_positives():
    values = -torch.arange(1.0, 11.0).view(1, 2, 5)
    values[0, 1, 4] = 0.25  # one positive pixel among ten
    _, shown = PosNeg(PosNegConfig(top_fraction=0.3)).scores(
        Attribution(values=values, target=0), GRAY.device
    )
    assert _pixels(shown) == {(0, 1, 4)}


def test_top_mode_mass_keeps_the_fewest_pixels_reaching_the_fraction_of_importance():
    # positives 5, 4, 3, 2, 1, 0.5 sum to 15.5; 30 % is 4.65: 5 alone is 5 >= 4.65
    _, shown = PosNeg(PosNegConfig(top_fraction=0.3, top_mode="mass")).scores(
        Attribution(values=TOY.clone(), target=0), GRAY.device
    )
    assert _pixels(shown) == {(0, 0, 0)}
    # 60 %: 9.3 -> 5 + 4 = 9 < 9.3, 5 + 4 + 3 = 12 >= 9.3
    _, shown = PosNeg(PosNegConfig(top_fraction=0.6, top_mode="mass")).scores(
        Attribution(values=TOY.clone(), target=0), GRAY.device
    )
    assert _pixels(shown) == TOP3_POSITIVE


def test_rise_heatmap_is_hot_where_important():
    vis = removalx.load_recipe("rise3d").visualization
    values = torch.tensor([[[0.9, 0.1, 0.5, 0.2, 0.3], [0.25, 0.15, 0.35, 0.4, 0.05]]])
    frames = render(GRAY, Attribution(values=values, target=0), vis)
    shown = _changed(frames)
    assert _pixels(shown) == {(0, 0, 0), (0, 0, 2), (0, 1, 3)}  # 0.9, 0.5, 0.4
    top = frames[0, 0, 0].int()
    assert top[0] > top[2]  # the most important pixel is red-ish (hot end of jet)


def test_sos_heatmap_is_cold_where_important_and_hot_as_an_option():
    vis = removalx.load_recipe("occlusion3d").visualization
    assert vis.important == "cold"
    # prediction with each window occluded: low = important
    values = torch.tensor([[[0.9, 0.1, 0.5, 0.2, 0.3], [0.25, 0.15, 0.35, 0.4, 0.05]]])
    attr = Attribution(values=values, target=0, meta={"lower_is_important": True})
    frames = render(GRAY, attr, vis)
    shown = _changed(frames)
    assert _pixels(shown) == {(0, 1, 4), (0, 0, 1), (0, 1, 1)}  # 0.05, 0.1, 0.15
    lowest = frames[0, 1, 4].int()
    assert lowest[2] > lowest[0]  # the most important pixel is blue-ish (cold end of jet)
    hot = render(GRAY, attr, {**vis.model_dump(), "important": "hot"})
    assert torch.equal(_changed(hot), shown)
    assert hot[0, 1, 4, 0] > hot[0, 1, 4, 2]


def test_display_options_are_checked():
    with pytest.raises(ConfigError, match="stretch_quantiles"):
        Heatmap(HeatmapConfig(stretch_quantiles=(0.5, 0.5)))
    with pytest.raises(ConfigError, match="mass"):
        PosNeg(PosNegConfig(top_mode="mass", negatives="show", rank="value"))


# -- 3D RISE: mean when included (Table 2) -----------------------------------------------

# three samples, two features, two pixels (T=1, H=1, W=2); soft masks as after upsampling
Z3 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
KEEP3 = torch.tensor([[1.0, 0.2], [0.3, 1.0], [1.0, 0.9]]).view(3, 1, 1, 2)
Y3 = torch.tensor([0.9, 0.2, 0.6])
FULL = 1.0
# by hand: sum_i y_i m_i(p) = (0.9 + 0.06 + 0.6, 0.18 + 0.2 + 0.54) = (1.56, 0.92)
#          sum_i m_i(p)     = (2.3, 2.1);  sum_i y_i z_ij = (1.5, 0.8);  sum_i z_ij = (2, 2)
HAND = {
    ("coverage", False): ([1.56 / 2.3, 0.92 / 2.1], [1.5 / 2, 0.8 / 2]),
    ("p", False): ([1.56 / 1.5, 0.92 / 1.5], [1.5 / 1.5, 0.8 / 1.5]),  # N p = 3 x 0.5
    ("coverage", True): ([2.56 / 3.3, 1.92 / 3.1], [2.5 / 3, 1.8 / 3]),  # + clean clip, m = z = 1
    ("p", True): ([2.56 / 2.0, 1.92 / 2.0], [2.5 / 2.0, 1.8 / 2.0]),  # N p = 4 x 0.5
}


def _mask_mean(
    normalize: str, include_original: bool, keep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    summary = MaskMean(MaskMeanConfig(normalize=normalize, include_original=include_original))
    space = PartitionSpace(torch.tensor([[[0, 1]]]))
    summary.begin(space, SamplePlan(Z3, meta={"p": 0.5}), {"full": FULL})
    summary.update(Z3[:2], keep[:2], Y3[:2], None)  # two batches
    summary.update(Z3[2:], keep[2:], Y3[2:], None)
    values, fv = summary.finalize(space)
    return values, fv


@pytest.mark.parametrize(("normalize", "include_original"), sorted(HAND))
def test_mask_mean_equals_hand_computation(normalize, include_original):
    values, fv = _mask_mean(normalize, include_original, KEEP3)
    pixel, feature = HAND[(normalize, include_original)]
    torch.testing.assert_close(values.double().flatten(), torch.tensor(pixel, dtype=torch.float64))
    torch.testing.assert_close(fv.double(), torch.tensor(feature, dtype=torch.float64))


@pytest.mark.parametrize(("normalize", "include_original"), sorted(HAND))
def test_mask_mean_feature_values_agree_with_values_on_hard_masks(normalize, include_original):
    hard = Z3.view(3, 1, 1, 2)  # pixel j is exactly feature j
    values, fv = _mask_mean(normalize, include_original, hard)
    torch.testing.assert_close(values.flatten(), fv)


def test_mask_mean_default_is_mean_when_included():
    assert MaskMeanConfig().normalize == "coverage"
    summary = removalx.load_recipe("rise3d").summary
    assert (summary.normalize, summary.include_original) == ("coverage", True)


def test_rise3d_default_recipe_equals_mean_when_included():
    seed, n, target, frames, size = 5, 30, 1, 4, 8
    video = tiny_video(frames=frames, size=size, seed=1)
    toy = removalx.VideoClassifier(ToyClassifier(n_classes=3, seed=2))
    attr = removalx.Explainer.from_recipe(
        "rise3d",
        seed=seed,
        overrides={"segmentation.cells": [2, 2, 2], "sample_selection.n_samples": n},
        progress=False,
    ).explain(toy, video, target=target)
    gen = torch.Generator().manual_seed(seed)
    torch.randint(0, 2**31 - 1, (1,), generator=gen)  # soft_grid draws its seed first
    plan = removalx.get_registry().make("feature_selection", "bernoulli", {"p": 0.5}).plan(8, n, gen)
    assert plan.digest() == attr.meta["plan_digest"]
    masks = attr.space.render(plan.z, torch.arange(n)).double()
    with torch.no_grad():
        y = toy((video[None].double() * masks[..., None]).float()).softmax(-1).double()[:, target]
        full = float(toy(video[None]).softmax(-1)[0, target])
    expected = (torch.einsum("n,nthw->thw", y, masks) + full) / (masks.sum(0) + 1)
    assert expected.std() > 1e-4
    torch.testing.assert_close(attr.values.double(), expected, atol=1e-5, rtol=1e-5)
    fexp = ((y[:, None] * plan.z.double()).sum(0) + full) / (plan.z.double().sum(0) + 1)
    torch.testing.assert_close(attr.feature_values.double(), fexp, atol=1e-5, rtol=1e-5)


# -- 3D SOS window placement ------------------------------------------------------------


def test_sliding_window_relative_placement_matches_hand_listed_windows():
    space = SlidingWindow(SlidingWindowConfig()).segment(torch.zeros(16, 112, 112, 3), torch.Generator())
    assert space.grid == (7, 13, 13)  # 4 x 2 - 2 + 1 and 7 x 2 - 2 + 1 positions
    t_axis, h_axis, _ = space.axes
    for k in range(7):  # window of 16 / 4 = 4 frames every 2 frames
        assert t_axis[k].nonzero().flatten().tolist() == list(range(2 * k, 2 * k + 4))
    for k in range(13):  # window of 112 / 7 = 16 pixels every 8 pixels
        assert h_axis[k].nonzero().flatten().tolist() == list(range(8 * k, 8 * k + 16))


def test_sliding_window_relative_placement_stays_inside_the_clip():
    space = SlidingWindow(SlidingWindowConfig()).segment(torch.zeros(9, 50, 30, 3), torch.Generator())
    for axis, size in zip(space.axes, (9, 50, 30)):
        assert (axis.sum(1) == axis[0].sum()).all()  # equal windows, none cut at the border
        assert axis[0, 0] == 1 and axis[-1, size - 1] == 1  # first at 0, last ends at the border
        assert (axis.sum(0) > 0).all()  # every pixel covered


def test_sliding_window_stride_without_window_is_refused():
    with pytest.raises(ConfigError, match="stride"):
        SlidingWindow(SlidingWindowConfig(stride=(1, 1, 1))).segment(
            torch.zeros(4, 8, 8, 3), torch.Generator()
        )


# -- SLIC compactness retry ---------------------------------------------------------------


def _plain_slic_count(video: torch.Tensor, cfg: Slic3DConfig, compactness: float) -> int:
    labels = slic(
        video.numpy().astype(np.float64),
        n_segments=cfg.n_segments,
        compactness=compactness,
        spacing=np.asarray(cfg.spacing, dtype=np.float64),
        max_num_iter=cfg.max_num_iter,
        channel_axis=-1,
        start_label=0,
    )
    return int(labels.max()) + 1


def test_slic_retry_is_reported_when_it_fires():
    noise = torch.rand(4, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    cfg = Slic3DConfig(n_segments=40, compactness=10)
    before = _plain_slic_count(noise, cfg, 10)
    assert before < cfg.min_fraction * cfg.n_segments  # plain SLIC collapses on noise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        space = Slic3D(cfg).segment(noise, torch.Generator())
    retry = space.meta["compactness_retry"]
    assert retry["from"] == 10 and retry["to"] > 10
    assert retry["segments_before"] == before
    assert retry["segments_after"] == space.n_features == _plain_slic_count(noise, cfg, retry["to"])
    assert retry["tried"][0] == 10 and retry["to"] in retry["tried"]


def test_slic_retry_is_absent_when_it_does_not_fire():
    video = tiny_video(4, 16)
    cfg = Slic3DConfig(n_segments=40, compactness=20, spacing=(0.2, 1.0, 1.0))
    space = Slic3D(cfg).segment(video, torch.Generator())
    assert space.n_features >= cfg.min_fraction * cfg.n_segments
    assert "compactness_retry" not in space.meta
    assert space.meta["compactness_used"] == 20


def test_slic_retry_can_be_turned_off():
    noise = torch.rand(4, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    cfg = Slic3DConfig(n_segments=40, compactness=10, min_fraction=0.0)
    space = Slic3D(cfg).segment(noise, torch.Generator())
    assert "compactness_retry" not in space.meta
    assert space.n_features == _plain_slic_count(noise, cfg, 10)


# -- every stage setting against Table 2 and Sec. 4.4-4.5 -------------------------------

SLIC_200 = {"name": "slic3d", "n_segments": 200, "compactness": 20.0, "spacing": (0.2, 1.0, 1.0)}
TABLE2 = {
    "lime3d": {
        "segmentation": SLIC_200,
        "feature_selection": {"name": "bernoulli", "p": 0.5},
        "sample_selection": {"name": "fixed", "n_samples": 1000},
        "summary": {"name": "linear", "kernel_width": 0.25, "alpha": 1.0, "include_original": True},
        "visualization": {"name": "posneg", "negatives": "drop", "rank": "value"},
    },
    "kernelshap3d": {
        "segmentation": SLIC_200,
        "feature_selection": {"name": "shapley_kernel", "paired": True},
        "sample_selection": {"name": "fixed", "n_samples": 1000},
        "summary": {"name": "shapley"},
        "visualization": {"name": "posneg", "negatives": "drop", "rank": "value"},
    },
    "rise3d": {
        "segmentation": {"name": "soft_grid", "cells": (4, 7, 7), "random_shift": False},
        "feature_selection": {"name": "bernoulli", "p": 0.5},
        "sample_selection": {"name": "fixed", "n_samples": 1000},
        "summary": {"name": "mask_mean", "normalize": "coverage"},
        "visualization": {"name": "heatmap", "negatives": "drop", "important": "hot"},
    },
    "loco_lv": {
        "segmentation": SLIC_200,
        "feature_selection": {"name": "leave_one_out"},
        "sample_selection": {"name": "exhaustive"},
        "summary": {"name": "difference", "base": "full"},
        "visualization": {"name": "posneg", "negatives": "drop", "rank": "value"},
    },
    "univariate_lv": {
        "segmentation": SLIC_200,
        "feature_selection": {"name": "only_one"},
        "sample_selection": {"name": "exhaustive"},
        "summary": {"name": "difference", "base": "empty"},
        "visualization": {"name": "posneg", "negatives": "drop", "rank": "value"},
    },
    "occlusion3d": {
        "segmentation": {
            "name": "sliding_window",
            "window": None,
            "divisions": (4, 7, 7),
            "steps": (2, 2, 2),
        },
        "feature_selection": {"name": "leave_one_out"},
        "sample_selection": {"name": "exhaustive"},
        "summary": {"name": "value"},
        "visualization": {"name": "heatmap", "negatives": "drop", "important": "cold"},
    },
}


@pytest.mark.parametrize("recipe", SIX)
def test_recipe_settings_follow_table_2(recipe):
    r = removalx.load_recipe(recipe)
    for stage, expected in TABLE2[recipe].items():
        got = getattr(r, stage).model_dump()
        assert {k: got[k] for k in expected} == expected, stage
    # common to all six (Table 2 and Sec. 4.4-4.5): black removal, prediction, display
    assert r.removal.model_dump() == {"name": "constant", "value": 0.0}
    assert r.behavior.name == "probability"
    vis = r.visualization
    assert (vis.top_fraction, vis.top_mode, vis.stretch, vis.stretch_quantiles) == (
        0.3,
        "pixels",
        True,
        (0.0, 1.0),
    )


def test_slic_retry_reaches_the_attribution_meta():
    from removalx.pipeline import Explainer

    noise = torch.rand(4, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    ex = Explainer.from_recipe(
        "loco_lv", overrides={"segmentation.n_segments": 40, "segmentation.compactness": 10}, progress=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attr = ex.explain(lambda x: x.mean(dim=(1, 2, 3)), noise)
    retry = attr.meta["segmentation"]["compactness_retry"]
    assert retry["from"] == 10 and retry["segments_after"] == attr.meta["n_features"]
