"""Render an attribution with a recipe's visualization stage and write it to disk."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from removalx.core.legend import Legend
from removalx.core.registry import Registry, get_registry
from removalx.core.types import Attribution
from removalx.display.colorbar import with_colorbar
from removalx.display.output import GIF_BUDGET, enlarge, enlarge_factor, write_gif_within
from removalx.errors import ConfigError
from removalx.video.io import write_mp4, write_png_frames

FORMATS = ("gif", "mp4", "png")


def _visualizer(
    attribution: Attribution,
    visualization: dict[str, Any] | Any | None,
    registry: Registry | None,
    scale: tuple[float, float] | None = None,
) -> Any:
    """The visualization plugin for ``attribution`` (its recipe's, else ``heatmap``)."""
    registry = registry or get_registry()
    cfg = _vis_config(attribution, visualization)
    name = cfg.pop("name", "heatmap")
    if scale is not None:
        cfg["vmin"], cfg["vmax"] = float(scale[0]), float(scale[1])
    return registry.make("visualization", name, cfg)


def render(
    video: Tensor,
    attribution: Attribution,
    visualization: dict[str, Any] | Any | None = None,
    registry: Registry | None = None,
    *,
    scale: tuple[float, float] | None = None,
    colorbar: bool = False,
) -> Tensor:
    """``uint8[T, H, W, 3]`` overlay frames of ``attribution`` over ``video``.

    Parameters
    ----------
    video : Tensor
        ``float[T, H, W, C]`` in [0, 1]. When it is larger than the attribution (the clip at
        its original resolution), the map is upsampled to it (:func:`upsample`).
    attribution : Attribution
    visualization : mapping or config, optional
        A visualization config (with ``name``); default: the one in the attribution's
        recipe, else ``heatmap``.
    registry : Registry, optional
    scale : (float, float), optional
        ``(vmin, vmax)``: fixed ends of the colour scale (e.g. :func:`shared_scale` of the
        maps shown side by side), instead of each map's own stretching.
    colorbar : bool
        Draw the visualization's colour bar under the frames (``uint8[T, H + 44, W', 3]``,
        see :func:`removalx.display.colorbar.with_colorbar`).
    """
    if colorbar:
        return overlay_frames(video, attribution, visualization, registry, scale=scale, with_clip=False)
    vis = _visualizer(attribution, visualization, registry, scale)
    frames_video = video.float().cpu()
    return vis.frames(frames_video, upsample(attribution, tuple(frames_video.shape[1:3])))


def overlay_frames(
    video: Tensor,
    attribution: Attribution,
    visualization: dict[str, Any] | Any | None = None,
    registry: Registry | None = None,
    *,
    scale: tuple[float, float] | None = None,
    with_clip: bool = True,
    min_panel: int = 0,
) -> Tensor:
    """The frames ``removalx explain`` writes: clip and overlay side by side, colour bar below.

    ``video`` may be the clip at its original resolution (the map is upsampled to it). Returns
    ``uint8[T, k H + B, W', 3]`` (``W' = 2 k W + 2`` with the clip, at least 240 px; ``B`` the
    colour bar's height, :func:`~removalx.display.colorbar.strip_height`). ``min_panel``: clips
    less than that many pixels high are enlarged ``k`` times (nearest neighbour,
    :func:`~removalx.display.output.enlarge_factor`) before the colour bar is added, so its text
    keeps its size; ``k = 1`` by default.
    """
    vis = _visualizer(attribution, visualization, registry, scale)
    frames_video = video.float().cpu()
    attr = upsample(attribution, tuple(frames_video.shape[1:3]))
    frames = vis.frames(frames_video, attr)
    factor = enlarge_factor(int(frames_video.shape[1]), min_panel) if min_panel else 1
    frames, frames_video = enlarge(frames, factor), enlarge(frames_video, factor)
    if with_clip:
        frames = side_by_side(frames_video, frames)
    legend = vis.legend(attr) if hasattr(vis, "legend") else None
    return with_colorbar(frames, legend)


def shared_scale(
    attributions: Sequence[Attribution],
    visualization: dict[str, Any] | Any | None = None,
    registry: Registry | None = None,
) -> tuple[float, float] | None:
    """One colour scale ``(vmin, vmax)`` covering every map, for side-by-side views.

    Each map's own range (its visualization's stretching, :meth:`display_range`) is
    computed and the widest is returned; pass it as ``render(..., scale=...)`` so equal
    values get equal colours in every panel. ``None`` when no visualization reports a range.
    """
    lows, highs = [], []
    for attr in attributions:
        vis = _visualizer(attr, visualization, registry)
        if hasattr(vis, "display_range"):
            lo, hi = vis.display_range(attr)
            lows.append(lo)
            highs.append(hi)
    if not lows:
        return None
    lo, hi = min(lows), max(highs)
    if hi <= lo:
        hi = lo + 1e-12
    return lo, hi


def legend_of(
    attribution: Attribution,
    visualization: dict[str, Any] | Any | None = None,
    registry: Registry | None = None,
    *,
    scale: tuple[float, float] | None = None,
) -> Legend | None:
    """The colour bar (:class:`~removalx.core.legend.Legend`) of ``attribution`` drawn with ``visualization``.

    ``scale`` as in :func:`render`. ``None`` for a visualization without ``legend``.
    """
    vis = _visualizer(attribution, visualization, registry, scale)
    return vis.legend(attribution) if hasattr(vis, "legend") else None


def comparable_scales(
    attributions: Sequence[Attribution],
    visualizations: Sequence[dict[str, Any] | Any | None],
    registry: Registry | None = None,
    *,
    own: Sequence[bool] | None = None,
) -> list[tuple[float, float] | None]:
    """One colour scale per map: the :func:`shared_scale` of the maps of its kind.

    Maps are of one kind when they are drawn by the same visualization plugin, are both
    signed (diverging colour map centred at 0) or both unsigned (sequential), and agree on
    whether lower values are more important; only such maps share a scale, so equal values
    get equal colours across them. A map whose visualization reports no range or legend
    gets ``None`` (its own stretching). ``own[i]`` true keeps map ``i`` out of every shared
    scale: it gets its own range (for baselines such as random maps, whose spread would
    flatten the methods' maps).
    """
    own = [False] * len(attributions) if own is None else [bool(o) for o in own]
    keys: list[tuple[Any, ...] | None] = []
    for i, (attr, vis_cfg) in enumerate(zip(attributions, visualizations, strict=True)):
        vis = _visualizer(attr, vis_cfg, registry)
        if not (hasattr(vis, "display_range") and hasattr(vis, "legend")):
            keys.append(None)
            continue
        name = _vis_config(attr, vis_cfg).get("name", "heatmap")
        keys.append(
            (name, bool(vis.legend(attr).signed), attr.lower_is_important, ("own", i) if own[i] else "")
        )
    ranges: dict[tuple[Any, ...], tuple[float, float] | None] = {}
    for key in {k for k in keys if k is not None}:
        group = [(a, v) for a, v, k in zip(attributions, visualizations, keys, strict=True) if k == key]
        lows, highs = zip(*(_visualizer(a, v, registry).display_range(a) for a, v in group), strict=True)
        lo, hi = float(min(lows)), float(max(highs))
        ranges[key] = (lo, hi if hi > lo else lo + 1e-12)
    return [None if k is None else ranges[k] for k in keys]


def _vis_config(attribution: Attribution, visualization: dict[str, Any] | Any | None) -> dict[str, Any]:
    """``visualization`` as a dict (a copy); ``None``: the attribution's recipe's, else ``heatmap``."""
    if visualization is None:
        visualization = (attribution.meta.get("recipe") or {}).get("visualization") or {"name": "heatmap"}
    if hasattr(visualization, "model_dump"):
        visualization = visualization.model_dump()
    return dict(visualization)


def upsample(attribution: Attribution, size: tuple[int, ...]) -> Attribution:
    """``attribution`` with its values resized (bilinear in space) to ``(H, W)`` = ``size``.

    Used to draw a map computed on the model's clip over the clip at its original
    resolution. The same object is returned when the size already matches; otherwise a copy
    without feature space (the values no longer match its pixels).
    """
    h, w = int(size[0]), int(size[1])
    values = attribution.values
    if tuple(values.shape[1:]) == (h, w):
        return attribution
    up = F.interpolate(values.float()[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    return dataclasses.replace(attribution, values=up, space=None, meta=dict(attribution.meta))


def save_overlays(
    frames: Tensor,
    out_dir: str | Path,
    formats: Iterable[str] = ("gif",),
    fps: float = 8,
    stem: str = "overlay",
    gif_budget: int | None = GIF_BUDGET,
) -> list[Path]:
    """Write overlay frames as GIF / MP4 / PNG frames into ``out_dir``; returns the paths.

    A GIF larger than ``gif_budget`` bytes (default :data:`~removalx.display.output.GIF_BUDGET`,
    2 MB) is written with frames shrunk until it fits
    (:func:`~removalx.display.output.write_gif_within`); ``gif_budget=None`` keeps the full
    size. MP4 and PNG frames are always full size.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        if fmt == "gif":
            written.append(write_gif_within(frames, out / f"{stem}.gif", fps=fps, budget=gif_budget)[0])
        elif fmt == "mp4":
            written.append(write_mp4(frames, out / f"{stem}.mp4", fps=fps))
        elif fmt == "png":
            written.extend(write_png_frames(frames, out / f"{stem}_frames"))
        else:
            raise ConfigError(
                f"Unknown output format {str(fmt)[:40]!r}; expected one of {', '.join(FORMATS)}.",
                f"Use some of {', '.join(FORMATS)}.",
            )
    return written


def side_by_side(video: Tensor, frames: Tensor) -> Tensor:
    """Clip and overlay next to each other (``uint8[T, H, 2W + 2, 3]``)."""
    clip = (video[..., :3].clamp(0, 1) * 255).round().to(torch.uint8)
    gap = torch.full((*clip.shape[:2], 2, 3), 255, dtype=torch.uint8)
    return torch.cat([clip, gap, frames], dim=2)
