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

__all__ = ["Item", "ItemRef", "dataset_items", "dataset_refs", "load_item"]

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


@dataclass(frozen=True)
class ItemRef:
    """A clip of a dataset before it is loaded: its key, label and how to load it (``source``).

    ``source`` is plain JSON (stored in the videos table) and is all :func:`load_item` needs, so
    any process that can read the data (a Ray worker on a shared file system) loads the clip.
    """

    dataset: str
    item: str
    label: int | None
    source: dict[str, Any]


def _check_n(n_videos: int | None) -> None:
    if n_videos is not None and (isinstance(n_videos, bool) or int(n_videos) < 1):
        raise ConfigError(
            f"n_videos must be a positive integer, got {n_videos!r}.", "Pass --n-videos 1 or more."
        )


def dataset_refs(
    spec: str,
    n_videos: int | None = None,
    *,
    frames: int = 16,
    size: int = 112,
    seed: int = 0,
    video_root: str | Path | None = None,
    classes: str | Path | None = None,
    boxes: str | Path | None = None,
) -> tuple[str, list[ItemRef]]:
    """``(dataset key, clips)`` of a ``--dataset`` spec, without decoding any video.

    Parameters
    ----------
    spec : str
        ``zoo:synthetic``, ``zoo:synthetic-two-part``, a folder of videos, ``kinetics:FILE.csv``
        (Kinetics annotation CSV) or ``ucf101:LIST.txt`` (a UCF101 split file next to
        ``classInd.txt``); docs/experiments.md, "Datasets".
    video_root : path, optional
        Folder of the clips of an annotation file (default: the annotation file's folder).
    classes : path, optional
        Kinetics: one class name per line, line ``i`` is class ``i`` (default: the sorted labels
        of the CSV).
    boxes : path, optional
        Folder of UCF101-24-style per-frame boxes (:mod:`removalx.data.formats`): the
        clips get the boxes as pointing-game evidence.

    Raises
    ------
    ConfigError
        ``n_videos`` < 1, or ``spec`` names no dataset.
    DatasetError
        A malformed label or annotation file (the message names the file and the line).
    """
    from removalx.data import formats

    _check_n(n_videos)
    if boxes is not None and not Path(boxes).is_dir():
        raise DatasetError(
            f"--boxes {truncate(str(boxes), 200)!r} is not a folder"
            f"{' (it is a file)' if Path(boxes).exists() else ' (it does not exist)'}.",
            "Pass the folder of per-clip box folders (BOXES/<Class>/<video>/00001.txt), or leave --boxes out.",
        )
    if spec in ("zoo:synthetic", "zoo:synthetic-two-part"):
        n = 8 if n_videos is None else int(n_videos)
        refs = []
        for i in range(n):
            label, s = i % 4, seed + i
            name = f"l{label}-s{s}-f{frames}-x{size}"
            if spec.endswith("two-part"):
                name += "-first" if i % 2 == 0 else "-second"
            src = {"kind": spec, "label": label, "seed": s, "frames": frames, "size": size}
            refs.append(ItemRef(spec, name, label, src))
        return spec, refs
    kind, colon, rest = spec.partition(":")
    if colon and kind in ("kinetics", "ucf101"):
        ann = Path(rest)
        root = Path(video_root) if video_root is not None else ann.parent
        names: dict[int, str] = {}
        entries = (
            formats.kinetics_entries(ann, root, classes, names)
            if kind == "kinetics"
            else formats.ucf101_entries(ann, root, names)
        )
        key = f"{kind}:{ann.resolve()}"
    else:
        folder = Path(spec)
        if not folder.is_dir():
            raise ConfigError(
                f"--dataset {truncate(spec, 200)!r} is neither 'zoo:synthetic', kinetics:FILE.csv, "
                "ucf101:LIST.txt nor a folder.",
                "Pass zoo:synthetic, zoo:synthetic-two-part, a folder of video files, "
                "kinetics:ANNOTATIONS.csv or ucf101:testlist01.txt.",
            )
        files = sorted(
            p for p in folder.iterdir() if (p.suffix.lower() in VIDEO_EXTS and p.is_file()) or p.is_dir()
        )
        if not files:
            raise ConfigError(
                f"No video files in {folder}.", f"Put files with extensions {sorted(VIDEO_EXTS)} there."
            )
        labels = _labels(folder)
        names = {}
        entries = [(p.name, p, labels.get(p.name, labels.get(p.stem))) for p in files]
        key = f"dir:{folder.resolve()}"
    if n_videos is not None:
        entries = entries[: int(n_videos)]
    refs = []
    for name, path, lab in entries:
        fsrc: dict[str, Any] = {"kind": "file", "path": str(path.resolve()), "frames": frames, "size": size}
        if lab is not None and lab in names:
            fsrc["label_name"] = names[lab]  # the data set's class name, checked against the model's
        if boxes is not None:
            fsrc["boxes"] = str(formats.box_folder(Path(boxes), name).resolve())
        refs.append(ItemRef(key, f"{name}-f{frames}-x{size}", lab, fsrc))
    return key, refs


def load_item(ref: ItemRef) -> Item:
    """Load (decode or generate) the clip of ``ref`` with its ground truth."""
    src = ref.source
    kind = src["kind"]
    if kind in ("zoo:synthetic", "zoo:synthetic-two-part"):
        from removalx.zoo.data import make_clip, make_two_part_clip

        label, s, frames, size = src["label"], src["seed"], src["frames"], src["size"]
        if kind.endswith("two-part"):
            half = "first" if ref.item.endswith("-first") else "second"
            clip = make_two_part_clip(label, s, frames=frames, size=size, evidence_half=half)
        else:
            clip = make_clip(label, s, frames=frames, size=size)
        frames_ev = list(clip.meta.get("evidence_frames", []))
        return Item(ref.dataset, ref.item, clip.video, clip.label, clip.evidence, frames_ev, dict(src))
    from removalx.video.io import read_video

    video, info = read_video(src["path"], frames=src["frames"], size=(src["size"], src["size"]), uniform=True)
    evidence, ev_frames = None, None
    if src.get("boxes"):
        from removalx.data.formats import box_evidence

        hw = (int(video.shape[1]), int(video.shape[2]))
        evidence = box_evidence(Path(src["boxes"]), info.indices, info.original, hw)
        ev_frames = [t for t in range(evidence.shape[0]) if bool(evidence[t].any())]
    return Item(ref.dataset, ref.item, video, ref.label, evidence, ev_frames, dict(src))


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
    key, refs = dataset_refs(spec, n_videos, frames=frames, size=size, seed=seed)
    return key, (load_item(r) for r in refs), len(refs)
