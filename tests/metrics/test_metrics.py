"""Metrics on hand-computed cases (removalx.metrics and the metric plugins)."""

from __future__ import annotations

import math

import pytest
import torch

from removalx.core.classifier import VideoClassifier
from removalx.core.types import Attribution
from removalx.errors import ConfigError
from removalx.metrics import (
    Curve,
    auc,
    minimal_mask,
    patch_labels,
    perturbation_curve,
    reliability_alpha,
    saliency_metric,
    spatial_pointing,
    temporal_pointing,
)
from removalx.testing import LinearVideoModel, check_plugin, tiny_video
from removalx.testing.data import square_evidence

T, S = 4, 16
METRICS = [
    "deletion",
    "insertion",
    "minimal_mask",
    "saliency_metric",
    "spatial_pointing",
    "temporal_pointing",
]


def region_model(evidence: torch.Tensor, gain: float = 4.0) -> VideoClassifier:
    """Class 0's logit is ``gain`` x the mean brightness inside ``evidence``; class 1's is a constant."""
    w = torch.zeros(2, *evidence.shape, 3)
    w[0][evidence] = gain / (3 * float(evidence.sum()))
    return VideoClassifier(LinearVideoModel(w, torch.tensor([0.0, 1.5])), layout="BTHWC")


def test_auc_of_known_curves():
    assert auc([0.0, 0.5, 1.0], [1.0, 0.5, 0.0]) == pytest.approx(0.5)
    assert auc([0.0, 1.0], [1.0, 1.0]) == pytest.approx(1.0)
    # step down at 1/4: trapezoids 0.25 * (1 + 0) / 2 + 0.75 * 0 = 0.125
    assert auc([0.0, 0.25, 1.0], [1.0, 0.0, 0.0]) == pytest.approx(0.125)
    with pytest.raises(ConfigError):
        auc([0.0, 1.0, 0.5], [1.0, 1.0, 1.0])


def test_perfect_attribution_beats_random_on_a_one_region_model():
    video, ev = tiny_video(T, S), square_evidence(T, S)
    model = region_model(ev)
    perfect = ev.float()
    rand = torch.rand(T, S, S, generator=torch.Generator().manual_seed(0))
    kw = {"steps": 16, "unit": "pixel", "fill": "black"}
    d_perfect = perturbation_curve(model, video, perfect, 0, mode="deletion", **kw)
    d_random = perturbation_curve(model, video, rand, 0, mode="deletion", **kw)
    assert d_perfect.auc < d_random.auc - 0.1
    i_perfect = perturbation_curve(model, video, perfect, 0, mode="insertion", **kw)
    i_random = perturbation_curve(model, video, rand, 0, mode="insertion", **kw)
    assert i_perfect.auc > i_random.auc + 0.1
    # LeRF deletes the evidence last: the curve stays high
    lerf = perturbation_curve(model, video, perfect, 0, mode="deletion", order="lerf", **kw)
    assert lerf.auc > d_random.auc
    # the curve runs from 0 to 1 with L + 1 points and L + 2 forward passes (the clean clip too)
    assert d_perfect.x[0] == 0 and d_perfect.x[-1] == 1 and len(d_perfect.y) == 17
    assert d_perfect.meta["n_forward"] == 18
    assert d_perfect.y[0] == pytest.approx(d_perfect.meta["full"], abs=1e-5)


@pytest.mark.parametrize("unit", ["patch", "superpixel"])
def test_units(unit):
    video, ev = tiny_video(T, S), square_evidence(T, S)
    c = perturbation_curve(region_model(ev), video, ev.float(), 0, unit=unit, steps=8, patch=4, superpixels=8)
    assert torch.all(c.x[1:] >= c.x[:-1]) and c.x[-1] == 1.0
    assert c.meta["n_units"] > 1


def test_patch_labels_are_7px_blocks_per_frame():
    lab = patch_labels((2, 14, 15), 7)
    assert int(lab.max()) + 1 == 2 * 2 * 3
    assert lab[0, 0, 0] == lab[0, 6, 6] != lab[0, 7, 0]
    assert lab[0, 0, 0] != lab[1, 0, 0]


def test_minimal_mask_from_a_constructed_curve():
    x = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    ins = Curve(
        x,
        torch.tensor([0.0, 0.2, 0.6, 0.8, 1.0], dtype=torch.float64),
        "insertion",
        "morf",
        "pixel",
        {"full": 1.0},
    )
    # reaches 0.5 between 0.25 (0.2) and 0.5 (0.6): 0.25 + 0.25 * 0.3 / 0.4 = 0.4375
    got = minimal_mask(ins, [0.5, 0.8, 1.5])
    assert got[0.5] == pytest.approx(0.4375)
    assert got[0.8] == pytest.approx(0.75)
    assert got[1.5] == 1.0  # never reached
    dele = Curve(
        x,
        torch.tensor([0.8, 0.6, 0.2, 0.1, 0.0], dtype=torch.float64),
        "deletion",
        "morf",
        "pixel",
        {"full": 0.8},
    )
    # destroy half of 0.8 -> y <= 0.4: between 0.25 (0.6) and 0.5 (0.2) -> 0.375
    assert minimal_mask(dele, [0.5])[0.5] == pytest.approx(0.375)


