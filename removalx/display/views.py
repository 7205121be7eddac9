"""An attribution drawn by itself: ``attr.save("x.gif" | "x.mp4" | "x.png")`` and ``attr.plot()``.

Importing this module registers :func:`save_overlay` and :func:`plot_attribution` with
:func:`removalx.core.types.set_overlay_views` (the engine draws nothing itself), as shap's
``Explanation`` plots and Captum's ``visualize_image_attr`` users expect. Both draw with the
attribution's recipe's visualization (else ``heatmap``) over the explained clip when the
attribution holds it (``attribution.video``), else over mid-grey.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from removalx.core.types import Attribution, set_overlay_views
from removalx.display.colorbar import colorbar_row, with_colorbar
from removalx.display.output import GIF_BUDGET, MIN_PANEL, enlarge, enlarge_factor, write_gif_within
from removalx.display.visualize import legend_of, overlay_frames, render, upsample
from removalx.errors import ConfigError, require_extra, truncate
from removalx.video.io import write_mp4

__all__ = ["montage", "plot_attribution", "save_overlay"]


def _video(attribution: Attribution, video: Tensor | None) -> tuple[Tensor, bool]:
    """``(clip, is_real)``: ``video``, else the attribution's clip, else mid-grey of its shape."""
    shape = tuple(attribution.values.shape)
    for clip in (video, attribution.video):
        if clip is not None and clip.dim() == 4 and int(clip.shape[0]) == shape[0]:
            return clip.float().cpu(), True
    return torch.full((*shape, 3), 0.5), False


def montage(frames: Tensor, columns: int = 4, gap: int = 2) -> Tensor:
    """``uint8[T, H, W, 3]`` frames tiled row by row into one ``uint8[H', W', 3]`` image (white gaps)."""
    t, h, w, _ = frames.shape
    cols = max(1, min(int(columns), t))
    rows = math.ceil(t / cols)
    out = torch.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 255, dtype=torch.uint8)
    for i in range(t):
        r, c = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = frames[i]
    return out


def save_overlay(
    attribution: Attribution,
    path: str | Path,
    fmt: str,
    *,
    video: Tensor | None = None,
    visualization: dict[str, Any] | Any | None = None,
    fps: float = 8.0,
    gif_budget: int | None = GIF_BUDGET,
    min_panel: int = MIN_PANEL,
    columns: int = 4,
) -> Path:
    """Write ``attribution``'s overlay to ``path`` as ``fmt`` (``"gif"``, ``"mp4"`` or ``"png"``).

    GIF and MP4: the frames ``removalx explain`` writes (clip and overlay side by side when the
    clip is known, colour bar below), small clips enlarged to ``min_panel`` pixels high, a GIF
    kept under ``gif_budget`` bytes (:func:`~removalx.display.output.write_gif_within`). PNG:
    one image, the overlay frames in a grid of ``columns`` with the colour bar below.
    ``video``: the clip to draw on (default: ``attribution.video``, else grey).
    """
    clip, real = _video(attribution, video)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "png":
        from PIL import Image

        attr = upsample(attribution, tuple(clip.shape[1:3]))
        frames = enlarge(render(clip, attr, visualization), enlarge_factor(int(clip.shape[1]), min_panel))
        sheet = with_colorbar(montage(frames, columns)[None], legend_of(attr, visualization))[0]
        Image.fromarray(sheet.numpy(), "RGB").save(p, format="PNG")
        return p
    frames = overlay_frames(clip, attribution, visualization, with_clip=real, min_panel=min_panel)
    if fmt == "gif":
        return write_gif_within(frames, p, fps=fps, budget=gif_budget)[0]
    if fmt == "mp4":
        return write_mp4(frames, p, fps=fps)
    raise ConfigError(
        f"Unknown overlay format {truncate(str(fmt), 30)!r}; expected gif, mp4 or png.",
        "Use a path ending in .gif, .mp4 or .png, or pass format='gif' / 'mp4' / 'png'.",
    )


def plot_attribution(
    attribution: Attribution,
    *,
    video: Tensor | None = None,
    visualization: dict[str, Any] | Any | None = None,
    frames: int = 8,
    columns: int = 4,
    use_pyplot: bool = True,
) -> Any:
    """Draw ``attribution``'s overlay with matplotlib: a grid of frames and its colour bar.

    Parameters
    ----------
    attribution : Attribution
    video : Tensor, optional
        ``float[T, H, W, 3]`` clip to draw on (default: ``attribution.video``, else grey).
    visualization : mapping or config, optional
        Default: the attribution's recipe's, else ``heatmap``.
    frames : int
        At most this many frames, evenly spaced over the clip (first and last included).
    columns : int
        Frames per row.
    use_pyplot : bool
        Make the figure with ``matplotlib.pyplot`` (shown inline in Jupyter), as Captum's
        ``visualize_image_attr(use_pyplot=True)``; ``False``: a bare ``Figure`` (no global state).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    MissingExtraError
        matplotlib (the ``report`` extra) is not installed.
    """
    require_extra("matplotlib", "report", "Attribution.plot()")
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    clip, _ = _video(attribution, video)
    attr = upsample(attribution, tuple(clip.shape[1:3]))
    overlay = render(clip, attr, visualization)
    n = int(overlay.shape[0])
    idx = sorted({round(i * (n - 1) / max(min(frames, n) - 1, 1)) for i in range(max(min(frames, n), 1))})
    cols = max(1, min(int(columns), len(idx)))
    rows = math.ceil(len(idx) / cols)
    size = (2.2 * cols, 2.2 * rows * clip.shape[1] / max(int(clip.shape[2]), 1) + 0.9)
    if use_pyplot:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=size)
    else:
        from matplotlib.figure import Figure

        fig = Figure(figsize=size)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, t in zip(axes, [*idx, *([None] * (len(axes) - len(idx)))], strict=True):
        ax.set_axis_off()
        if t is not None:
            ax.imshow(overlay[t].numpy(), interpolation="nearest")
            ax.set_title(f"frame {t}", fontsize=8)
    legend = legend_of(attr, visualization)
    if legend is not None:
        row = colorbar_row(legend, 256).astype(np.float64) / 255
        lo, hi = legend.low, legend.high
        if lo > hi:  # lower is more important: the bar runs from the highest value
            row, lo, hi = row[::-1], hi, lo
        mappable = ScalarMappable(norm=Normalize(lo, hi if hi > lo else lo + 1e-12), cmap=ListedColormap(row))
        label = legend.label + (f": {legend.note}" if legend.note else "")
        bar = fig.colorbar(mappable, ax=list(axes), orientation="horizontal", fraction=0.06, pad=0.04)
        bar.set_label(label, fontsize=8)
    return fig


set_overlay_views(save_overlay, plot_attribution)
