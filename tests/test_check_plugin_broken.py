"""``check_plugin`` rejects deliberately broken plugins with a message saying what is wrong.

Each broken plugin breaks one contract (issue 24 section 7); the test checks the failed
check's name and the evidence in the message (max difference, range seen, which feature).
The hand cases of the built-in behaviors and summaries are checked against values
computed by hand.
"""

from __future__ import annotations

import math
import types
from typing import Any

import pytest
import torch

import removalx
from removalx.core.hookspecs import hookimpl
from removalx.core.registry import Registry
from removalx.core.stages import Behavior, FeatureSelector, PluginConfig, Removal, Segmenter, Summary
from removalx.core.types import FeatureSpace, PartitionSpace, SamplePlan
from removalx.errors import PluginError
from removalx.testing import PluginCheckError, check_plugin
from removalx.testing.check_hand_cases import GAME_COEFFICIENTS, _quadrants, _run_summary, additive_game
from removalx.testing.determinism import difference, run_twice

pytestmark = pytest.mark.usefixtures("rx_one_thread")


class NoConfig(PluginConfig):
    """No options."""


def _halves(video: torch.Tensor) -> torch.Tensor:
    t, h, w = video.shape[:3]
    labels = torch.zeros(t, h, w, dtype=torch.long)
    labels[:, h // 2 :] = 1
    return labels


# -- removals --------------------------------------------------------------------------------
class GlobalRngRemoval(Removal):
    """Noise from torch's global generator: same seed, different clips."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def fill(self, video, keep, index):
        return torch.rand(video.shape)


class OutOfRangeRemoval(Removal):
    """Fills with 2.5, outside the pixel range."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def fill(self, video, keep, index):
        return torch.full_like(video, 2.5)


class KeptPixelsRemoval(Removal):
    """Brightens the whole clip, kept pixels too."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def fill(self, video, keep, index):
        return torch.zeros_like(video)

    def apply(self, video, keep, index, out=None):
        return (super().apply(video, keep, index) + 0.05).clamp(0, 1)


class BatchPositionRemoval(Removal):
    """Fill depends on the position in the batch, not on the sample index."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def fill(self, video, keep, index):
        pos = torch.arange(keep.shape[0], dtype=video.dtype).view(-1, 1, 1, 1, 1)
        return (pos / 10.0).expand(keep.shape[0], *video.shape)


class NoOpRemoval(Removal):
    """Fills removed pixels with the clip itself: removes nothing."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def fill(self, video, keep, index):
        return video


# -- segmenters ------------------------------------------------------------------------------
class HalvesSegmenter(Segmenter):
    def __init__(self, config: NoConfig) -> None:
        pass

    def segment(self, video, generator):
        return PartitionSpace(_halves(video))


class EmptyFeatureSegmenter(HalvesSegmenter):
    """Says three features, labels use only 0 and 1."""

    def segment(self, video, generator):
        space = PartitionSpace(_halves(video))
        space.n_features = 3
        return space


class OutOfRangeSegmenter(HalvesSegmenter):
    """Labels 0..2 but n_features = 2."""

    def segment(self, video, generator):
        labels = _halves(video)
        labels[:, :, -1] = 2
        space = PartitionSpace(labels)
        space.n_features = 2
        return space


class LeftHalfSpace(FeatureSpace):
    """Two features over the left half of the frame; the right half is in no feature."""

    def __init__(self, shape):
        self.shape = shape
        self.n_features = 2
        self.meta = {}
        t, h, w = shape
        self.masks = torch.zeros(2, t, h, w)
        self.masks[0, :, : h // 2, : w // 2] = 1
        self.masks[1, :, h // 2 :, : w // 2] = 1

    def render(self, z, index=None):
        removed = torch.einsum("bf,fthw->bthw", 1.0 - z.float(), self.masks)
        return 1.0 - removed.clamp(max=1.0)

    def expand(self, values):
        return torch.einsum("f,fthw->thw", values.float(), self.masks)


class UncoveredSegmenter(HalvesSegmenter):
    def segment(self, video, generator):
        return LeftHalfSpace(tuple(video.shape[:3]))


class UncoveredDeclaredSegmenter(UncoveredSegmenter):
    """The same space, honestly declared: hard masks, not covering."""

    space_provides = frozenset({"hard_masks", "nonempty"})


class FalsePartitionSegmenter(UncoveredSegmenter):
    space_provides = frozenset({"partition"})


class SoftSpace(LeftHalfSpace):
    def render(self, z, index=None):
        return 0.5 + 0.5 * super().render(z, index)


class FalseHardSegmenter(HalvesSegmenter):
    space_provides = frozenset({"hard_masks", "nonempty"})

    def segment(self, video, generator):
        return SoftSpace(tuple(video.shape[:3]))


class UnknownPropertySegmenter(HalvesSegmenter):
    space_provides = frozenset({"convex"})


class GlobalRngSegmenter(HalvesSegmenter):
    """A random partition from torch's global generator."""

    def segment(self, video, generator):
        t, h, w = video.shape[:3]
        return PartitionSpace(torch.randint(0, 4, (t, h, w)))


# -- behaviors, summaries, selections ----------------------------------------------------------
class WrongShapeBehavior(Behavior):
    def __init__(self, config: NoConfig) -> None:
        pass

    def score(self, logits, target):
        return logits[:, target : target + 1]


class DecreasingBehavior(Behavior):
    """The target's negated probability: falls when the target's logit grows."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def score(self, logits, target):
        return -logits.softmax(1)[:, target]


class IgnoringSummary(Summary):
    """Returns the same values whatever it is shown."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def begin(self, space, plan, base):
        self.f = space.n_features

    def update(self, z, keep, y, weights):
        pass

    def finalize(self, space):
        fv = torch.arange(self.f, dtype=torch.float32)
        return space.expand(fv), fv


class LastBatchSummary(Summary):
    """Occlusion differences of the last batch only (does not stream)."""

    requires = ("full",)

    def __init__(self, config: NoConfig) -> None:
        pass

    def begin(self, space, plan, base):
        self.full = base["full"]

    def update(self, z, keep, y, weights):
        removed = 1.0 - z.double()
        self.fv = (removed.T @ (self.full - y.double())) / removed.sum(0).clamp_min(1)

    def finalize(self, space):
        return space.expand(self.fv.float()), self.fv.float()


class GlobalRngSelector(FeatureSelector):
    def __init__(self, config: NoConfig) -> None:
        pass

    def plan(self, n_features, n_samples, generator):
        return SamplePlan((torch.rand(n_samples or 8, n_features) < 0.5).float())


HOOKS = {
    "segmentation": "removalx_register_segmenters",
    "removal": "removalx_register_removals",
    "behavior": "removalx_register_behaviors",
    "summary": "removalx_register_summaries",
    "feature_selection": "removalx_register_feature_selectors",
}


def _module(stage: str, name: str, factory: Any) -> types.ModuleType:
    mod = types.ModuleType(f"local_{name}")

    def register(registry):
        registry.add(name, NoConfig, factory)

    register.__name__ = HOOKS[stage]
    setattr(mod, HOOKS[stage], hookimpl(register))
    return mod


def _registry(stage: str, name: str, factory: Any) -> Registry:
    reg = Registry()
    reg.load_entry_points()  # the built-ins, for the pipeline part of the check
    reg.register_module(_module(stage, name, factory))
    return reg


# stage, factory, check name, regex the message must match
BROKEN = {
    "global_rng_removal": ("removal", GlobalRngRemoval, "determinism", r"max \|difference\| 0\.\d+"),
    "out_of_range_removal": ("removal", OutOfRangeRemoval, "value range", r"\[0\.\d+, 2\.5\]"),
    "kept_pixels_removal": ("removal", KeptPixelsRemoval, "kept pixels", r"keep = 1.*by up to 0\.05"),
    "batch_position_removal": ("removal", BatchPositionRemoval, "batch consistency", r"difference\| 0\.\d"),
    "no_op_removal": ("removal", NoOpRemoval, "effect", r"unchanged"),
    "empty_feature_seg": ("segmentation", EmptyFeatureSegmenter, "empty feature", r"feature 2 has no pixel"),
    "out_of_range_seg": ("segmentation", OutOfRangeSegmenter, "labels", r"\[0, 2\], outside \[0, 1\]"),
    "uncovered_seg": (
        "segmentation",
        UncoveredSegmenter,
        "coverage",
        r"512 of 1024 pixels are in no feature",
    ),
    "false_partition_seg": ("segmentation", FalsePartitionSegmenter, "partition", r"labels is None"),
    "false_hard_seg": ("segmentation", FalseHardSegmenter, "hard masks", r"values such as 0\.5"),
    "unknown_property_seg": ("segmentation", UnknownPropertySegmenter, "declaration", r"convex"),
    "global_rng_seg": ("segmentation", GlobalRngSegmenter, "determinism", r"differ \("),
    "wrong_shape_behavior": ("behavior", WrongShapeBehavior, "shape", r"gave \(3, 1\), expected \[3\]"),
    "decreasing_behavior": ("behavior", DecreasingBehavior, "hand case", r"must grow"),
    "ignoring_summary": ("summary", IgnoringSummary, "hand case", r"do not rank the features"),
    "last_batch_summary": ("summary", LastBatchSummary, "streaming", r"batches of 3"),
    "global_rng_selector": ("feature_selection", GlobalRngSelector, "determinism", r"max \|difference\| 1 "),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_plugin_fails_with_what_is_wrong(name):
    stage, factory, check, pattern = BROKEN[name]
    reg = _registry(stage, name, factory)
    with pytest.raises(PluginCheckError, match=pattern) as info:
        check_plugin(stage, name, registry=reg)
    err = info.value
    assert (err.stage, err.name, err.check) == (stage, name, check)
    assert f"fails check '{check}'" in str(err) and repr(name) in str(err)
    assert isinstance(err, PluginError) and isinstance(err, AssertionError)


def test_declared_non_covering_segmenter_passes():
    reg = _registry("segmentation", "left_half", UncoveredDeclaredSegmenter)
    check_plugin("segmentation", "left_half", registry=reg)


def test_check_plugin_leaves_the_global_generator_alone():
    torch.manual_seed(5)
    want = torch.rand(3)
    torch.manual_seed(5)
    check_plugin("removal", "noise")
    assert torch.equal(torch.rand(3), want)


def test_determinism_helpers():
    assert difference((torch.ones(2), None), (torch.ones(2), None)) is None
    assert "max |difference| 0.5" in difference(torch.zeros(2), torch.tensor([0.0, 0.5]))
    assert "shapes" in difference(torch.zeros(2), torch.zeros(3))
    a, b = run_twice(lambda: torch.rand(4))
    assert not torch.equal(a, b)  # the global generator really moves between the runs


# -- hand cases of the built-ins ---------------------------------------------------------------
def test_builtin_behaviors_on_known_logits():
    reg = removalx.get_registry()
    logits = torch.tensor([[math.log(1.0), math.log(3.0)], [0.0, 0.0]])
    prob = reg.get("behavior", "probability").make().score(logits, 1)
    assert torch.allclose(prob, torch.tensor([0.75, 0.5]))
    logit = reg.get("behavior", "logit").make().score(logits, 1)
    assert torch.allclose(logit, torch.tensor([math.log(3.0), 0.0]))
    odds = reg.get("behavior", "log_odds").make().score(logits, 1)  # log p / (1 - p) for two classes
    assert torch.allclose(odds, torch.tensor([math.log(3.0), 0.0]))


def test_builtin_summaries_on_the_additive_game():
    """y = b + z @ c on all 16 coalitions of 4 features, S = sum(c):

    Shapley values are c; LOCO differences f(full) - mean y(without i) = (S + c_i) / 2;
    RISE's mean over kept masks b + c_i + (S - c_i) / 2; the mean output with i removed
    b + (S - c_i) / 2."""
    reg = removalx.get_registry()
    c = torch.tensor(GAME_COEFFICIENTS, dtype=torch.float64)
    b, s = 0.25, float(c.sum())
    z, y = additive_game(c.float(), b)
    assert z.shape == (16, 4) and torch.equal(z.sum(0), torch.full((4,), 8.0))
    assert torch.allclose(y[-1], torch.tensor(b + s, dtype=torch.float32)) and float(y[0]) == b
    space = _quadrants(4, 16, 16)
    want = {
        "shapley": c,
        "difference": (s + c) / 2,
        "mask_mean": b + c + (s - c) / 2,
        "value": b + (s - c) / 2,
    }
    for name, expected in want.items():
        values, fv = _run_summary(reg.get("summary", name).make(), space, c.float(), 5)
        assert torch.allclose(fv.double(), expected, atol=1e-5), name
        assert torch.allclose(values, space.expand(fv), atol=1e-6), name