def test_pointing_games_on_constructed_maps():
    ev = torch.zeros(3, 20, 20, dtype=torch.bool)
    ev[:, 5:8, 5:8] = True
    ev[2] = False  # no ground truth in frame 2
    imp = torch.zeros(3, 20, 20)
    imp[0, 7, 14] = 1.0  # 7 px right of the region's edge: a hit at tolerance 7
    imp[1, 7, 15] = 1.0  # 8 px: a miss
    imp[2, 0, 0] = 1.0
    out = spatial_pointing(imp, ev, tolerance=7)
    assert out["per_frame"] == [1, 0, -1] and out["value"] == pytest.approx(0.5) and out["n_frames"] == 2
    assert spatial_pointing(imp, ev, tolerance=0)["value"] == 0.0
    t = torch.zeros(4, 5, 5)
    t[2] = 1.0
    assert temporal_pointing(t, [2, 3])["value"] == 1.0
    assert temporal_pointing(t, [0, 1])["value"] == 0.0
    assert temporal_pointing(t, [0, 1])["frame"] == 2


def test_reliability_alpha_hand_value():
    a = [[1, 2, 3], [1, 2, 3], [3, 2, 1]]
    r = [0, 0, 2.5]
    # w = (1, 1, 1/3); rho01 = 1, rho02 = rho12 = -1
    # alpha = (1 - 1/3 - 1/3) / (1 + 1/3 + 1/3) = 0.2
    assert reliability_alpha(a, r) == pytest.approx(0.2)
    # lower-is-better flips Eq. 21: w = (0, 0, 2/3) -> every pair has weight 0
    assert math.isnan(reliability_alpha(a, r, higher_is_better=False))
    with pytest.raises(ConfigError):
        reliability_alpha(a, [0, 1])


def _average_ranks(x: list[float]) -> list[float]:
    """Brute force: a value's rank is 1 + (#smaller) + (#equal - 1) / 2."""
    return [1 + sum(y < v for y in x) + (sum(y == v for y in x) - 1) / 2 for v in x]


def test_spearman_with_ties_matches_hand_value_brute_force_and_scipy():
    import numpy as np
    from scipy import stats

    from removalx.metrics import spearman

    # ranks (1, 2.5, 2.5, 4) and (1, 4, 2.5, 2.5): centred dot 2.25 over 4.5 -> 0.5
    assert spearman(np.array([1.0, 2, 2, 3]), np.array([1.0, 3, 2, 2])) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.integers(0, 4, 7).astype(float), rng.integers(0, 3, 7).astype(float)  # many ties
        if len(set(a)) == 1 or len(set(b)) == 1:
            assert spearman(a, b) == 0.0  # a constant row: SciPy says NaN, Eq. 20 counts it as 0
            continue
        ra, rb = np.array(_average_ranks(list(a))), np.array(_average_ranks(list(b)))
        brute = float(np.corrcoef(ra, rb)[0, 1])
        assert spearman(a, b) == pytest.approx(brute, abs=1e-12)
        assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def test_saliency_metric_hand_value():
    video = tiny_video(T, S)
    flat = VideoClassifier(LinearVideoModel(torch.zeros(2, T, S, S, 3)), layout="BTHWC")  # p = 0.5 always
    imp = torch.zeros(T, S, S)
    imp[:, : S // 2, : S // 2] = 1.0  # a quarter of the pixels
    out = saliency_metric(flat, video, imp, 0, threshold=0.5)
    assert out["area"] == pytest.approx(0.25)
    assert out["value"] == pytest.approx(math.log(0.25) - math.log(0.5))
    tiny = torch.zeros(T, S, S)
    tiny[0, 0, 0] = 1.0  # area below tau = 0.05
    assert saliency_metric(flat, video, tiny, 0)["value"] == pytest.approx(math.log(0.05) - math.log(0.5))


@pytest.mark.parametrize("name", METRICS)
def test_metric_plugins_conform(registry, name):
    check_plugin("metric", name, registry=registry)


def test_plugins_share_the_curve_and_read_context(registry):
    video, ev = tiny_video(T, S), square_evidence(T, S)
    model = region_model(ev)
    attr = Attribution(values=ev.float(), target=0)
    ctx = {"curve_cache": {}, "evidence": ev, "evidence_frames": [0, 1, 2, 3]}
    d = registry.make("metric", "deletion", {"steps": 8}).score(model, video, attr, **ctx)
    mm = registry.make("metric", "minimal_mask", {"steps": 8, "mode": "deletion"}).score(
        model, video, attr, **ctx
    )
    assert d["n_forward"] == 10 and mm["n_forward"] == 0  # the curve was reused
    assert d["higher_is_better"] is False and 0 <= d["value"] <= 1
    assert len(d["curve"]["x"]) == 9
    sp = registry.make("metric", "spatial_pointing").score(model, video, attr, **ctx)
    assert sp["value"] == 1.0
    assert registry.make("metric", "temporal_pointing").score(model, video, attr, **ctx)["value"] == 1.0
    with pytest.raises(ConfigError, match="evidence"):
        registry.make("metric", "spatial_pointing").score(model, video, attr)
    # lower_is_important attributions are flipped through importance()
    flipped = Attribution(values=-ev.float(), target=0, meta={"lower_is_important": True})
    d2 = registry.make("metric", "deletion", {"steps": 8}).score(model, video, flipped)
    assert d2["value"] == pytest.approx(d["value"])
