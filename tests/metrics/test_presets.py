"""Paper presets of the perturbation metrics, AUC formulas, units, dataset mean, pointing pooling.

Every paper variant is checked against a hand computation on a tiny input: the perturbed
clips are built here with explicit index arithmetic and scored with numpy, independently of
``removalx.metrics.perturbation``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from removalx.core.classifier import VideoClassifier
from removalx.core.types import Attribution
from removalx.errors import ConfigError
from removalx.metrics import (
    Curve,
    auc,
    dataset_mean,
    level_labels,
    minimal_mask,
    perturbation_curve,
    pooled_hit_rate,
    preset_settings,
    settings_line,
    settings_lines,
    spatial_pointing,
    superpixel_labels,
    temporal_pointing,
)
from removalx.testing import LinearVideoModel


def linear_model(
    shape: tuple[int, ...], seed: int = 0, mean: list[float] | None = None
) -> tuple[VideoClassifier, np.ndarray]:
    """Two classes: logit 0 = sum(w * x) - 1, logit 1 = 0. Returns the model and ``w``."""
    g = torch.Generator().manual_seed(seed)
    w = torch.zeros(2, *shape)
    w[0] = torch.randn(*shape, generator=g) * 0.5
    model = LinearVideoModel(w, torch.tensor([-1.0, 0.0]))
    return VideoClassifier(model, layout="BTHWC", mean=mean), w[0].numpy().astype(np.float64)


def p_target(w: np.ndarray, clip: np.ndarray, mean: np.ndarray | None = None) -> float:
    """Softmax probability of class 0 for the linear model (numpy oracle)."""
    x = clip - mean if mean is not None else clip
    z = float((w * x).sum()) - 1.0
    return 1.0 / (1.0 + math.exp(-z))


# -- AUC formulas -------------------------------------------------------------------------------
def test_auc_formulas_on_a_tiny_curve():
    x = [0.0, 1 / 3, 2 / 3, 1.0]
    y = [0.2, 0.6, 0.9, 1.0]
    # trapezoid: (0.2/2 + 0.6 + 0.9 + 1.0/2) / 3 = 2.1 / 3
    assert auc(x, y) == pytest.approx(0.7)
    assert auc(x, y, "trapezoid") == pytest.approx(0.7)
    # STEP Eq. 19: (1/L) sum_{l=1..L} y_l = (0.6 + 0.9 + 1.0) / 3
    assert auc(x, y, "step_mean") == pytest.approx(2.5 / 3)
    # they differ by (y_0 - y_L) / (2L) = (0.2 - 1.0) / 6
    assert auc(x, y) - auc(x, y, "step_mean") == pytest.approx((0.2 - 1.0) / 6)
    c = Curve(
        torch.tensor(x, dtype=torch.float64),
        torch.tensor(y, dtype=torch.float64),
        "insertion",
        "morf",
        "patch",
    )
    assert c.area("step_mean") == pytest.approx(2.5 / 3) and c.auc == pytest.approx(0.7)
    with pytest.raises(ConfigError, match="AUC formula"):
        auc(x, y, "simpson")  # type: ignore[arg-type]


# -- presets ------------------------------------------------------------------------------------
def test_preset_tables_per_game():
    assert preset_settings("eccvw", "deletion")["fill"] == "gray"
    assert preset_settings("eccvw", "insertion")["fill"] == "blur"
    assert preset_settings("eccvw", "insertion")["blur_sigma"] == 20.0
    assert preset_settings("aosa", "deletion")["fill"] == "black"
    assert preset_settings("aosa", "insertion")["fill"] == "blur"
    assert preset_settings("aosa", "insertion")["steps"] == 28
    s = preset_settings("step", "insertion")
    assert (s["unit"], s["patch"], s["steps"], s["fill"], s["auc"]) == (
        "patch",
        7,
        128,
        "dataset_mean",
        "step_mean",
    )
    s = preset_settings("removal", "deletion")
    assert (s["unit"], s["levels"], s["steps"], s["fill"], s["auc"]) == (
        "level",
        200,
        "all",
        "black",
        "trapezoid",
    )
    with pytest.raises(ConfigError, match="preset"):
        preset_settings("nope", "deletion")


def test_preset_precedence_explicit_fields_win(registry):
    d = registry.get("metric", "deletion").make({"preset": "step", "steps": 28}).config
    assert (d.steps, d.unit, d.fill, d.auc) == (28, "patch", "dataset_mean", "step_mean")
    assert d.overrides() == ["steps"]
    default = registry.get("metric", "deletion").make({}).config
    assert default.preset == "removal" and default.unit == "level" and default.steps == "all"
    assert default.overrides() == []
    ins = registry.get("metric", "insertion").make({"preset": "eccvw"}).config
    dele = registry.get("metric", "deletion").make({"preset": "eccvw", "fill": "black"}).config
    assert ins.fill == "blur" and dele.fill == "black" and dele.overrides() == ["fill"]
    mm = registry.get("metric", "minimal_mask").make({"preset": "aosa", "mode": "insertion"}).config
    assert mm.fill == "blur" and mm.steps == 28
    # a config passed on (dumped with every field) keeps its values
    again = registry.get("metric", "deletion").make(d).config
    assert again == d
    with pytest.raises(ValueError):
        registry.get("metric", "deletion").make({"preset": "fong"})


def _patch_oracle(
    video: np.ndarray,
    w: np.ndarray,
    order: list[tuple[int, int, int]],
    steps: int,
    mode: str,
    base: np.ndarray,
    mean: np.ndarray | None = None,
) -> list[float]:
    """y_l for l = 0..L when the 7x7 patches (t, row, col) are perturbed in ``order``."""
    per_step = len(order) // steps
    ys = []
    for l_ in range(steps + 1):
        h = np.zeros(video.shape[:3]) if mode == "insertion" else np.ones(video.shape[:3])
        for t, r, c in order[: l_ * per_step]:
            h[t, 7 * r : 7 * r + 7, 7 * c : 7 * c + 7] = 1.0 if mode == "insertion" else 0.0
        clip = h[..., None] * video + (1 - h[..., None]) * base  # STEP Eq. 12
        ys.append(p_target(w, clip, mean))
    return ys


def test_step_preset_matches_eq_12_and_19_by_hand(registry):
    # 2 frames of 14x14 -> 8 patches of 7x7; L = 4 steps of 2 patches
    t_, h_, w_ = 2, 14, 14
    video = torch.rand(t_, h_, w_, 3, generator=torch.Generator().manual_seed(3))
    model, w = linear_model((t_, h_, w_, 3), seed=1)
    order = [(1, 0, 1), (0, 1, 1), (0, 0, 0), (1, 1, 0), (0, 0, 1), (1, 0, 0), (0, 1, 0), (1, 1, 1)]
    imp = torch.zeros(t_, h_, w_)
    for rank, (t, r, c) in enumerate(order):
        imp[t, 7 * r : 7 * r + 7, 7 * c : 7 * c + 7] = 10.0 - rank  # most relevant first = this order
    xbar = [0.4, 0.35, 0.3]
    base = np.broadcast_to(np.array(xbar), (t_, h_, w_, 3))
    attr = Attribution(values=imp, target=0)
    for mode in ("insertion", "deletion"):
        ys = _patch_oracle(video.double().numpy(), w, order, 4, mode, base)
        expected = sum(ys[1:]) / 4  # Eq. 19: mean over l = 1..L
        out = registry.make("metric", mode, {"preset": "step", "steps": 4, "fill_value": xbar}).score(
            model, video, attr
        )
        assert out["value"] == pytest.approx(expected, abs=1e-5)
        assert out["curve"]["y"] == pytest.approx(ys, abs=1e-5)
        assert out["preset"] == "step" and out["settings"]["auc"] == "step_mean"
        assert (
            out["settings"]["fill_value"] == pytest.approx(xbar)
            and out["settings"]["fill_source"] == "fill_value"
        )
        assert out["settings"]["steps"] == 4 and out["settings"]["unit"] == "patch"


def test_dataset_mean_substrate_from_the_models_normalisation(registry):
    t_, h_, w_ = 2, 14, 14
    video = torch.rand(t_, h_, w_, 3, generator=torch.Generator().manual_seed(4))
    mean = [0.43216, 0.394666, 0.37645]
    model, _ = linear_model((t_, h_, w_, 3), seed=2, mean=mean)
    imp = torch.rand(t_, h_, w_, generator=torch.Generator().manual_seed(5))
    out = registry.make("metric", "deletion", {"preset": "step", "steps": 2}).score(
        model, video, Attribution(values=imp, target=0)
    )
    assert out["settings"]["fill_source"] == "model.mean"
    # fully deleted clip = the mean colour = zero after the model's normalisation: logit0 = -1
    assert out["curve"]["y"][-1] == pytest.approx(1 / (1 + math.exp(1.0)), abs=1e-5)
    plain, _ = linear_model((t_, h_, w_, 3), seed=2)
    with pytest.raises(ConfigError, match="dataset_mean"):
        registry.make("metric", "deletion", {"preset": "step"}).score(
            plain, video, Attribution(values=imp, target=0)
        )


def _gauss_blur(frame: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian (radius ceil(3 sigma)) with edge padding, per channel (numpy oracle)."""
    r = math.ceil(3 * sigma)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    out = np.empty_like(frame)
    for ch in range(frame.shape[-1]):
        a = np.pad(frame[..., ch], r, mode="edge")
        a = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 1, a)
        a = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 0, a)
        out[..., ch] = a
    return out


