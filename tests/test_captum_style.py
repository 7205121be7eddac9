"""Captum-style calls of ``Explainer.explain``: model-input layouts, tensor/list targets, batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import removalx
from removalx.errors import TargetError, VideoError
from removalx.testing.data import ToyClassifier, tiny_video
from removalx.video.layouts import split_targets

RECIPE = {
    "segmentation": {"name": "grid3d", "cells": [2, 2, 2]},
    "feature_selection": {"name": "bernoulli", "p": 0.5},
    "sample_selection": {"name": "fixed", "n_samples": 16},
    "summary": {"name": "linear"},
}


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    model = ToyClassifier()  # BCTHW, as a torchvision / Captum user has it
    ex = removalx.Explainer.from_recipe(RECIPE, seed=3, progress=False)
    clips = [tiny_video(frames=4, size=16, seed=s) for s in (0, 1)]
    singles = {(i, t): ex.explain_clip(model, c, t) for i, c in enumerate(clips) for t in (0, 2)}
    return model, ex, clips, singles


def test_captum_input_and_tensor_target_match_the_clip_path(setup) -> None:  # type: ignore[no-untyped-def]
    model, ex, clips, singles = setup
    x = clips[0].permute(3, 0, 1, 2)[None]  # [1, C, T, H, W]
    out = ex.explain(model, x, target=torch.tensor([2]))
    assert isinstance(out, list) and len(out) == 1  # a batch in, a list out
    torch.testing.assert_close(out[0].values, singles[(0, 2)].values, rtol=0, atol=0)
    assert out[0].target == 2


@pytest.mark.parametrize(
    ("layout", "perm"),
    [("BTCHW", (0, 1, 4, 2, 3)), ("BTHWC", (0, 1, 2, 3, 4)), ("BCTHW", (0, 4, 1, 2, 3))],
)
def test_batch_layouts_give_one_attribution_per_clip(setup, layout, perm) -> None:  # type: ignore[no-untyped-def]
    model, ex, clips, singles = setup
    batch = torch.stack(clips).permute(*perm)
    for explicit in (layout, None):  # given, or inferred from the channel axis
        out = ex.explain(model, batch, target=[0, 2], layout=explicit)
        assert [a.target for a in out] == [0, 2]
        torch.testing.assert_close(out[0].values, singles[(0, 0)].values, rtol=0, atol=0)
        torch.testing.assert_close(out[1].values, singles[(1, 2)].values, rtol=0, atol=0)


def test_one_target_for_every_clip_and_numpy_input(setup) -> None:  # type: ignore[no-untyped-def]
    model, ex, clips, singles = setup
    batch = torch.stack(clips).permute(0, 4, 1, 2, 3).numpy()
    out = ex.explain(model, batch, target=np.int64(2))
    torch.testing.assert_close(out[1].values, singles[(1, 2)].values, rtol=0, atol=0)


@pytest.mark.parametrize(("layout", "perm"), [("CTHW", (3, 0, 1, 2)), ("TCHW", (0, 3, 1, 2))])
def test_single_clip_layouts(setup, layout, perm) -> None:  # type: ignore[no-untyped-def]
    model, ex, clips, singles = setup
    attr = ex.explain(model, clips[1].permute(*perm), target=torch.tensor(0), layout=layout)
    assert isinstance(attr, removalx.Attribution)
    torch.testing.assert_close(attr.values, singles[(1, 0)].values, rtol=0, atol=0)


def test_bad_layouts_and_targets_are_clear_errors(setup) -> None:  # type: ignore[no-untyped-def]
    model, ex, clips, _ = setup
    batch = torch.stack(clips).permute(0, 4, 1, 2, 3)
    with pytest.raises(VideoError, match="Unknown layout"):
        ex.explain(model, batch, layout="NCHW")
    with pytest.raises(VideoError, match="5-dimensional"):
        ex.explain(model, clips[0], layout="BCTHW")
    with pytest.raises(VideoError, match="Cannot tell the layout"):
        ex.explain(model, torch.rand(2, 5, 6, 7, 8))
    with pytest.raises(TargetError, match="3 targets for 2 clips"):
        ex.explain(model, batch, target=[0, 1, 2])
    with pytest.raises(TargetError, match="integer class index"):
        ex.explain(model, batch, target=torch.tensor(1.5))
    with pytest.raises(TargetError, match="shape"):
        split_targets(torch.zeros(2, 2, dtype=torch.long), 2)
