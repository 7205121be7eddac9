"""The study's legend PNG is the colour row of the visualizer's colour bar, without values."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from removalx.core.types import Attribution
from removalx.experiments.study.create import legend_png
from removalx_plugins.machinery.colors import apply_colormap


def _png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _rgb(x: float, name: str) -> np.ndarray:
    return (apply_colormap(torch.tensor([x]), name)[0].numpy() * 255).round()


def test_study_legend_runs_the_items_colour_map_from_least_to_most_important():
    ramp = torch.linspace(-1.0, 1.0, 16).expand(2, 4, 16).contiguous()
    # unsigned map (negatives dropped): sequential inferno, 0 on the left, the top on the right
    png = _png(legend_png({"name": "heatmap", "stretch": False}, Attribution(ramp, 0), width=64, height=5))
    assert png.shape == (5, 64, 3) and (png == png[:1]).all()  # one row, no text
    assert np.abs(png[0, 0] - _rgb(0.0, "inferno")).max() <= 1
    assert np.abs(png[0, -1] - _rgb(1.0, "inferno")).max() <= 1
    # signed map (negatives shown): diverging coolwarm, its middle colour at the centre
    vis = {"name": "heatmap", "stretch": False, "negatives": "show"}
    png = _png(legend_png(vis, Attribution(ramp, 0), width=65, height=3))
    for x, frac in ((0, 0.0), (32, 0.5), (64, 1.0)):
        assert np.abs(png[0, x] - _rgb(frac, "coolwarm")).max() <= 1
