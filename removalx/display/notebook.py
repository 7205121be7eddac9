"""Attributions in Jupyter: the animated overlay behind :meth:`Attribution._repr_html_`.

Importing this module registers :func:`attribution_html` with
:func:`removalx.core.types.set_html_renderer` (and, through :mod:`removalx.display.views`,
``Attribution.save`` of overlays and ``Attribution.plot``); the ``removalx`` facade imports it
with the first public name it loads, so ``removalx.explain(...)`` or
``removalx.Attribution.load(...)`` shows as an overlay in a notebook. Small clips are enlarged
(nearest neighbour) to at least :data:`~removalx.display.output.MIN_PANEL` pixels high, as the
user study shows them, so that the overlay is not a stamp beside its colour bar.
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

import torch

from removalx.core.types import Attribution, set_html_renderer
from removalx.display import views as _views  # noqa: F401  (registers Attribution.save/plot overlays)
from removalx.display.output import GIF_BUDGET, MIN_PANEL, write_gif_within
from removalx.display.visualize import overlay_frames

__all__ = ["attribution_html"]


def attribution_html(attribution: Attribution) -> str:
    """The animated overlay (GIF, base64 data URI) with its colour bar, and the repr.

    Drawn over the explained clip when the attribution holds it (``attribution.video``), else
    over mid-grey; with the recipe's visualization (else ``heatmap``); a clip less than
    :data:`~removalx.display.output.MIN_PANEL` pixels high enlarged to it, the GIF kept under
    :data:`~removalx.display.output.GIF_BUDGET` bytes.
    """
    video = attribution.video
    if video is None or tuple(video.shape[:3]) != tuple(attribution.values.shape):
        video = torch.full((*attribution.values.shape, 3), 0.5)
    try:
        frames = overlay_frames(
            video, attribution, with_clip=attribution.video is not None, min_panel=MIN_PANEL
        )
    except Exception as exc:  # a visualizer not installed here: show the text form only
        return (
            f"<pre>{html.escape(repr(attribution))}</pre><p>(no overlay: {html.escape(str(exc)[:200])})</p>"
        )
    with tempfile.TemporaryDirectory() as tmp:
        data = write_gif_within(frames, Path(tmp) / "overlay.gif", fps=8, budget=GIF_BUDGET)[0].read_bytes()
    uri = "data:image/gif;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<figure style="margin:0"><img src="{uri}" alt="attribution overlay" '
        f'style="image-rendering:pixelated"/><figcaption><code>{html.escape(repr(attribution))}</code>'
        "</figcaption></figure>"
    )


set_html_renderer(attribution_html)