def test_aosa_preset_28_pixel_steps_by_hand(registry):
    # one 4x7 frame = 28 pixels: 28 steps perturb one pixel each
    video = torch.rand(1, 4, 7, 3, generator=torch.Generator().manual_seed(6))
    model, w = linear_model((1, 4, 7, 3), seed=3)
    perm = torch.randperm(28, generator=torch.Generator().manual_seed(7))
    imp = torch.empty(28)
    imp[perm] = torch.arange(28, 0, -1).float()  # perm[0] is the most relevant pixel
    imp = imp.view(1, 4, 7)
    v = video.double().numpy()
    blurred = _gauss_blur(v[0], 5.0)[None]
    attr = Attribution(values=imp, target=0)
    for mode, base in (("deletion", np.zeros_like(v)), ("insertion", blurred)):
        ys = []
        for l_ in range(29):
            h = np.zeros(28) if mode == "insertion" else np.ones(28)
            h[perm[:l_].numpy()] = 1.0 if mode == "insertion" else 0.0
            h = h.reshape(1, 4, 7, 1)
            ys.append(p_target(w, h * v + (1 - h) * base))
        expected = (sum(ys) - ys[0] / 2 - ys[-1] / 2) / 28  # trapezoid over x = l / 28
        out = registry.make("metric", mode, {"preset": "aosa"}).score(model, video, attr)
        assert out["curve"]["x"] == pytest.approx([i / 28 for i in range(29)], abs=1e-6)
        assert out["value"] == pytest.approx(expected, abs=1e-5)
        assert out["settings"]["fill"] == ("black" if mode == "deletion" else "blur")


