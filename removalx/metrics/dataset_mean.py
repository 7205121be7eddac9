"""The mean colour of a dataset: the insertion baseline of STEP (journal Eq. 12).

STEP takes the baseline input ``X_bar`` of both perturbation games to be "the mean of the
training data". :func:`dataset_mean` computes the per-channel mean colour of a dataset's
clips once (read with the same loader as ``removalx evaluate``, so the clips are sampled and
resized as the model sees them) and stores it in a small JSON file; later calls read the
file as long as the dataset and the sampling are unchanged. Give the result to the metrics
as ``fill: dataset_mean`` with ``fill_value: [r, g, b]``.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import torch

from removalx.errors import ConfigError, StorageError, truncate

__all__ = ["CACHE_NAME", "dataset_mean"]

#: Name of the cache file written into a dataset folder.
CACHE_NAME = "removalx_dataset_mean.json"
_VERSION = 1


def _fingerprint(folder: Path) -> list[list[Any]]:
    """Name, size and modification time of every entry of ``folder`` (what the loader may read)."""
    out: list[list[Any]] = []
    for p in sorted(folder.iterdir()):
        if p.name == CACHE_NAME or p.name.startswith("."):
            continue
        st = p.stat()
        out.append([p.name, int(st.st_size) if p.is_file() else -1, int(st.st_mtime_ns)])
    return out


def _read_cache(path: Path, key: dict[str, Any]) -> list[float] | None:
    """The cached mean if ``path`` holds one for ``key``; ``None`` otherwise (a bad file is ignored)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        warnings.warn(
            f"Ignoring unreadable mean cache {truncate(str(path), 200)}: {truncate(str(exc), 120)}.",
            stacklevel=3,
        )
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    mean = data.get("mean")
    if (
        not isinstance(mean, list)
        or not mean
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in mean)
    ):
        return None
    return [float(v) for v in mean]


def _write_cache(path: Path, key: dict[str, Any], mean: list[float], n_pixels: int) -> None:
    from removalx.files.atomic import atomic_write, storage_errors

    text = json.dumps({"key": key, "mean": mean, "n_pixels": n_pixels}, indent=2)
    with storage_errors(path, "the dataset mean cache"), atomic_write(path, "w") as fh:
        fh.write(text)


def _annotation_file(spec: str) -> Path | None:
    """The annotation file of a ``kinetics:FILE.csv`` / ``ucf101:LIST.txt`` spec (``None``: other specs)."""
    kind, colon, rest = spec.partition(":")
    return Path(rest) if colon and kind in ("kinetics", "ucf101") else None


def _files_fingerprint(spec: str, refs: list[Any]) -> list[list[Any]] | None:
    """What the clips are read from: a folder's entries, or an annotation file and its clips."""
    if Path(spec).is_dir():
        return _fingerprint(Path(spec))
    ann = _annotation_file(spec)
    if ann is None:
        return None  # a generated (zoo) dataset: the spec and the sampling say everything
    paths = [ann, *(Path(r.source["path"]) for r in refs if "path" in r.source)]
    out: list[list[Any]] = []
    for p in paths:
        st = p.stat() if p.exists() else None
        out.append(
            [str(p.resolve()), -1 if st is None else int(st.st_size), 0 if st is None else st.st_mtime_ns]
        )
    return out


def _default_cache(spec: str) -> Path | None:
    """``removalx_dataset_mean.json`` in a dataset folder, ``FILE.removalx_dataset_mean.json`` beside
    an annotation file, nothing for a zoo dataset."""
    if Path(spec).is_dir():
        return Path(spec) / CACHE_NAME
    ann = _annotation_file(spec)
    return ann.with_name(f"{ann.name}.{CACHE_NAME}") if ann is not None else None


def dataset_mean(
    dataset: str | Path,
    *,
    n_videos: int | None = None,
    frames: int = 16,
    size: int = 112,
    seed: int = 0,
    cache: str | Path | bool | None = None,
    video_root: str | Path | None = None,
    classes: str | Path | None = None,
) -> list[float]:
    """Per-channel mean colour (in [0, 1]) over every pixel of a dataset's clips.

    Parameters
    ----------
    dataset : str or Path
        A ``removalx evaluate --dataset`` spec: a folder of videos (use the *training* split:
        STEP Eq. 12 takes the mean of the training data), ``kinetics:FILE.csv``,
        ``ucf101:LIST.txt`` or ``zoo:synthetic``.
    n_videos, frames, size, seed, video_root, classes
        Which clips and how they are sampled, as for ``evaluate``.
    cache : str, Path, bool or None
        Where to keep the result: ``None`` (default) = ``removalx_dataset_mean.json`` inside a
        dataset folder, ``FILE.removalx_dataset_mean.json`` beside an annotation file, nothing
        for a zoo dataset; a path = that JSON file; ``False`` = no cache. A cache is used only
        when it was made from the same files (names, sizes, modification times) with the same
        ``n_videos``, ``frames``, ``size``, ``seed``, ``video_root`` and ``classes``; otherwise
        the mean is computed again and the file replaced (written atomically).

    Returns
    -------
    list of float
        One value per channel, e.g. ``[r, g, b]``.

    Raises
    ------
    ConfigError
        The dataset spec is not a dataset (see ``removalx.data.datasets``).
    StorageError
        An explicitly given ``cache`` path cannot be written.
    """
    from removalx.data.datasets import dataset_refs, load_item

    spec = str(dataset)
    key_name, refs = dataset_refs(
        spec, n_videos, frames=frames, size=size, seed=seed, video_root=video_root, classes=classes
    )
    key: dict[str, Any] = {
        "version": _VERSION,
        "dataset": key_name,
        "n_videos": len(refs),
        "frames": frames,
        "size": size,
        "seed": seed,
        "files": _files_fingerprint(spec, refs),
    }
    if video_root is not None or classes is not None:
        key["video_root"] = None if video_root is None else str(Path(video_root).resolve())
        key["classes"] = None if classes is None else str(Path(classes).resolve())
    explicit = cache not in (None, True, False)
    path: Path | None
    if cache is False:
        path = None
    elif explicit:
        path = Path(str(cache))
    else:
        path = _default_cache(spec)
    if path is not None:
        hit = _read_cache(path, key)
        if hit is not None:
            return hit
    total: torch.Tensor | None = None
    count = 0
    for item in (load_item(r) for r in refs):
        v = item.video.detach().double().cpu()
        s = v.reshape(-1, v.shape[-1]).sum(0)
        if total is not None and s.numel() != total.numel():
            raise ConfigError(
                f"Clip {truncate(item.item, 80)!r} has {s.numel()} channels, earlier clips {total.numel()}.",
                "Use a dataset whose clips all have the same channels (e.g. RGB).",
            )
        total = s if total is None else total + s
        count += int(v[..., 0].numel())
    if total is None or count == 0:
        raise ConfigError(f"Dataset {truncate(spec, 200)!r} has no pixels.", "Point at a folder with videos.")
    mean = [float(v) for v in (total / count).tolist()]
    if path is not None:
        try:
            _write_cache(path, key, mean, count)
        except StorageError:
            if explicit:
                raise
            warnings.warn(
                f"Could not store the dataset mean in {truncate(str(path), 200)} (read-only folder?); "
                "it is computed again next time. Pass cache='some/file.json' to keep it elsewhere.",
                stacklevel=2,
            )
    return mean
