"""Render an attribution with a recipe's visualization stage and write it to disk."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from removalx.errors import ConfigError
from removalx.io import write_gif, write_mp4, write_png_frames
from removalx.registry import Registry, get_registry
from removalx.types import Attribution

FORMATS = ("gif", "mp4", "png")


def render(
    video: Tensor,
    attribution: Attribution,
    visualization: dict[str, Any] | Any | None = None,
    registry: Registry | None = None,
) -> Tensor:
    """``uint8[T, H, W, 3]`` overlay frames of ``attribution`` over ``video``.

    ``visualization`` is a visualization config (with ``name``) or a mapping; default: the
    one in the attribution's recipe, else ``heatmap``.
    """
    registry = registry or get_registry()
    if visualization is None:
        visualization = (attribution.meta.get("recipe") or {}).get("visualization") or {"name": "heatmap"}
    if hasattr(visualization, "model_dump"):
        visualization = visualization.model_dump()
    cfg = dict(visualization)
    name = cfg.pop("name", "heatmap")
    vis = registry.make("visualization", name, cfg)
    return vis.frames(video.float().cpu(), attribution)


def save_overlays(
    frames: Tensor,
    out_dir: str | Path,
    formats: Iterable[str] = ("gif",),
    fps: float = 8,
    stem: str = "overlay",
) -> list[Path]:
    """Write overlay frames as GIF / MP4 / PNG frames into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        if fmt == "gif":
            written.append(write_gif(frames, out / f"{stem}.gif", fps=fps))
        elif fmt == "mp4":
            written.append(write_mp4(frames, out / f"{stem}.mp4", fps=fps))
        elif fmt == "png":
            written.extend(write_png_frames(frames, out / f"{stem}_frames"))
        else:
            raise ConfigError(f"Unknown output format {fmt!r}.", f"Use some of {', '.join(FORMATS)}.")
    return written


def side_by_side(video: Tensor, frames: Tensor) -> Tensor:
    """Clip and overlay next to each other (``uint8[T, H, 2W + 2, 3]``)."""
    clip = (video[..., :3].clamp(0, 1) * 255).round().to(torch.uint8)
    gap = torch.full((*clip.shape[:2], 2, 3), 255, dtype=torch.uint8)
    return torch.cat([clip, gap, frames], dim=2)