def test_eccvw_preset_gray_deletion_and_blurred_insertion_by_hand(registry):
    # 2 frames of 3x3 = 18 pixels, 6 steps of 3 pixels (steps overridden: 128 > 18 pixels)
    video = torch.rand(2, 3, 3, 3, generator=torch.Generator().manual_seed(8))
    model, w = linear_model((2, 3, 3, 3), seed=4)
    perm = torch.randperm(18, generator=torch.Generator().manual_seed(9))
    imp = torch.empty(18)
    imp[perm] = torch.arange(18, 0, -1).float()
    imp = imp.view(2, 3, 3)
    v = video.double().numpy()
    blurred = np.stack([_gauss_blur(v[t], 20.0) for t in range(2)])
    for mode, base in (("deletion", np.full_like(v, 0.5)), ("insertion", blurred)):
        ys = []
        for l_ in range(7):
            h = np.zeros(18) if mode == "insertion" else np.ones(18)
            h[perm[: 3 * l_].numpy()] = 1.0 if mode == "insertion" else 0.0
            h = h.reshape(2, 3, 3, 1)
            ys.append(p_target(w, h * v + (1 - h) * base))
        expected = (sum(ys) - ys[0] / 2 - ys[-1] / 2) / 6
        out = registry.make("metric", mode, {"preset": "eccvw", "steps": 6}).score(
            model, video, Attribution(values=imp, target=0)
        )
        assert out["value"] == pytest.approx(expected, abs=1e-5)
        assert out["overrides"] == ["steps"]


