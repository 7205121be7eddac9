"""Colour bars: a legend under every overlay saying which colour means which attribution value.

A visualization describes its colours with a :class:`Legend` (:meth:`Visualizer.legend`): the
colours and opacities of a ramp of values from ``low`` to ``high``, computed by the same code
that colours the frames, so the bar cannot disagree with the overlay. :func:`with_colorbar`
draws it under ``uint8[T, H, W, 3]`` frames with the end values (and 0 for signed maps).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from removalx.core.legend import N_COLOURS, Legend

__all__ = [
    "BAR_HEIGHT",
    "MIN_WIDTH",
    "N_COLOURS",
    "Legend",
    "colorbar_row",
    "colorbar_strip",
    "with_colorbar",
]

#: Height in pixels of the strip drawn under the frames.
BAR_HEIGHT = 44
#: Frames narrower than this are padded (white) so that the tick labels fit.
MIN_WIDTH = 240


def _font(size: int):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _tick(v: float) -> str:
    if v == 0:
        return "0"
    return f"{v:.3g}".replace("-", "\u2212")


def colorbar_row(legend: Legend, width: int) -> np.ndarray:
    """``uint8[width, 3]``: the bar's colours from ``low`` (left) to ``high`` (right), no text.

    Colours are drawn over mid-grey with their opacity relative to the most opaque one, so a
    map that encodes magnitude as opacity (``posneg``) shows it, and a constant opacity shows
    the plain colours.
    """
    pos = np.linspace(0, 1, max(int(width), 1))
    idx = np.clip(np.round(pos * (legend.colors.shape[0] - 1)).astype(int), 0, legend.colors.shape[0] - 1)
    colors = legend.colors.detach().float().cpu().numpy()[idx]
    alpha = legend.alpha.detach().float().cpu().numpy()[idx]
    peak = float(alpha.max()) if alpha.size else 0.0
    rel = (alpha / peak if peak > 0 else np.zeros_like(alpha))[:, None]
    row = colors * rel + 0.5 * (1 - rel)
    return (np.clip(row, 0, 1) * 255).round().astype(np.uint8)


def colorbar_strip(legend: Legend, width: int) -> np.ndarray:
    """``uint8[BAR_HEIGHT, width, 3]``: the colour bar (:func:`colorbar_row`) with its end values and label."""
    from PIL import Image, ImageDraw

    width = max(int(width), 16)
    pad = 6
    bar_w = max(width - 2 * pad, 8)
    img = Image.new("RGB", (width, BAR_HEIGHT), (255, 255, 255))
    bar = colorbar_row(legend, bar_w)
    top, h = 16, 10
    img.paste(Image.fromarray(np.repeat(bar[None], h, axis=0), "RGB"), (pad, top))
    draw = ImageDraw.Draw(img)
    font = _font(10)
    draw.rectangle([pad - 1, top - 1, pad + bar_w, top + h], outline=(90, 90, 90))
    text = legend.label + (f": {legend.note}" if legend.note else "")
    while len(text) > 4 and draw.textlength(text, font=font) > width - pad:
        text = text[: max(len(text) - 4, 1)] + "..."
        text = text.replace("......", "...")
    draw.text((pad, 2), text, fill=(30, 30, 30), font=font)
    ticks = [(0.0, legend.low), (1.0, legend.high)]
    span = legend.high - legend.low
    if legend.signed and span > 0 and legend.low < 0 < legend.high:
        ticks.append(((0 - legend.low) / span, 0.0))
    for frac, value in ticks:
        x = pad + frac * (bar_w - 1)
        label = _tick(value)
        tw = draw.textlength(label, font=font)
        tx = min(max(x - tw / 2, 0), width - tw)
        draw.line([x, top + h, x, top + h + 3], fill=(60, 60, 60))
        draw.text((tx, top + h + 4), label, fill=(30, 30, 30), font=font)
    return np.asarray(img, dtype=np.uint8).copy()


def with_colorbar(frames: Tensor, legend: Legend | None, min_width: int = MIN_WIDTH) -> Tensor:
    """``frames`` (``uint8[T, H, W, 3]``) with ``legend``'s colour bar under every frame.

    Frames narrower than ``min_width`` (default :data:`MIN_WIDTH`) are padded on the right
    with white so the labels fit. ``legend=None`` returns the frames unchanged.
    """
    if legend is None:
        return frames
    t, h, w, _ = frames.shape
    width = max(int(w), int(min_width))
    if width > w:
        pad = torch.full((t, h, width - w, 3), 255, dtype=torch.uint8)
        frames = torch.cat([frames.cpu(), pad], dim=2)
    strip = torch.from_numpy(colorbar_strip(legend, width))
    return torch.cat([frames.cpu(), strip[None].expand(t, -1, -1, -1)], dim=1)
