"""Datasets of dataset-scale runs: ``zoo:synthetic`` clips and folders of video files.

* ``zoo:synthetic`` -- clip ``i`` is :func:`removalx.zoo.data.make_clip` with label ``i % 4``
  and seed ``seed + i``, with its per-pixel evidence (all frames are evidence frames).
* ``zoo:synthetic-two-part`` -- :func:`~removalx.zoo.data.make_two_part_clip` (evidence in the
  first half for even ``i``, the second for odd ``i``): ground truth for the temporal game.
* ``DIR`` -- every video file (``.mp4 .avi .webm .mov .mkv .m4v .gif``) and every sub-folder
  of frames in ``DIR``, sorted by name; labels (optional) from ``DIR/labels.csv``
  (``file,label`` rows, an optional ``file,label`` header) or ``DIR/labels.json``
  (``{"file": label}``); a label is a class index (an integer >= 0), anything else is a
  :class:`~removalx.errors.DatasetError` naming the file and the line or key.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from removalx.errors import ConfigError, DatasetError, truncate

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


def _clip(text: object, n: int = 80) -> str:
    return truncate(str(text), n)


def _label_value(value: Any) -> int | None:
    """``value`` as a class index (an integer >= 0, or a string of digits); ``None`` if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        return int(value.strip())
    return None


_LABEL_FIX = "Give every video a class index (an integer >= 0), e.g. clip0.mp4,2."


def _labels_json(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({_clip(exc)}).", "Save labels.json as UTF-8.") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            'Write an object mapping file names to class indices: {"clip0.mp4": 2}.',
        ) from exc
    except (OSError, RecursionError) as exc:
        raise DatasetError(f"Cannot read {path}: {_clip(exc)}.", "Check the file.") from exc
    if not isinstance(data, dict):
        raise DatasetError(
            f"{path} holds a JSON {type(data).__name__}, expected an object mapping file names to "
            "class indices.",
            'Write e.g. {"clip0.mp4": 2, "clip1.mp4": 0}.',
        )
    out: dict[str, int] = {}
    for key, value in data.items():
        label = _label_value(value)
        if label is None:
            raise DatasetError(
                f"{path}: the label of {_clip(key)!r} is {_clip(json.dumps(value))}, expected a class "
                "index (an integer >= 0).",
                _LABEL_FIX,
            )
        out[str(key)] = label
    return out


def _labels_csv(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for lineno, row in enumerate(csv.reader(fh), start=1):
                if not row or not any(cell.strip() for cell in row):
                    continue
                if len(row) < 2:
                    raise DatasetError(
                        f"{path}, line {lineno}: expected FILE,LABEL, got {_clip(','.join(row))!r}.",
                        _LABEL_FIX,
                    )
                name, value = row[0].strip(), row[1].strip()
                if lineno == 1 and value.lower() == "label":  # the header row
                    continue
                label = _label_value(value)
                if label is None:
                    raise DatasetError(
                        f"{path}, line {lineno}: the label of {_clip(name)!r} is {_clip(value)!r}, "
                        "expected a class index (an integer >= 0).",
                        _LABEL_FIX,
                    )
                out[name] = label
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({_clip(exc)}).", "Save labels.csv as UTF-8.") from exc
    except (OSError, csv.Error) as exc:
        raise DatasetError(
            f"Cannot read {path} as CSV: {_clip(exc)}.", "Write one FILE,LABEL row per video."
        ) from exc
    return out


def _labels(folder: Path) -> dict[str, int]:
    """Labels from ``labels.json`` and ``labels.csv`` (the CSV wins where both name a file)."""
    out: dict[str, int] = {}
    if (folder / "labels.json").exists():
        out.update(_labels_json(folder / "labels.json"))
    if (folder / "labels.csv").exists():
        out.update(_labels_csv(folder / "labels.csv"))
    return out


def dataset_items(
    spec: str, n_videos: int | None = None, *, frames: int = 16, size: int = 112, seed: int = 0
) -> tuple[str, Iterator[Item], int]:
    """``(dataset key, lazy iterator of items, number of items)`` for a ``--dataset`` spec.

    Raises
    ------
    ConfigError
        ``n_videos`` < 1, or ``spec`` is neither a zoo dataset nor a folder with videos.
    DatasetError
        The folder's ``labels.json`` / ``labels.csv`` is malformed (the message names the
        file and the line or key).
    """
    if n_videos is not None and (isinstance(n_videos, bool) or int(n_videos) < 1):
        raise ConfigError(
            f"n_videos must be a positive integer, got {n_videos!r}.", "Pass --n-videos 1 or more."
        )
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
                yield Item(
                    spec,
                    name,
                    clip.video,
                    clip.label,
                    clip.evidence,
                    list(clip.meta.get("evidence_frames", [])),
                    {"kind": spec, "label": label, "seed": s, "frames": frames, "size": size},
                )

        return spec, gen(), n
    folder = Path(spec)
    if not folder.is_dir():
        raise ConfigError(
            f"--dataset {spec!r} is neither 'zoo:synthetic' nor a folder.",
            "Pass zoo:synthetic, zoo:synthetic-two-part or a folder of video files.",
        )
    files = sorted(
        p for p in folder.iterdir() if (p.suffix.lower() in VIDEO_EXTS and p.is_file()) or p.is_dir()
    )
    if n_videos is not None:
        files = files[: int(n_videos)]
    if not files:
        raise ConfigError(
            f"No video files in {folder}.", f"Put files with extensions {sorted(VIDEO_EXTS)} there."
        )
    labels = _labels(folder)
    key = f"dir:{folder.resolve()}"

    def gen_dir() -> Iterator[Item]:
        from removalx.io import read_video

        for p in files:
            video, _ = read_video(p, frames=frames, size=(size, size), uniform=True)
            label = labels.get(p.name, labels.get(p.stem))
            yield Item(
                key,
                f"{p.name}-f{frames}-x{size}",
                video,
                label,
                None,
                None,
                {"kind": "file", "path": str(p.resolve()), "frames": frames, "size": size},
            )

    return key, gen_dir(), len(files)