def test_removal_preset_thresholds_the_map_by_hand(registry):
    # 6 pixels, 4 importance levels: 1.0 (x2), 0.5, 0.3 (x2), 0.0
    video = torch.rand(1, 2, 3, 3, generator=torch.Generator().manual_seed(10))
    model, w = linear_model((1, 2, 3, 3), seed=5)
    imp = torch.tensor([[[0.0, 0.3, 1.0], [0.5, 1.0, 0.3]]])
    v = video.double().numpy()
    groups = [[(0, 2), (1, 1)], [(1, 0)], [(0, 1), (1, 2)], [(0, 0)]]  # removed threshold by threshold
    ys, xs, removed = [], [], []
    for l_ in range(5):
        if l_:
            removed += groups[l_ - 1]
        h = np.ones((1, 2, 3, 1))
        for r, c in removed:
            h[0, r, c, 0] = 0.0
        ys.append(p_target(w, h * v))
        xs.append(len(removed) / 6)
    expected = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(4))
    attr = Attribution(values=imp, target=0)
    for levels in (200, 0):  # the evaluator's 200 thresholds, and one step per distinct value
        out = registry.make("metric", "deletion", {"levels": levels}).score(model, video, attr)
        assert out["curve"]["x"] == pytest.approx(xs, abs=1e-6)
        assert out["value"] == pytest.approx(expected, abs=1e-5)
        assert out["preset"] == "removal" and out["settings"]["steps"] == 4


def test_level_labels_bins():
    imp = torch.tensor([[[0.0, 0.004, 0.0051, 0.5, 0.996, 1.0]]], dtype=torch.float64)
    # thresholds i/200: 0.004 -> bin 0 (< 1/200), 0.0051 -> bin 1, 0.5 -> 100, 0.996 and 1.0 -> 199
    assert level_labels(imp, 200).tolist() == [[[0, 0, 1, 2, 3, 3]]]
    assert level_labels(imp, 0).tolist() == [[[0, 1, 2, 3, 4, 5]]]
    assert level_labels(torch.zeros(1, 2, 2), 200).unique().tolist() == [0]


def test_step_boundaries_floor_like_the_step_code():
    from removalx.metrics.perturbation import step_counts

    # floor(l * 10 / 4) for l = 0..4 (rounding would give 8 at l = 3)
    assert step_counts(10, 4).tolist() == [0, 2, 5, 7, 10]


def test_unit_score_mean_or_sum():
    # unit 0: one pixel of importance 1.0; unit 1: four pixels of 0.5 (sum 2.0, mean 0.5)
    video = torch.rand(1, 1, 5, 3, generator=torch.Generator().manual_seed(13))
    model, _ = linear_model((1, 1, 5, 3))
    imp = torch.tensor([[[1.0, 0.5, 0.5, 0.5, 0.5]]])
    labels = torch.tensor([[[0, 1, 1, 1, 1]]])
    by_mean = perturbation_curve(model, video, imp, 0, steps=2, labels=labels, aggregate="mean")
    by_sum = perturbation_curve(model, video, imp, 0, steps=2, labels=labels, aggregate="sum")
    assert by_mean.x.tolist() == pytest.approx([0.0, 0.2, 1.0])
    assert by_sum.x.tolist() == pytest.approx([0.0, 0.8, 1.0])


