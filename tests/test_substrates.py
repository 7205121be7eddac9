"""Issue 27 §1.2-1.4, substrates: ``constant value: model_mean`` (AOSA's released code), the dataset
mean of the ``step`` metric preset in experiments, the recorded ``fill_value`` override, and the
independent per-sample noise of ``conditional covariance: diagonal``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import removalx
from removalx.errors import ConfigError
from removalx.experiments.runner import MetricSpec, parse_metrics
from removalx.experiments.store import Store
from removalx.experiments.substrates import recorded_details, with_dataset_mean
from removalx.metrics import perturbation_curve
from removalx.testing import LinearVideoModel, ToyClassifier, check_plugin
from removalx_plugins.removal.conditional import Conditional, ConditionalConfig
from removalx_plugins.removal.constant import Constant, ConstantConfig

MEAN, STD = (0.45, 0.40, 0.35), (0.25, 0.20, 0.30)


# -- constant value: model_mean ----------------------------------------------------------------
def test_model_mean_is_zero_in_the_normalised_input():
    clf = removalx.VideoClassifier(ToyClassifier(), mean=MEAN, std=STD)
    video = torch.rand(2, 6, 6, 3, generator=torch.Generator().manual_seed(0))
    rm = Constant(ConstantConfig(value="model_mean"))
    rm.bind_model(clf)
    rm.prepare(video, None, 0)  # type: ignore[arg-type]
    out = rm.apply(video, torch.zeros(1, 2, 6, 6), torch.arange(1))
    # the oracle is the model's own normalisation: a fully removed clip is the zero network input
    assert torch.allclose(clf.preprocess(out), torch.zeros(1, 3, 2, 6, 6), atol=1e-6)
    assert out[0, 1, 2, 3].tolist() == pytest.approx(MEAN)


def test_model_mean_without_normalisation_or_model_is_black():
    video = torch.rand(2, 6, 6, 3)
    keep = torch.zeros(1, 2, 6, 6)
    plain = Constant(ConstantConfig(value="model_mean"))
    plain.bind_model(removalx.VideoClassifier(ToyClassifier(), std=STD))  # x / std: zero at black
    unbound = Constant(ConstantConfig(value="model_mean"))
    for rm in (plain, unbound):
        rm.prepare(video, None, 0)  # type: ignore[arg-type]
        assert float(rm.apply(video, keep, torch.arange(1)).abs().max()) == 0.0
    check_plugin("removal", "constant", {"value": "model_mean"})  # unbound in the checker: works


def test_model_mean_outside_the_pixel_range_is_a_clear_error():
    rm = Constant(ConstantConfig(value="model_mean"))
    with pytest.raises(ConfigError, match=r"outside the pixel range \[0, 1\]") as exc:
        rm.bind_model(removalx.VideoClassifier(ToyClassifier(), mean=[114.8, 102.4, 89.8]))
    assert "VideoClassifier(..., mean=" in exc.value.fix
    with pytest.raises(ConfigError, match="2 entries for a 3-channel clip"):
        two = Constant(ConstantConfig(value="model_mean"))
        two.bind_model(removalx.VideoClassifier(ToyClassifier(), mean=[0.4, 0.4]))
        two.prepare(torch.rand(1, 4, 4, 3), None, 0)  # type: ignore[arg-type]


def _linear_explain(value, mean=MEAN, std=STD):
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(2, 2, 4, 4, 3, generator=g)
    video = torch.rand(2, 4, 4, 3, generator=g)
    clf = removalx.VideoClassifier(LinearVideoModel(weight), layout="BTHWC", mean=mean, std=std)
    recipe = {
        "name": "t",
        "segmentation": {"name": "grid3d", "cells": [1, 2, 2]},
        "feature_selection": {"name": "leave_one_out"},
        "sample_selection": {"name": "exhaustive"},
        "removal": {"name": "constant", "value": value},
        "behavior": {"name": "logit"},
        "summary": {"name": "difference", "base": "full"},
        "visualization": {"name": "heatmap"},
    }
    ex = removalx.Explainer.from_recipe(recipe, seed=0, progress=False)
    return ex.explain_clip(clf, video, 0), weight[0], video


def test_the_pipeline_binds_the_model_before_prepare():
    attr, w, video = _linear_explain("model_mean")
    # hand oracle: a linear model of the normalised input; removing a cell to the mean zeroes its
    # normalised pixels, so the drop is sum over the cell of w * (x - mean) / std
    z = (video - torch.tensor(MEAN)) / torch.tensor(STD)
    cells = [(slice(0, 2), slice(0, 2)), (slice(0, 2), slice(2, 4)), (slice(2, 4), slice(0, 2))]
    cells.append((slice(2, 4), slice(2, 4)))
    want = torch.tensor([float((w[:, r, c] * z[:, r, c]).sum()) for r, c in cells])
    assert torch.allclose(attr.feature_values.double(), want.double(), atol=1e-4)
    black, _, _ = _linear_explain(0.0)  # black is not the mean: the two must differ
    assert not torch.allclose(black.feature_values, attr.feature_values, atol=1e-2)


def test_aosa_recipes_fill_the_model_mean():
    for name in ("aosa", "aosa_sgl"):
        r = removalx.load_recipe(name)
        assert r.removal.name == "constant" and r.removal.value == "model_mean"


# -- metrics: model_mean is not a metric substrate -------------------------------------------
def test_metric_model_mean_fill_is_rejected_with_the_fix():
    with pytest.raises(ConfigError, match="fill"):
        parse_metrics("deletion", ["deletion.fill=model_mean"])
    clf = removalx.VideoClassifier(ToyClassifier(), mean=MEAN, std=STD)
    video = torch.rand(2, 8, 8, 3)
    with pytest.raises(ConfigError, match="no 'model_mean' substrate") as exc:
        perturbation_curve(clf, video, torch.rand(2, 8, 8), 0, fill="model_mean", steps=2)  # type: ignore[arg-type]
    assert "dataset_mean" in exc.value.fix


# -- experiments: the dataset mean and the recorded override -----------------------------------
def test_with_dataset_mean_fills_only_the_metrics_that_need_it():
    calls = []

    def mean():
        calls.append(1)
        return [0.1, 0.2, 0.3]

    specs = [
        MetricSpec("a", "deletion", {"preset": "step"}),
        MetricSpec("b", "insertion", {"preset": "step"}),
        MetricSpec("c", "deletion", {"preset": "step", "fill_value": [0.5, 0.5, 0.5]}),
        MetricSpec("d", "deletion", {}),
        MetricSpec("e", "deletion", {"fill": "dataset_mean"}),
    ]
    out = with_dataset_mean(specs, mean, "zoo:synthetic")
    assert len(calls) == 1  # computed once, for all the metrics that need it
    given, src = [0.1, 0.2, 0.3], "dataset_mean(zoo:synthetic)"
    assert [s.config.get("fill_value") for s in out] == [given, given, [0.5] * 3, None, given]
    assert [s.fill_source for s in out] == [src, src, None, None, src]
    assert with_dataset_mean(specs[2:4], mean, "x") == specs[2:4] and len(calls) == 1
    assert out[0].hash != specs[0].hash  # a score made with the model's mean is not reused


def test_recorded_details_lists_an_explicit_fill_value():
    given = MetricSpec("c", "deletion", {"preset": "step", "fill_value": [0.5, 0.5, 0.5]})
    details = {"value": 0.3, "overrides": ["steps"], "settings": {"fill_source": "fill_value"}}
    assert recorded_details(given, details)["overrides"] == ["steps", "fill_value"]
    assert details["overrides"] == ["steps"]  # the metric's own result is not changed
    run = MetricSpec("c", "deletion", {"preset": "step", "fill_value": [0.1] * 3}, "dataset_mean(k)")
    rec = recorded_details(run, details)
    assert rec["overrides"] == ["steps"] and rec["settings"]["fill_source"] == "dataset_mean(k)"


TINY = ["--n-videos", "2", "--frames", "4", "--size", "16", "--quiet"]
GRID = ["--set", "segmentation.name=grid3d", "--set", "segmentation.cells=[1,2,2]"]
GRID += ["--set", "sample_selection.n_samples=8"]


@pytest.fixture(scope="module")
def model_spec(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("model")
    (d / "toy_model.py").write_text(
        "from removalx.testing import ToyClassifier\n\ndef make():\n    return ToyClassifier(n_classes=4)\n"
    )
    return f"python:{d / 'toy_model.py'}:make"


def _evaluate(db: Path, model_spec: str, *sets: str) -> list[dict]:
    from removalx.cli.experiments import main

    argv = ["evaluate", "--recipe", "lime3d", "--model", model_spec, "--db", str(db), *TINY, *GRID]
    argv += ["--metrics", "deletion", "--metric-set", "deletion.preset=step"]
    argv += ["--metric-set", "deletion.steps=4", *(x for s in sets for x in ("--metric-set", s))]
    assert main(argv) == 0
    store = Store(db, read_only=True)
    try:
        return [s["details"] for s in store.scores() if s["metric"] == "deletion"]
    finally:
        store.close()


def test_evaluate_step_preset_uses_the_datasets_mean(tmp_path: Path, model_spec: str):
    from removalx.zoo.data import make_clip

    # brute force: the two clips evaluate reads (labels 0, 1; seeds 0, 1), every pixel averaged
    clips = torch.stack([make_clip(i % 4, i, frames=4, size=16).video.double() for i in range(2)])
    want = clips.reshape(-1, 3).mean(0).tolist()
    details = _evaluate(tmp_path / "r.db", model_spec)  # the toy model has no normalisation mean
    assert len(details) == 2
    for d in details:
        assert d["settings"]["fill_value"] == pytest.approx(want, abs=1e-5)
        assert d["settings"]["fill_source"] == "dataset_mean(zoo:synthetic)"
        assert "fill_value" not in d["overrides"]
    given = _evaluate(tmp_path / "g.db", model_spec, "deletion.fill_value=[0.4,0.4,0.4]")
    for d in given:
        assert d["settings"]["fill_value"] == pytest.approx([0.4] * 3)
        assert d["settings"]["fill_source"] == "fill_value" and "fill_value" in d["overrides"]


# -- conditional covariance: diagonal ----------------------------------------------------------
def _diagonal(seed: int = 5) -> tuple[Conditional, torch.Tensor]:
    video = torch.rand(2, 6, 6, 3, generator=torch.Generator().manual_seed(1))
    rm = Conditional(
        ConditionalConfig(patch_size=(2, 2), region=4, sample=True, covariance="diagonal", clip=False)
    )
    rm.prepare(video, None, seed=seed)  # type: ignore[arg-type]
    return rm, video


def test_diagonal_draws_have_the_target_mean_and_variance():
    rm, video = _diagonal()
    assert rm.mu is not None and rm.sigma is not None
    keep = torch.zeros(1, *video.shape[:3])
    n, b = 40_000, 2_000
    draws = torch.cat([rm.fill(video, keep, torch.arange(i, i + b)) for i in range(0, n, b)]).double()
    ok = rm.sigma.double() > 1e-3
    z = ((draws - rm.mu.double()) / rm.sigma.double().clamp_min(1e-3))[:, ok]  # [n, P] standardised
    p = z.shape[1]
    # per value: mean ~ N(0, 1/n), variance ~ N(1, 2/n); 5 standard errors over P values
    # (Bonferroni: a false alarm has probability below P * 6e-7)
    assert float(z.mean(0).abs().max()) < 5 / math.sqrt(n)
    assert float((z.var(0) - 1).abs().max()) < 5 * math.sqrt(2 / n)
    # independent values: every correlation ~ N(0, 1/n); 5.5 standard errors over P^2 / 2 pairs
    corr = torch.corrcoef(z.T)
    off = corr[~torch.eye(p, dtype=torch.bool)]
    assert float(off.abs().max()) < 5.5 / math.sqrt(n)


def test_diagonal_draws_do_not_depend_on_the_batch():
    rm, video = _diagonal()
    keep = torch.zeros(1, *video.shape[:3])
    whole = rm.fill(video, keep, torch.arange(100))
    parts = torch.cat([rm.fill(video, keep, torch.arange(i, min(i + 7, 100))) for i in range(0, 100, 7)])
    assert torch.equal(whole, parts)
    assert torch.equal(rm.fill(video, keep, torch.tensor([42]))[0], whole[42])
    other, _ = _diagonal(seed=6)
    assert not torch.allclose(other.fill(video, keep, torch.arange(100)), whole)  # the seed drives it
