"""Attributions in Jupyter: the animated overlay behind :meth:`Attribution._repr_html_`.

Importing this module registers :func:`attribution_html` with
:func:`removalx.core.types.set_html_renderer`; the ``removalx`` facade imports it with the
first public name it loads, so ``removalx.explain(...)`` or ``removalx.Attribution.load(...)``
shows as an overlay in a notebook.
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

import torch

from removalx.core.types import Attribution, set_html_renderer
from removalx.display.visualize import overlay_frames
from removalx.video.io import write_gif

__all__ = ["attribution_html"]


def attribution_html(attribution: Attribution) -> str:
    """The animated overlay (GIF, base64 data URI) with its colour bar, and the repr.

    Drawn over the explained clip when the attribution holds it (``attribution.video``), else
    over mid-grey; with the recipe's visualization (else ``heatmap``).
    """
    video = attribution.video
    if video is None or tuple(video.shape[:3]) != tuple(attribution.values.shape):
        video = torch.full((*attribution.values.shape, 3), 0.5)
    try:
        frames = overlay_frames(video, attribution, with_clip=attribution.video is not None)
    except Exception as exc:  # a visualizer not installed here: show the text form only
        return (
            f"<pre>{html.escape(repr(attribution))}</pre><p>(no overlay: {html.escape(str(exc)[:200])})</p>"
        )
    with tempfile.TemporaryDirectory() as tmp:
        data = write_gif(frames, Path(tmp) / "overlay.gif", fps=8).read_bytes()
    uri = "data:image/gif;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<figure style="margin:0"><img src="{uri}" alt="attribution overlay" '
        f'style="image-rendering:pixelated"/><figcaption><code>{html.escape(repr(attribution))}</code>'
        "</figcaption></figure>"
    )


set_html_renderer(attribution_html)
