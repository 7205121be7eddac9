"""Tests of the synthetic clip generator in :mod:`removalx.zoo.data`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from removalx.errors import ConfigError, VideoError
from removalx.zoo.data import (
    CLASS_NAMES,
    DEMO_PATH,
    TARGET_RGB,
    demo_clip,
    load_demo_gif,
    make_clip,
    make_dataset,
    make_two_part_clip,
    write_demo,
)


def _centroids(evidence: torch.Tensor) -> np.ndarray:
    """(x, y) centroid of the evidence mask per frame, ``[T, 2]``."""
    t, _, _ = evidence.shape
    out = np.zeros((t, 2))
    for i in range(t):
        ys, xs = np.nonzero(evidence[i].numpy())
        out[i] = xs.mean(), ys.mean()
    return out


def test_clip_contract() -> None:
    clip = make_clip(2, seed=3)
    assert clip.video.shape == (16, 112, 112, 3)
    assert clip.video.dtype == torch.float32
    assert float(clip.video.min()) >= 0.0 and float(clip.video.max()) <= 1.0
    assert clip.evidence.shape == (16, 112, 112) and clip.evidence.dtype == torch.bool
    assert clip.label == 2 and clip.meta["class_name"] == CLASS_NAMES[2]
    assert len(CLASS_NAMES) == 4


def test_same_seed_same_clip_different_seed_different_clip() -> None:
    a, b, c = make_clip(1, seed=11), make_clip(1, seed=11), make_clip(1, seed=12)
    assert torch.equal(a.video, b.video) and torch.equal(a.evidence, b.evidence)
    assert not torch.equal(a.video, c.video)
    assert not torch.equal(a.evidence, c.evidence)


def test_other_sizes() -> None:
    clip = make_clip(0, seed=1, frames=8, size=64)
    assert clip.video.shape == (8, 64, 64, 3) and clip.evidence.shape == (8, 64, 64)
    assert bool(clip.evidence.any(dim=(1, 2)).all())


@pytest.mark.parametrize("label", range(4))
def test_evidence_lies_on_the_target(label: int) -> None:
    clip = make_clip(label, seed=100 + label)
    ev = clip.evidence
    assert bool(ev.any(dim=(1, 2)).all()), "target visible in every frame"
    colours = clip.video[ev]  # [P, 3]
    target = torch.tensor(TARGET_RGB)
    # target pixels have the (jittered, noisy) target colour ...
    assert float((colours.mean(0) - target).abs().max()) < 0.08
    assert float(((colours - target).abs().max(1).values < 0.2).float().mean()) > 0.99
    # ... and almost no other pixel looks like it
    others = clip.video[~ev]
    lookalike = ((others - target).abs().max(1).values < 0.2).float().mean()
    assert float(lookalike) < 1e-3


@pytest.mark.parametrize("label, direction", [(0, (-1, 0)), (1, (1, 0)), (2, (0, -1)), (3, (0, 1))])
def test_target_moves_in_the_labelled_direction(label: int, direction: tuple[int, int]) -> None:
    c = _centroids(make_clip(label, seed=7).evidence)
    shift = c[-1] - c[0]
    assert float(np.dot(shift, direction)) > 20.0
    assert abs(float(shift[1 if direction[0] else 0])) < 6.0


def test_single_frame_does_not_reveal_the_label() -> None:
    """Frame-0 target position and frame-0 colour statistics have the same distribution for all labels."""
    starts, means = {}, {}
    for label in range(4):
        clips = [make_clip(label, seed=1000 + i) for i in range(25)]
        starts[label] = np.stack([_centroids(c.evidence[:1])[0] for c in clips])
        means[label] = np.stack([c.video[0].mean((0, 1)).numpy() for c in clips])
    all_starts = np.concatenate(list(starts.values()))
    lo, hi = all_starts.min(0), all_starts.max(0)
    for label in range(4):
        # every label's frame-0 position spans the same box and has (nearly) the same mean
        assert np.all(np.abs(starts[label].mean(0) - all_starts.mean(0)) < 6.0)
        assert np.all(starts[label].min(0) - lo < 10.0) and np.all(hi - starts[label].max(0) < 10.0)
        assert np.all(np.abs(means[label].mean(0) - np.concatenate(list(means.values())).mean(0)) < 0.05)


@pytest.mark.parametrize("half", ["first", "second"])
def test_two_part_clip_has_evidence_only_in_its_half(half: str) -> None:
    clip = make_two_part_clip(3, seed=5, evidence_half=half)
    assert clip.video.shape == (16, 112, 112, 3)
    frames = clip.meta["evidence_frames"]
    assert frames == (list(range(8)) if half == "first" else list(range(8, 16)))
    per_frame = clip.evidence.any(dim=(1, 2))
    assert bool(per_frame[frames].all())
    assert int(per_frame.sum()) == len(frames)
    # the half without evidence does not show the target colour either
    other = [t for t in range(16) if t not in frames]
    target = torch.tensor(TARGET_RGB)
    close = ((clip.video[other] - target).abs().max(-1).values < 0.2).float().mean()
    assert float(close) < 1e-3
    again = make_two_part_clip(3, seed=5, evidence_half=half)
    assert torch.equal(clip.video, again.video)


def test_make_dataset_shapes_balance_and_determinism() -> None:
    videos, labels, evidence = make_dataset(12, seed=3, frames=8, size=48)
    assert videos.shape == (12, 8, 48, 48, 3) and videos.dtype == torch.float32
    assert labels.shape == (12,) and labels.dtype == torch.int64
    assert evidence.shape == (12, 8, 48, 48) and evidence.dtype == torch.bool
    assert torch.bincount(labels, minlength=4).tolist() == [3, 3, 3, 3]
    v2, l2, e2 = make_dataset(12, seed=3, frames=8, size=48)
    assert torch.equal(videos, v2) and torch.equal(labels, l2) and torch.equal(evidence, e2)
    u8, _, _ = make_dataset(4, seed=3, frames=8, size=48, as_uint8=True)
    assert u8.dtype == torch.uint8


def test_bad_arguments_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="label"):
        make_clip(4, seed=0)
    with pytest.raises(ConfigError, match="frames"):
        make_clip(0, seed=0, frames=1)
    with pytest.raises(ConfigError, match="evidence_half"):
        make_two_part_clip(0, seed=0, evidence_half="middle")
    with pytest.raises(ConfigError):
        make_dataset(0, seed=0)


def test_bundled_demo_matches_generator(tmp_path) -> None:
    clip = demo_clip()
    assert torch.equal(clip.video, demo_clip().video)
    stored = load_demo_gif(DEMO_PATH)
    assert stored.shape == (16, 112, 112, 3)
    assert float((stored - clip.video).abs().mean()) < 0.03  # 256-colour palette per frame
    written = load_demo_gif(write_demo(tmp_path / "demo.gif"))
    assert torch.equal(written, stored)
    with pytest.raises(VideoError):
        load_demo_gif(tmp_path / "missing.gif")
