"""``frames2d``: image superpixels per frame and labels carried along the optical flow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.segmentation import felzenszwalb, slic

from removalx_plugins.segmentation.frames2d import (
    Frames2D,
    Frames2DConfig,
    propagate_labels,
    segment_frame,
)


def _blocks_clip(t: int = 4, h: int = 24, w: int = 32, shift: int = 0) -> torch.Tensor:
    """Four flat colour blocks (a 2 x 2 layout); the whole picture moves ``shift`` px right per frame."""
    base = np.zeros((h, w + t * shift, 3), dtype=np.float32)
    colours = [(0.9, 0.1, 0.1), (0.1, 0.9, 0.1), (0.1, 0.1, 0.9), (0.9, 0.9, 0.1)]
    hw = (w + t * shift) // 2
    for k, c in enumerate(colours):
        r, q = divmod(k, 2)
        base[r * h // 2 : (r + 1) * h // 2, q * hw : (q + 1) * hw] = c
    frames = [base[:, base.shape[1] - w - i * shift : base.shape[1] - i * shift] for i in range(t)]
    return torch.from_numpy(np.stack(frames))


def _relabel(a: np.ndarray) -> np.ndarray:
    return np.unique(a, return_inverse=True)[1].reshape(a.shape)


def test_propagate_labels_hand_case() -> None:
    labels = np.array([[0, 1, 2], [3, 4, 5]])
    flow = np.zeros((2, 3, 2), dtype=np.float32)
    flow[..., 0] = -1.0  # every pixel of the next frame comes from one pixel to the left
    flow[1, 2] = (0.4, -0.6)  # rounds to (0, -1): from the pixel above
    out = propagate_labels(labels, flow)
    np.testing.assert_array_equal(out, [[0, 0, 1], [3, 3, 2]])  # left column clamped to the frame


@pytest.mark.parametrize("method", ["slic", "felzenszwalb", "quickshift", "watershed"])
def test_each_method_gives_a_partition_per_frame(method: str) -> None:
    video = _blocks_clip()
    space = Frames2D(Frames2DConfig(method=method, n_segments=4, markers=4)).segment(video, torch.Generator())
    labels = space.labels.numpy()
    assert labels.shape == (4, 24, 32)
    per_frame = [set(np.unique(labels[i])) for i in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not per_frame[i] & per_frame[j], "a feature of a per-frame segmentation spans two frames"
    assert space.n_features == sum(len(s) for s in per_frame)


def test_slic_frames_equal_scikit_image() -> None:
    video = _blocks_clip()
    cfg = Frames2DConfig(method="slic", n_segments=6, compactness=5.0)
    labels = Frames2D(cfg).segment(video, torch.Generator()).labels.numpy()
    for i in range(4):
        want = slic(video[i].numpy(), n_segments=6, compactness=5.0, start_label=0, channel_axis=-1)
        np.testing.assert_array_equal(_relabel(labels[i]), _relabel(want))


def test_felzenszwalb_frame_equals_scikit_image() -> None:
    frame = _blocks_clip()[0].numpy()
    want = felzenszwalb(frame, scale=2.0, sigma=0.5, min_size=10, channel_axis=-1)
    got = segment_frame(frame, Frames2DConfig(method="felzenszwalb", scale=2.0, sigma=0.5, min_size=10))
    np.testing.assert_array_equal(got, _relabel(want))


def test_propagated_labels_follow_the_motion() -> None:
    shift = 2
    video = _blocks_clip(t=5, shift=shift)
    cfg = Frames2DConfig(method="felzenszwalb", scale=100.0, min_size=50, propagate=True)
    space = Frames2D(cfg).segment(video, torch.Generator())
    labels = space.labels.numpy()
    assert space.meta["key_frames"] == [0]
    assert space.n_features == len(np.unique(labels[0])) == 4  # no new features after frame 0
    # The picture moves right: frame t's labels are frame 0's shifted by t * shift (away from
    # the left border, where content enters and takes its neighbour's label).
    for t in range(1, 5):
        s = t * shift
        inner = slice(s + 3, 32 - 3)
        np.testing.assert_array_equal(labels[t][2:-2, inner], labels[0][2:-2, 3 : 32 - 3 - s])


def test_every_k_segments_key_frames_anew() -> None:
    video = _blocks_clip(t=6, shift=1)
    cfg = Frames2DConfig(method="felzenszwalb", scale=100.0, min_size=50, propagate=True, every=3)
    space = Frames2D(cfg).segment(video, torch.Generator())
    labels = space.labels.numpy()
    assert space.meta["key_frames"] == [0, 3]
    first, second = set(np.unique(labels[:3])), set(np.unique(labels[3:]))
    assert not first & second
    assert first == set(np.unique(labels[0])) and second == set(np.unique(labels[3]))
