"""The ``hf:`` model spec and raw Hugging Face models: random-init VideoMAE, TimeSformer and ViViT
saved to a folder, loaded back through ``hf:`` and explained end to end (nothing downloaded)."""

from __future__ import annotations

import json
import os
import sys
import warnings

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers / huggingface_hub read it

import numpy as np
import pytest
import torch

import removalx
from removalx.errors import MissingExtraError, ModelError
from removalx.models import load_model

tf = pytest.importorskip("transformers")

#: A recipe small enough for a 4x32x32 clip: 8 cells, leave-one-out, exact.
RECIPE = {
    "name": "tiny_loco",
    "segmentation": {"name": "grid3d", "cells": [2, 2, 2]},
    "feature_selection": {"name": "leave_one_out"},
    "sample_selection": {"name": "exhaustive"},
    "summary": {"name": "difference"},
}
LABELS = {0: "walk", 1: "run", 2: "jump"}
SMALL = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 37}


def _family(name: str):  # type: ignore[no-untyped-def]
    crop = {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}}
    if name == "videomae":
        cfg = tf.VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, **SMALL)
        return (
            cfg,
            tf.VideoMAEForVideoClassification,
            tf.VideoMAEImageProcessor(image_mean=[0.4, 0.45, 0.5], image_std=[0.2, 0.25, 0.3], **crop),
        )
    if name == "timesformer":
        cfg = tf.TimesformerConfig(image_size=32, patch_size=16, num_frames=4, **SMALL)
        return cfg, tf.TimesformerForVideoClassification, tf.VideoMAEImageProcessor(**crop)
    cfg = tf.VivitConfig(image_size=32, num_frames=4, tubelet_size=[2, 16, 16], **SMALL)
    return cfg, tf.VivitForVideoClassification, tf.VivitImageProcessor(**crop)  # rescale with offset


@pytest.fixture(scope="module", params=["videomae", "timesformer", "vivit"])
def saved(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    """``(folder, model, processor)`` of a random-init model saved with its processor."""
    cfg, cls, processor = _family(request.param)
    cfg.num_labels = 3
    cfg.id2label, cfg.label2id = dict(LABELS), {v: k for k, v in LABELS.items()}
    torch.manual_seed(0)
    model = cls(cfg).eval()
    folder = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder, model, processor


def _clip(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(4, 32, 32, 3, generator=g) * 255).round() / 255  # exact 8-bit values


def test_hf_spec_reads_size_normalisation_and_labels(saved) -> None:  # type: ignore[no-untyped-def]
    folder, _, processor = saved
    clf = load_model(f"hf:{folder}", device="cpu")
    assert clf.layout == "BTCHW"
    assert clf.input_size == (4, 32, 32) and clf.clip_size == (4, 32, 32)
    assert clf.class_names == ["walk", "run", "jump"]
    # Oracle: the processor's own preprocessing of the 8-bit frames, fed to the model.
    video = _clip()
    frames = list((video * 255).round().to(torch.uint8).numpy())
    pixel_values = processor(frames, return_tensors="pt")["pixel_values"]
    assert tuple(pixel_values.shape) == (1, 4, 3, 32, 32)
    with torch.no_grad():
        expected = clf.module(pixel_values).logits
        got = clf(video[None])
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_hf_spec_explained_end_to_end(saved) -> None:  # type: ignore[no-untyped-def]
    folder, model, _ = saved
    clf = load_model(f"hf:{folder}", device="cpu")
    video = _clip(1)
    ex = removalx.Explainer.from_recipe(RECIPE, seed=0, progress=False)
    attr = ex.explain(clf, video, target="run")
    assert isinstance(attr, removalx.Attribution)
    assert attr.target == 1 and attr.meta["target_name"] == "run"
    assert attr.values.shape == (4, 32, 32) and torch.isfinite(attr.values).all()
    assert attr.meta["n_forward"] == 1 + 8  # the clean pass (also the full base case), 8 samples
    # A raw transformers model, loaded as a user would, is wrapped the same way (its processor
    # found next to it): no transformers ValueError, the same attribution.
    raw_model = tf.AutoModelForVideoClassification.from_pretrained(folder, local_files_only=True)
    raw = ex.explain(raw_model, video, target=1)
    torch.testing.assert_close(raw.values, attr.values)
    # Created in memory (no processor saved): wrapped with the family's default processor, loudly.
    with pytest.warns(UserWarning, match="No image processor saved"):
        fresh = ex.explain(model, video, target=1)
    assert fresh.values.shape == (4, 32, 32)


def test_hf_spec_from_the_cli(saved, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from removalx.cli import main

    folder, _, _ = saved
    if "videomae" not in folder.name:
        pytest.skip("the CLI path is the same for every family; run once")
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        argv = ["explain", "--recipe", "occlusion3d", "--model", f"hf:{folder}", "--device", "cpu"]
        code = main([*argv, "--set", "segmentation.divisions=[2,2,2]", "--out", str(out), "--quiet"])
    assert code == 0
    assert np.load(out / "attribution.npy").ndim == 3  # the bundled demo clip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == f"hf:{folder}" and summary["target_name"] in LABELS.values()


def test_missing_folder_is_a_model_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="never downloads"):
        load_model(f"hf:{tmp_path / 'nope'}", device="cpu")
    with pytest.raises(ModelError, match="names no model"):
        load_model("hf:", device="cpu")


def test_weights_flag_is_rejected(saved) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelError, match="--weights"):
        load_model(f"hf:{saved[0]}", weights="w.pt", device="cpu")


def test_non_video_hf_model_is_rejected_with_how_to_wrap() -> None:
    cfg = tf.ViTConfig(image_size=32, patch_size=16, num_labels=2, **SMALL)
    model = tf.ViTForImageClassification(cfg).eval()
    ex = removalx.Explainer.from_recipe(RECIPE, seed=0, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ModelError, match="VideoClassifier") as info:
            ex.explain(model, _clip())
    assert "num_frames" in str(info.value)


def test_missing_transformers_names_the_extra(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingExtraError, match=r"removalx\[hf\]"):
        load_model(f"hf:{tmp_path}", device="cpu")
