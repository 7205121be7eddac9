"""Bad input gets a RemovalxError that says what was expected (docs/cli.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import removalx
from removalx.errors import ModelError, TargetError, VideoError
from removalx.testing import ToyClassifier, tiny_video

SMALL = {"segmentation.name": "grid3d", "segmentation.cells": [2, 2, 2], "sample_selection.n_samples": 4}


@pytest.fixture
def ex():
    return removalx.Explainer.from_recipe("lime3d", overrides=SMALL, progress=False)


@pytest.fixture
def model():
    return removalx.VideoClassifier(ToyClassifier())


@pytest.mark.parametrize(
    ("video", "needle"),
    [
        (torch.rand(4, 8, 8), "T, H, W, C"),
        (torch.rand(1, 1, 4, 8, 8, 3), "T, H, W, C"),  # [1, T, H, W, C] is a batch now
        ((torch.rand(4, 8, 8, 3) * 255).to(torch.uint8), "255"),
        (torch.rand(4, 8, 8, 3) * 3, "[0, 1]"),
        (torch.full((4, 8, 8, 3), float("nan")), "NaN"),
    ],
)
def test_bad_video(ex, model, video, needle):
    with pytest.raises(VideoError) as e:
        ex.explain(model, video)
    assert needle in str(e.value)


def test_numpy_video_is_accepted(ex, model):
    a = ex.explain(model, tiny_video().numpy())
    assert a.values.shape == (4, 16, 16)


def test_target_out_of_range(ex, model):
    with pytest.raises(TargetError, match=r"3 classes"):
        ex.explain(model, tiny_video(), target=3)
    with pytest.raises(TargetError):
        ex.explain(model, tiny_video(), target=-1)


def test_model_wrong_shape(ex):
    with pytest.raises(ModelError, match=r"expected \[1, K\]"):
        ex.explain(lambda x: torch.zeros(x.shape[0]), tiny_video())


def test_model_nan(ex):
    with pytest.raises(ModelError, match="NaN"):
        ex.explain(lambda x: torch.full((x.shape[0], 2), float("nan")), tiny_video())


def test_model_nan_only_on_perturbed_clips(ex):
    def f(x):
        out = torch.stack([x.mean(dim=(1, 2, 3, 4)), 1 - x.mean(dim=(1, 2, 3, 4))], 1)
        return torch.where(x.amin(dim=(1, 2, 3, 4))[:, None] == 0, torch.nan, out)

    with pytest.raises(ModelError, match="NaN"):
        ex.explain(f, tiny_video())


def test_not_a_model(ex):
    with pytest.raises(ModelError, match="VideoClassifier"):
        ex.explain(42, tiny_video())


def test_numpy_callable_model(ex):
    def f(x):  # a black box that speaks NumPy
        m = x.mean(dim=(1, 2, 3, 4)).numpy()
        return np.stack([m, 1 - m], 1)

    a = ex.explain(f, tiny_video())
    assert a.target in (0, 1)


def test_config_errors():
    with pytest.raises(removalx.RemovalxError, match="grid3d cells"):
        removalx.Explainer.from_recipe(
            "lime3d",
            overrides={"segmentation.name": "grid3d", "segmentation.cells": [99, 2, 2]},
            progress=False,
        ).explain(removalx.VideoClassifier(ToyClassifier()), tiny_video())
    with pytest.raises(removalx.RemovalxError, match="exhaustive"):
        removalx.Explainer.from_recipe(
            "loco_lv",
            overrides={"sample_selection.name": "fixed", "sample_selection.n_samples": 5},
            progress=False,
        ).explain(removalx.VideoClassifier(ToyClassifier()), tiny_video())
