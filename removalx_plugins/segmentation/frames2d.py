"""``frames2d``: image superpixels frame by frame, optionally carried along the optical flow.

"removal-based video explanations" Sec. 3.1 lists four image segmentations of
scikit-image -- SLIC, Quick Shift, Compact Watershed and Felzenszwalb's graph-based
method -- and notes that only SLIC extends to a video volume (that is ``slic3d``). The two
ways it gives to use an image method on a clip are both here:

* ``propagate: false`` -- every frame is segmented on its own; a feature is a region of
  one frame (``T x`` the per-frame count of features).
* ``propagate: true`` -- the first frame (and, with ``every: k``, every ``k``-th frame) is
  segmented and its labels are carried to the next frames along the dense optical flow
  (Sec. 3.1, last paragraph, and Fig. 2; the flow is OpenCV's Farnebaeck, computed as in
  ``flow_tubes``). A feature is then a region followed through time. Each pixel of frame
  ``t + 1`` takes the label found at ``p + b(p)`` in frame ``t``, where ``b`` is the flow from
  frame ``t + 1`` back to frame ``t`` (backward warping, nearest pixel, clamped to the frame),
  so every pixel gets a label; content entering the view takes the label of the region it
  appears next to, the effect the paper points out in Fig. 2.

The paper gives no parameters for these methods; the defaults are scikit-image's, except
``n_segments`` (SLIC) and ``markers`` (watershed), chosen to give about 50 regions per
112 x 112 frame.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from skimage.color import rgb2gray
from skimage.filters import sobel
from skimage.segmentation import felzenszwalb, quickshift, slic, watershed
from torch import Tensor

from removalx.plugin import PartitionSpace, PluginConfig, Segmenter, hookimpl
from removalx_plugins.segmentation.flow_tubes import FlowTubesConfig, farneback_flow

__all__ = ["Frames2D", "Frames2DConfig", "propagate_labels", "segment_frame"]


class Frames2DConfig(PluginConfig):
    """Which image method, its parameters, and whether labels follow the optical flow."""

    method: Literal["slic", "felzenszwalb", "quickshift", "watershed"] = Field(
        "slic", description="scikit-image method run on each (key) frame (Sec. 3.1)"
    )
    n_segments: int = Field(
        50, gt=0, description="slic: approximate regions per frame; at most 100,000", le=100_000, strict=True
    )
    compactness: float = Field(
        10.0,
        gt=0,
        description="slic: colour vs. space trade-off; watershed: see watershed_compactness; at most 10,000",
        le=10_000,
    )
    scale: float = Field(
        1.0,
        gt=0,
        description="felzenszwalb: higher means larger regions (skimage default); at most 1e6",
        le=1_000_000,
    )
    sigma: float = Field(
        0.8,
        ge=0,
        description="felzenszwalb: Gaussian pre-smoothing (skimage default); quickshift uses 0; at most 100",
        le=100,
    )
    min_size: int = Field(
        20,
        ge=1,
        description="felzenszwalb: smallest region in pixels (skimage default); at most 4096 x 4096",
        le=16_777_216,
        strict=True,
    )
    kernel_size: float = Field(
        5.0, gt=0, description="quickshift: Gaussian kernel width (skimage default); at most 100", le=100
    )
    max_dist: float = Field(
        10.0,
        gt=0,
        description="quickshift: cut-off of the data distance (skimage default); at most 10,000",
        le=10_000,
    )
    ratio: float = Field(
        1.0, ge=0, le=1, description="quickshift: colour vs. space balance (skimage default)"
    )
    markers: int = Field(
        50,
        gt=0,
        description="watershed: number of seed markers per frame; at most 100,000",
        le=100_000,
        strict=True,
    )
    watershed_compactness: float = Field(
        0.001,
        ge=0,
        description="watershed: compactness of the flooding (> 0: compact watershed); at most 10,000",
        le=10_000,
    )
    propagate: bool = Field(
        False, description="segment key frames only and carry their labels along the optical flow"
    )
    every: int = Field(
        0,
        ge=0,
        description="with propagate: segment anew every k-th frame (0: the first frame only); at most 100,000",
        le=100_000,
        strict=True,
    )


def segment_frame(frame: np.ndarray, config: Frames2DConfig) -> np.ndarray:
    """Labels ``int64[H, W]`` (``0 .. n-1``) of one ``float[H, W, C]`` frame in [0, 1].

    Parameters
    ----------
    frame : numpy.ndarray
        One frame, channels last; one channel or three (RGB).
    config : Frames2DConfig
        The method and its parameters.
    """
    rgb = frame if frame.shape[-1] == 3 else np.repeat(frame[..., :1], 3, axis=-1)
    m = config.method
    if m == "slic":
        labels = slic(
            rgb, n_segments=config.n_segments, compactness=config.compactness, start_label=0, channel_axis=-1
        )
    elif m == "felzenszwalb":
        labels = felzenszwalb(
            rgb, scale=config.scale, sigma=config.sigma, min_size=config.min_size, channel_axis=-1
        )
    elif m == "quickshift":
        labels = quickshift(
            rgb,
            ratio=config.ratio,
            kernel_size=config.kernel_size,
            max_dist=config.max_dist,
            convert2lab=True,
            channel_axis=-1,
        )
    else:  # compact watershed on the gradient magnitude of the grey frame
        labels = watershed(
            sobel(rgb2gray(rgb)), markers=config.markers, compactness=config.watershed_compactness
        )
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape).astype(np.int64)


def propagate_labels(labels: np.ndarray, back_flow: np.ndarray) -> np.ndarray:
    """Carry one frame's labels to the next frame by backward warping.

    Parameters
    ----------
    labels : numpy.ndarray
        ``int[H, W]`` labels of frame ``t``.
    back_flow : numpy.ndarray
        ``float[H, W, 2]`` flow ``(dx, dy)`` from frame ``t + 1`` to frame ``t``.

    Returns
    -------
    numpy.ndarray
        ``int[H, W]``: pixel ``p`` of frame ``t + 1`` gets ``labels[round(p + back_flow[p])]``
        (clamped to the frame).
    """
    h, w = labels.shape
    yy, xx = np.mgrid[0:h, 0:w]
    sx = np.clip(np.rint(xx + back_flow[..., 0]), 0, w - 1).astype(np.int64)
    sy = np.clip(np.rint(yy + back_flow[..., 1]), 0, h - 1).astype(np.int64)
    return labels[sy, sx]


class Frames2D(Segmenter):
    """Per-frame image superpixels, optionally propagated along the flow (Sec. 3.1, Fig. 2)."""

    #: Superpixels label every pixel once.
    space_provides = frozenset({"partition"})

    def __init__(self, config: Frames2DConfig) -> None:
        self.config = config

    def segment(self, video: Tensor, generator: torch.Generator) -> PartitionSpace:
        cfg = self.config
        frames = video.detach().float().cpu().numpy()
        t = frames.shape[0]
        out = np.empty(frames.shape[:3], dtype=np.int64)
        offset = 0
        back: Tensor | None = None
        if cfg.propagate and t > 1:
            # Flow of the reversed clip: entry i goes from frame t-1-i back to frame t-2-i.
            back = farneback_flow(video.flip(0), FlowTubesConfig.model_validate({}))
        keys: list[int] = []
        for i in range(t):  # one scikit-image (or warping) call per frame
            key = not cfg.propagate or i == 0 or (cfg.every > 0 and i % cfg.every == 0)
            if key:
                labels = segment_frame(frames[i], cfg) + offset
                keys.append(i)
            else:
                assert back is not None
                labels = propagate_labels(out[i - 1], back[t - 1 - i].numpy())
            out[i] = labels
            offset = int(out[: i + 1].max()) + 1
        meta: dict[str, Any] = {"method": cfg.method, "propagate": cfg.propagate}
        if cfg.propagate:
            meta["key_frames"] = keys
        return PartitionSpace(torch.from_numpy(out), meta=meta)


@hookimpl
def removalx_register_segmenters(registry):  # type: ignore[no-untyped-def]
    registry.add("frames2d", Frames2DConfig, Frames2D)