# -- units --------------------------------------------------------------------------------------
def test_superpixels_are_per_frame_on_a_two_frame_clip():
    h, w = 16, 32
    v = torch.zeros(2, h, w, 3)
    v[:, :, : w // 2, 0] = 1.0
    v[:, :, w // 2 :, 2] = 1.0
    v[1] = v[1].flip(1)
    lab = superpixel_labels(v, 2, sigma=0.0)
    expected = torch.zeros(2, h, w, dtype=torch.long)
    expected[0, :, w // 2 :] = 1
    expected[1, :, : w // 2] = 2
    expected[1, :, w // 2 :] = 3
    assert torch.equal(lab, expected)


def test_superpixels_about_256_per_frame_never_spanning_frames():
    from removalx.zoo.data import make_clip

    video = make_clip(1, 0, frames=2, size=112).video
    lab = superpixel_labels(video, 256)
    f0, f1 = set(lab[0].unique().tolist()), set(lab[1].unique().tolist())
    assert not f0 & f1
    assert 200 <= len(f0) <= 300 and 200 <= len(f1) <= 300
    assert sorted(f0 | f1) == list(range(len(f0) + len(f1)))


@pytest.mark.parametrize("unit", ["supervoxel", "level"])
def test_other_units_give_a_full_curve(unit):
    video = torch.rand(2, 8, 8, 3, generator=torch.Generator().manual_seed(11))
    model, _ = linear_model((2, 8, 8, 3))
    imp = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(12))
    c = perturbation_curve(model, video, imp, 0, unit=unit, steps=4, superpixels=4, levels=10)
    assert c.x[0] == 0 and c.x[-1] == 1 and len(c.y) == 5 and c.meta["n_units"] > 1


# -- minimal mask -------------------------------------------------------------------------------
def test_minimal_mask_target_thresholds_at_curve_points():
    x = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    dele = Curve(
        x,
        torch.tensor([0.8, 0.6, 0.2, 0.1, 0.0], dtype=torch.float64),
        "deletion",
        "morf",
        "level",
        {"full": 0.8},
    )
    # target 0.5: first point with y <= 0.5 is x = 0.5 (no interpolation); 0.05 -> x = 1.0; 0.9 -> x = 0
    got = minimal_mask(dele, [0.5, 0.05, 0.9], relative=False, kind="target", interpolate=False)
    assert got == {0.5: 0.5, 0.05: 1.0, 0.9: 0.0}
    ins = Curve(
        x,
        torch.tensor([0.0, 0.2, 0.6, 0.8, 1.0], dtype=torch.float64),
        "insertion",
        "morf",
        "level",
        {"full": 1.0},
    )
    assert minimal_mask(ins, [0.5, 0.7], relative=False, kind="target", interpolate=False) == {
        0.5: 0.5,
        0.7: 0.75,
    }


def test_minimal_mask_plugin_reads_the_shared_removal_curve(registry):
    video = torch.rand(1, 2, 3, 3, generator=torch.Generator().manual_seed(10))
    model, _ = linear_model((1, 2, 3, 3), seed=5)
    attr = Attribution(values=torch.tensor([[[0.0, 0.3, 1.0], [0.5, 1.0, 0.3]]]), target=0)
    ctx = {"curve_cache": {}}
    d = registry.make("metric", "deletion").score(model, video, attr, **ctx)
    mm = registry.make("metric", "minimal_mask", {"thresholds": [0.3]}).score(model, video, attr, **ctx)
    assert mm["n_forward"] == 0 and mm["preset"] == "removal"
    ys, xs = d["curve"]["y"], d["curve"]["x"]
    first = next((x for x, y in zip(xs, ys) if y <= 0.3), 1.0)
    assert mm["percent"]["0.3"] == pytest.approx(100 * first)
    assert mm["settings"]["kind"] == "target" and mm["settings"]["interpolate"] is False


# -- dataset mean -------------------------------------------------------------------------------
def _frames_folder(path, colour):
    from PIL import Image

    path.mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (4, 4), colour).save(path / f"{i:03d}.png")


def test_dataset_mean_computed_once_and_cached(tmp_path):
    data = tmp_path / "train"
    data.mkdir()
    _frames_folder(data / "a", (255, 0, 0))
    _frames_folder(data / "b", (0, 0, 255))
    got = dataset_mean(data, frames=2, size=4)
    assert got == pytest.approx([0.5, 0.0, 0.5])
    cache = data / "removalx_dataset_mean.json"
    stored = json.loads(cache.read_text())
    assert stored["mean"] == pytest.approx([0.5, 0.0, 0.5])
    stored["mean"] = [0.1, 0.2, 0.3]  # the next call must read the file, not the videos
    cache.write_text(json.dumps(stored))
    assert dataset_mean(data, frames=2, size=4) == [0.1, 0.2, 0.3]
    assert dataset_mean(data, frames=2, size=4, cache=False) == pytest.approx([0.5, 0.0, 0.5])
    _frames_folder(data / "c", (0, 255, 0))  # the dataset changed: computed again
    assert dataset_mean(data, frames=2, size=4) == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    elsewhere = tmp_path / "means" / "train.json"
    assert dataset_mean(data, frames=2, size=4, cache=elsewhere) == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert json.loads(elsewhere.read_text())["mean"] == pytest.approx([1 / 3, 1 / 3, 1 / 3])


def test_dataset_mean_rejects_a_non_dataset(tmp_path):
    with pytest.raises(ConfigError):
        dataset_mean(tmp_path / "missing")


# -- pointing games -----------------------------------------------------------------------------
def test_spatial_pointing_pooled_over_frames_by_hand(registry):
    ev = torch.zeros(3, 10, 10, dtype=torch.bool)
    ev[:, 0:2, 0:2] = True
    clip_a = torch.zeros(1, 10, 10)
    clip_a[0, 0, 0] = 1.0  # 1 frame, a hit
    clip_b = torch.zeros(3, 10, 10)
    clip_b[0, 1, 1] = 1.0  # hit
    clip_b[1, 9, 9] = 1.0  # miss (distance > 7)
    clip_b[2, 9, 0] = 1.0  # miss
    ra = spatial_pointing(clip_a, ev[:1])
    rb = spatial_pointing(clip_b, ev)
    assert rb["per_frame"] == [1, 0, 0]
    assert pooled_hit_rate([ra, rb], "frames") == pytest.approx(2 / 4)
    assert pooled_hit_rate([ra, rb], "clip") == pytest.approx((1 + 1 / 3) / 2)
    # per class: class 0 = clip a (1/1), class 1 = clip b (1/3) -> (1 + 1/3) / 2
    assert pooled_hit_rate([ra, rb], "class", labels=[0, 1]) == pytest.approx((1 + 1 / 3) / 2)
    with pytest.raises(ConfigError, match="class"):
        pooled_hit_rate([ra, rb], "class")
    out = registry.make("metric", "spatial_pointing").score(
        None, None, Attribution(values=clip_b, target=0), evidence=ev, label=1
    )
    assert out["pooling"] == "frames" and out["label"] == 1 and out["per_frame"] == [1, 0, 0]
    assert out["settings"]["tolerance"] == 7.0


def test_temporal_pointing_frame_mean_and_max_by_hand():
    imp = torch.zeros(2, 4, 4)
    imp[0, 0, 0] = 1.0  # frame 0: one hot pixel, mean 1/16
    imp[1] = 0.5  # frame 1: mean 0.5, max 0.5
    assert temporal_pointing(imp, [1])["value"] == 1.0  # mean (the authors' code: sum)
    assert temporal_pointing(imp, [1], frame_score="sum")["frame"] == 1
    assert temporal_pointing(imp, [1], frame_score="max")["frame"] == 0


def test_settings_line_reads_the_stored_details(registry):
    video = torch.rand(1, 2, 3, 3, generator=torch.Generator().manual_seed(10))
    model, _ = linear_model((1, 2, 3, 3), seed=5)
    attr = Attribution(values=torch.rand(1, 2, 3, generator=torch.Generator().manual_seed(1)), target=0)
    out = registry.make("metric", "insertion", {"preset": "aosa", "steps": 3}).score(model, video, attr)
    line = settings_line("ins", out)
    assert line.startswith("ins: preset aosa; mode=insertion order=morf unit=pixel steps=3")
    assert "fill=blur blur_sigma=5" in line and line.endswith("(set by the user: steps)")
    rows = [
        {"metric": "ins", "details": out},
        {"metric": "ins", "details": {}},
        {"metric": "x", "details": {}},
    ]
    assert settings_lines(rows, ["ins", "missing"]) == [line]


def test_steps_all_refuses_too_many_units():
    video = torch.rand(1, 101, 100, 3, generator=torch.Generator().manual_seed(14))
    model, _ = linear_model((1, 101, 100, 3))
    imp = torch.rand(1, 101, 100, generator=torch.Generator().manual_seed(15))  # 10 100 distinct values
    with pytest.raises(ConfigError, match="steps 'all'"):
        perturbation_curve(model, video, imp, 0, unit="level", levels=0, steps="all")
