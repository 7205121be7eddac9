"""Shared fixtures of the experiment tests: a toy model file and the fastest evaluate flags."""

from __future__ import annotations

import pytest

#: Two 4-frame 16x16 clips, no progress bars.
TINY = ["--n-videos", "2", "--frames", "4", "--size", "16", "--quiet"]
#: A 1x2x2 grid and 8 samples: the cheapest removal recipe.
GRID = [
    "--set",
    "segmentation.name=grid3d",
    "--set",
    "segmentation.cells=[1,2,2]",
    "--set",
    "sample_selection.n_samples=8",
]


@pytest.fixture(scope="module")
def model_spec(tmp_path_factory) -> str:
    """``python:`` spec of a 4-class toy 3D CNN (no zoo weights needed)."""
    d = tmp_path_factory.mktemp("model")
    (d / "toy_model.py").write_text(
        "from removalx.testing import ToyClassifier\n\ndef make():\n    return ToyClassifier(n_classes=4)\n"
    )
    return f"python:{d / 'toy_model.py'}:make"
