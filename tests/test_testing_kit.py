"""The testing kit third-party authors use: fixtures and check_plugin."""

from __future__ import annotations

import removalx


def test_fixtures_are_available(rx_tiny_video, rx_toy_model, rx_registry):
    assert rx_tiny_video.shape == (4, 16, 16, 3)
    assert rx_toy_model(rx_tiny_video[None]).shape == (1, 3)
    assert "slic3d" in rx_registry.names("segmentation")
    a = removalx.Explainer.from_recipe(
        "rise3d",
        overrides={"segmentation.cells": [2, 2, 2], "sample_selection.n_samples": 16},
        progress=False,
    ).explain(rx_toy_model, rx_tiny_video)
    assert a.values.shape == (4, 16, 16)
