"""A clip without ground-truth frames has no temporal pointing score (NaN), issue 27 §3.7.

docs/experiments.md: "a clip without boxes has no pointing-game score (NaN)". Oracle: the
argmax of the frame means by hand, and the statistics, which skip NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from removalx import Attribution
from removalx.experiments.stats import mean_ci
from removalx.metrics import temporal_pointing


def _imp() -> torch.Tensor:
    imp = torch.zeros(4, 3, 3)
    imp[2] = 1.0  # frame 2 is the most important
    return imp


def test_empty_evidence_frames_give_nan_not_an_error():
    out = temporal_pointing(_imp(), [])
    assert math.isnan(out["value"]) and out["frame"] == 2 and out["n_evidence_frames"] == 0
    assert math.isnan(temporal_pointing(_imp(), torch.zeros(0, dtype=torch.long))["value"])
    assert temporal_pointing(_imp(), [2])["value"] == 1.0  # clips with frames are scored as before


def test_plugin_scores_a_clip_without_boxes_as_nan(registry):
    metric = registry.make("metric", "temporal_pointing")
    attr = Attribution(values=_imp(), target=0)
    video = torch.rand(4, 3, 3, 3)
    no_boxes = torch.zeros(4, 3, 3, dtype=torch.bool)
    assert math.isnan(metric.score(None, video, attr, evidence=no_boxes)["value"])
    assert math.isnan(metric.score(None, video, attr, evidence_frames=[])["value"])
    boxes = no_boxes.clone()
    boxes[2, 1, 1] = True
    assert metric.score(None, video, attr, evidence=boxes)["value"] == 1.0


def test_nan_clips_are_left_out_of_the_dataset_mean():
    values = [temporal_pointing(_imp(), f)["value"] for f in ([2], [], [0], [2, 3])]
    d = mean_ci(np.array(values))
    assert d["n"] == 3 and abs(d["mean"] - 2 / 3) < 1e-12
