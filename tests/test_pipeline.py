"""The streaming pipeline: meta, caching of model outputs, saving, the one-call API."""

from __future__ import annotations

import pytest
import torch

import removalx
from removalx.testing import ToyClassifier, tiny_video

SMALL = {"segmentation.name": "grid3d", "segmentation.cells": [2, 2, 2], "sample_selection.n_samples": 20}


def _model():
    return removalx.VideoClassifier(ToyClassifier())


def test_meta_counts_and_timings():
    a = removalx.Explainer.from_recipe("lime3d", overrides=SMALL, progress=False).explain(
        _model(), tiny_video()
    )
    # 1 clean pass for the target (which also gives the "full" base case) + 20 samples
    assert a.meta["n_forward"] == 21
    assert a.meta["base"]["full"] == pytest.approx(float(_model()(tiny_video()[None]).softmax(-1).max()))
    assert a.meta["n_samples"] == 20 and a.meta["n_features"] == 8
    for k in ("segmentation", "selection", "perturb", "model", "summary", "total"):
        assert a.meta["timings"][k] >= 0
    assert a.meta["recipe"]["name"] == "lime3d"
    assert a.values.dtype == torch.float32 and a.values.device.type == "cpu"
    assert a.feature_values.shape == (8,)


def test_summary_change_reuses_model_outputs():
    cache: dict = {}
    model = _model()
    video = tiny_video()
    first = removalx.Explainer.from_recipe("kernelshap3d", overrides=SMALL, progress=False)
    a = first.explain(model, video, cache=cache)
    n_after_first = model.n_forward
    other = removalx.Explainer.from_recipe(
        "kernelshap3d", overrides={**SMALL, "summary.name": "linear"}, progress=False
    )
    b = other.explain(model, video, cache=cache)
    assert b.meta["cached_outputs"] is True
    assert model.n_forward - n_after_first == 1  # only the clean pass that resolves the target
    fresh = other.explain(_model(), video)
    torch.testing.assert_close(b.feature_values, fresh.feature_values)
    assert not torch.allclose(a.feature_values, b.feature_values)


def test_removal_change_does_not_hit_cache():
    cache: dict = {}
    model = _model()
    removalx.Explainer.from_recipe("lime3d", overrides=SMALL, progress=False).explain(
        model, tiny_video(), cache=cache
    )
    b = removalx.Explainer.from_recipe(
        "lime3d", overrides={**SMALL, "removal.value": 0.5}, progress=False
    ).explain(model, tiny_video(), cache=cache)
    assert b.meta["cached_outputs"] is False


def test_save_and_load(tmp_path):
    a = removalx.explain(
        _model(),
        tiny_video(),
        recipe="loco_lv",
        overrides={"segmentation.name": "grid3d", "segmentation.cells": [2, 2, 2]},
        progress=False,
    )
    p = a.save(tmp_path / "a.pt")
    b = removalx.Attribution.load(p)
    assert torch.equal(a.values, b.values) and b.target == a.target
    assert torch.equal(b.space.labels, a.space.labels)


def test_any_callable_model_in_thwc():
    def f(x):  # float[B, T, H, W, C] -> logits [B, 2]
        m = x[..., 0].mean(dim=(1, 2, 3))
        return torch.stack([m, -m], 1)

    a = removalx.Explainer.from_recipe(
        "occlusion3d",
        overrides={
            "segmentation.window": [2, 8, 8],
            "segmentation.stride": [2, 8, 8],
            "summary.name": "difference",
            "behavior.name": "logit",
        },
        progress=False,
    ).explain(f, tiny_video(), target=0)
    # logit = mean of the red channel: removing a window (black) lowers it by the window's share
    video = tiny_video()
    expected = video[..., 0].reshape(2, 2, 2, 8, 2, 8).sum(dim=(1, 3, 5)) / video[..., 0].numel()
    torch.testing.assert_close(a.feature_values, expected.reshape(-1), atol=1e-6, rtol=1e-5)


def test_nn_module_is_wrapped_bcthw():
    a = removalx.Explainer.from_recipe("lime3d", overrides=SMALL, progress=False).explain(
        ToyClassifier(), tiny_video()
    )
    assert a.values.shape == (4, 16, 16)


def test_value_summary_is_lower_is_important():
    a = removalx.Explainer.from_recipe(
        "occlusion3d",
        overrides={"segmentation.window": [2, 8, 8], "segmentation.stride": [2, 8, 8]},
        progress=False,
    ).explain(_model(), tiny_video())
    assert a.lower_is_important
    torch.testing.assert_close(a.importance(), -a.values)


def test_pass_counts_are_per_explanation():
    model = _model()
    ex = removalx.Explainer.from_recipe("ig", overrides={"explainer.steps": 4}, progress=False)
    first = ex.explain(model, tiny_video(), target=0)
    second = ex.explain(model, tiny_video(), target=0)
    assert first.meta["n_backward"] > 0
    assert (second.meta["n_forward"], second.meta["n_backward"]) == (
        first.meta["n_forward"],
        first.meta["n_backward"],
    )
