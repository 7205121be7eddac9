"""Colour bars: a legend under every overlay saying which colour means which attribution value.

A visualization describes its colours with a :class:`Legend` (:meth:`Visualizer.legend`): the
colours and opacities of a ramp of values from ``low`` to ``high``, computed by the same code
that colours the frames, so the bar cannot disagree with the overlay. :func:`with_colorbar`
draws it under ``uint8[T, H, W, 3]`` frames with the end values (and 0 for signed maps).

The text is drawn with DejaVu Sans (the font matplotlib ships, found without importing
matplotlib), else Pillow's default font at the same size; a label wider than the bar is
wrapped onto more lines and the strip grows (:func:`strip_height`), never cut.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

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
    "strip_height",
    "with_colorbar",
    "wrap_text",
]

#: Height in pixels of the strip drawn under the frames when its label fits on one line.
BAR_HEIGHT = 44
#: Frames narrower than this are padded (white) so that the tick labels fit.
MIN_WIDTH = 240
#: Size in pixels of the colour bar's text, and the height of each extra line of a wrapped label.
FONT_SIZE = 11
LINE_HEIGHT = 13
_PAD = 6


@functools.lru_cache(maxsize=1)
def font_path() -> str | None:
    """The file of DejaVu Sans as matplotlib ships it (``mpl-data/fonts/ttf``), or ``None``."""
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return str(path)
    return None


@functools.lru_cache(maxsize=8)
def _font(size: int) -> Any:
    """DejaVu Sans at ``size`` px; else Pillow's default font at that size (Pillow >= 10.1)."""
    from PIL import ImageFont

    path = font_path()
    if path is not None:
        try:
            return ImageFont.truetype(path, size)
        except OSError:  # Pillow without FreeType
            pass
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # old Pillow or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def wrap_text(text: str, width: float, font: Any = None) -> list[str]:
    """``text`` broken into lines no wider than ``width`` pixels in ``font`` (words kept whole
    where they fit, a number kept with its ``%``; a word wider than a line is split between
    characters). Nothing is cut."""
    from PIL import Image, ImageDraw

    font = font if font is not None else _font(FONT_SIZE)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def fits(s: str) -> bool:
        return draw.textlength(s, font=font) <= width

    lines: list[str] = []
    line = ""
    for word in text.replace(" %", "\u00a0%").split(" "):
        if not word:
            continue
        candidate = f"{line} {word}" if line else word
        if fits(candidate):
            line = candidate
            continue
        if line:
            lines.append(line)
        while not fits(word) and len(word) > 1:  # split a word wider than the line
            cut = max(k for k in range(1, len(word) + 1) if fits(word[:k]) or k == 1)
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line or not lines:
        lines.append(line)
    return [ln.replace("\u00a0", " ") for ln in lines]


def _label(legend: Legend) -> str:
    return legend.label + (f": {legend.note}" if legend.note else "")


def strip_height(legend: Legend, width: int) -> int:
    """Height of :func:`colorbar_strip` of ``legend`` at ``width``: :data:`BAR_HEIGHT`, plus
    :data:`LINE_HEIGHT` for every line the label wraps onto beyond the first."""
    width = max(int(width), 16)
    lines = wrap_text(_label(legend), width - 2 * _PAD)
    return BAR_HEIGHT + (len(lines) - 1) * LINE_HEIGHT


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
    """``uint8[H, width, 3]``: the colour bar (:func:`colorbar_row`) with its label and end values.

    ``H`` is :func:`strip_height`: :data:`BAR_HEIGHT` when the label (with its note) fits on one
    line, more when it wraps.
    """
    from PIL import Image, ImageDraw

    width = max(int(width), 16)
    pad = _PAD
    bar_w = max(width - 2 * pad, 8)
    font = _font(FONT_SIZE)
    lines = wrap_text(_label(legend), width - 2 * pad, font)
    extra = (len(lines) - 1) * LINE_HEIGHT
    img = Image.new("RGB", (width, BAR_HEIGHT + extra), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((pad, 1 + i * LINE_HEIGHT), line, fill=(30, 30, 30), font=font)
    top, h = 16 + extra, 10
    bar = colorbar_row(legend, bar_w)
    img.paste(Image.fromarray(np.repeat(bar[None], h, axis=0), "RGB"), (pad, top))
    draw.rectangle([pad - 1, top - 1, pad + bar_w, top + h], outline=(90, 90, 90))
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
        draw.text((tx, top + h + 3), label, fill=(30, 30, 30), font=font)
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
