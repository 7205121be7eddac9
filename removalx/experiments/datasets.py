"""Datasets of dataset-scale runs: ``zoo:synthetic`` clips and folders of video files.

* ``zoo:synthetic`` -- clip ``i`` is :func:`removalx.zoo.data.make_clip` with label ``i % 4``
  and seed ``seed + i``, with its per-pixel evidence (all frames are evidence frames).
* ``zoo:synthetic-two-part`` -- :func:`~removalx.zoo.data.make_two_part_clip` (evidence in the
  first half for even ``i``, the second for odd ``i``): ground truth for the temporal game.
* ``DIR`` -- every video file (``.mp4 .avi .webm .mov .mkv .m4v .gif``) and every sub-folder
  of frames in ``DIR``, sorted by name; labels (optional) from ``DIR/labels.csv``
  (``file,label`` rows) or ``DIR/labels.json`` (``{"file": label}``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from removalx.errors import ConfigError

__all__ = ["Item", "dataset_items"]

VIDEO_EXTS = {".mp4", ".avi", ".webm", ".mov", ".mkv", ".m4v", ".gif"}


@dataclass
class Item:
    """One clip of a dataset with its ground truth (``None`` where unknown)."""

    dataset: str
    item: str
    video: torch.Tensor
    label: int | None = None
    evidence: torch.Tensor | None = None
    evidence_frames: list[int] | None = None
    source: dict[str, Any] = field(default_factory=dict)


def _labels(folder: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    if (folder / "labels.json").exists():
        data = json.loads((folder / "labels.json").read_text())
        out.update({str(k): int(v) for k, v in data.items()})
    if (folder / "labels.csv").exists():
        with open(folder / "labels.csv", newline="") as fh:
            for row in csv.reader(fh):
                if len(row) >= 2 and row[1].strip().lstrip("-").isdigit():
                    out[row[0].strip()] = int(row[1])
    return out


def dataset_items(
    spec: str, n_videos: int | None = None, *, frames: int = 16, size: int = 112, seed: int = 0
) -> tuple[str, Iterator[Item], int]:
    """``(dataset key, lazy iterator of items, number of items)`` for a ``--dataset`` spec."""
    if spec in ("zoo:synthetic", "zoo:synthetic-two-part"):
        n = 8 if n_videos is None else int(n_videos)
        two = spec.endswith("two-part")

        def gen() -> Iterator[Item]:
            from removalx.zoo.data import make_clip, make_two_part_clip

            for i in range(n):
                label, s = i % 4, seed + i
                if two:
                    half = "first" if i % 2 == 0 else "second"
                    clip = make_two_part_clip(label, s, frames=frames, size=size, evidence_half=half)
                    name = f"l{label}-s{s}-f{frames}-x{size}-{half}"
                else:
                    clip = make_clip(label, s, frames=frames, size=size)
                    name = f"l{label}-s{s}-f{frames}-x{size}"
                yield Item(spec, name, clip.video, clip.label, clip.evidence,
                           list(clip.meta.get("evidence_frames", [])),
                           {"kind": spec, "label": label, "seed": s, "frames": frames, "size": size})

        return spec, gen(), n
    folder = Path(spec)
    if not folder.is_dir():
        raise ConfigError(
            f"--dataset {spec!r} is neither 'zoo:synthetic' nor a folder.",
            "Pass zoo:synthetic, zoo:synthetic-two-part or a folder of video files.",
        )
    files = sorted(p for p in folder.iterdir() if (p.suffix.lower() in VIDEO_EXTS and p.is_file()) or p.is_dir())
    if n_videos is not None:
        files = files[: int(n_videos)]
    if not files:
        raise ConfigError(f"No video files in {folder}.", f"Put files with extensions {sorted(VIDEO_EXTS)} there.")
    labels = _labels(folder)
    key = f"dir:{folder.resolve()}"

    def gen_dir() -> Iterator[Item]:
        from removalx.io import read_video

        for p in files:
            video, _ = read_video(p, frames=frames, size=(size, size), uniform=True)
            label = labels.get(p.name, labels.get(p.stem))
            yield Item(key, f"{p.name}-f{frames}-x{size}", video, label, None, None,
                       {"kind": "file", "path": str(p.resolve()), "frames": frames, "size": size})

    return key, gen_dir(), len(files)
