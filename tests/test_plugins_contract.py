"""Every registered pipeline plugin passes ``check_plugin``; broken plugins do not."""

from __future__ import annotations

import types

import pytest
import torch
from pydantic import BaseModel

import removalx
from removalx.core.hookspecs import hookimpl
from removalx.core.registry import STAGES, Registry
from removalx.core.stages import FeatureSelector, PluginConfig, Removal, Segmenter
from removalx.core.types import FeatureSpace, PartitionSpace, SamplePlan
from removalx.testing import check_plugin
from removalx.testing.data import tiny_video

SKIP_STAGES = {"explainer", "metric", "model"}
CHECKED_STAGES = [s for s in STAGES if s not in SKIP_STAGES]
PLUGINS = [(s, n) for s in CHECKED_STAGES for n in removalx.get_registry().names(s)]


def test_every_checked_stage_has_plugins():
    for stage in CHECKED_STAGES:
        assert removalx.get_registry().names(stage), stage


@pytest.mark.parametrize("stage,name", PLUGINS, ids=[f"{s}:{n}" for s, n in PLUGINS])
def test_builtin_plugin_passes_check(stage, name):
    check_plugin(stage, name)


# -- local plugins ----------------------------------------------------------------------


class HalvesConfig(PluginConfig):
    """Two features: top and bottom halves."""


def _halves(video: torch.Tensor) -> torch.Tensor:
    t, h, w = video.shape[:3]
    labels = torch.zeros(t, h, w, dtype=torch.long)
    labels[:, h // 2 :] = 1
    return labels


class GoodSegmenter(Segmenter):
    def __init__(self, config):
        self.config = config

    def segment(self, video, generator):
        return PartitionSpace(_halves(video))


class WrongShapeSpace(PartitionSpace):
    def render(self, z, index=None):
        return super().render(z, index)[:, :, :-1]  # drops the last row


class WrongShapeSegmenter(GoodSegmenter):
    def segment(self, video, generator):
        return WrongShapeSpace(_halves(video))


class InvertedSpace(PartitionSpace):
    def render(self, z, index=None):
        return 1.0 - super().render(z, index)  # all-ones removes everything


class InvertedSegmenter(GoodSegmenter):
    def segment(self, video, generator):
        return InvertedSpace(_halves(video))


class BatchDependentSpace(PartitionSpace):
    """Soft masks with a random dimming drawn per call: changes with the batch split."""

    def __init__(self, labels):
        super().__init__(labels)
        self._calls = 0

    def render(self, z, index=None):
        keep = super().render(z, index)
        self._calls += 1
        scale = 0.5 + 0.5 * ((self._calls * 7919) % 13) / 13.0
        full = (z > 0.5).all(1).view(-1, 1, 1, 1)
        return torch.where(full, keep, keep * scale)


class BatchDependentSegmenter(Segmenter):
    def __init__(self, config):
        self.config = config

    def segment(self, video, generator):
        # many features, so that the pipeline's batches really split
        t, h, w = video.shape[:3]
        labels = torch.arange(t * 4).view(t, 2, 2).repeat_interleave(h // 2, 1).repeat_interleave(w // 2, 2)
        return BatchDependentSpace(labels)


class LeakyRemoval(Removal):
    """Changes kept pixels too."""

    def __init__(self, config):
        self.config = config

    def fill(self, video, keep, index):
        return torch.zeros_like(video)

    def apply(self, video, keep, index):
        return super().apply(video, keep, index) * 0.9


class UnseededSelector(FeatureSelector):
    """Ignores the generator it is given."""

    def __init__(self, config):
        self.config = config

    def plan(self, n_features, n_samples, generator):
        z = (torch.rand(n_samples or 8, n_features) < 0.5).float()
        return SamplePlan(z)


class LooseConfig(BaseModel):
    """Not a PluginConfig: accepts unknown keys, mutable."""


def _module(hook: str, name: str, config, factory) -> types.ModuleType:
    mod = types.ModuleType(f"local_{name}")

    def register(registry):
        registry.add(name, config, factory)

    register.__name__ = hook
    setattr(mod, hook, hookimpl(register))
    return mod


SEG = "removalx_register_segmenters"
BROKEN = {
    "wrong_shape": ("segmentation", _module(SEG, "wrong_shape", HalvesConfig, WrongShapeSegmenter), "render"),
    "inverted": (
        "segmentation",
        _module(SEG, "inverted", HalvesConfig, InvertedSegmenter),
        "keep every pixel",
    ),
    "batch_dependent": (
        "segmentation",
        _module(SEG, "batch_dependent", HalvesConfig, BatchDependentSegmenter),
        "batch size",
    ),
    "loose_config": ("segmentation", _module(SEG, "loose_config", LooseConfig, GoodSegmenter), "forbid"),
    "leaky": (
        "removal",
        _module("removalx_register_removals", "leaky", HalvesConfig, LeakyRemoval),
        "unchanged",
    ),
    "unseeded": (
        "feature_selection",
        _module("removalx_register_feature_selectors", "unseeded", HalvesConfig, UnseededSelector),
        "deterministic",
    ),
}


def _local_registry(module) -> Registry:
    reg = Registry()
    reg.load_entry_points()  # the built-ins, for the pipeline part of the check
    reg.register_module(module)
    return reg


def test_well_behaved_local_plugin_passes():
    mod = _module(SEG, "halves", HalvesConfig, GoodSegmenter)
    reg = _local_registry(mod)
    assert "halves" in reg.names("segmentation")
    assert reg.get("segmentation", "halves").source == "local"
    check_plugin("segmentation", "halves", registry=reg)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_check_plugin_rejects_broken_plugin(name):
    stage, mod, message = BROKEN[name]
    reg = _local_registry(mod)
    assert name in reg.names(stage)
    assert name not in removalx.get_registry().names(stage)  # the global registry is untouched
    with pytest.raises(AssertionError, match=message) as info:
        check_plugin(stage, name, registry=reg)
    assert repr(name) in str(info.value)


def test_broken_plugin_in_registry_without_builtins():
    reg = Registry()
    reg.register_module(BROKEN["wrong_shape"][1])
    assert reg.names("segmentation") == ["wrong_shape"]
    with pytest.raises(AssertionError, match="wrong_shape"):
        check_plugin("segmentation", "wrong_shape", registry=reg)


def test_space_helpers_used_by_broken_plugins_behave():
    # sanity of the fixtures above: the good space keeps everything, the broken ones do not
    video = tiny_video(frames=4, size=16)
    good = GoodSegmenter(HalvesConfig()).segment(video, torch.Generator())
    assert isinstance(good, FeatureSpace)
    assert torch.equal(good.render(torch.ones(1, 2)), torch.ones(1, 4, 16, 16))
    bad = InvertedSegmenter(HalvesConfig()).segment(video, torch.Generator())
    assert torch.equal(bad.render(torch.ones(1, 2)), torch.zeros(1, 4, 16, 16))
