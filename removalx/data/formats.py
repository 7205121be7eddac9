"""Annotation formats of public video datasets: Kinetics CSV, UCF101 split files, UCF101-24 boxes.

* Kinetics (Kay et al., "The Kinetics Human Action Video Dataset", 2017): a CSV with the header
  ``label,youtube_id,time_start,time_end,split`` (extra columns are ignored); the clip of a row is
  ``{youtube_id}_{time_start:06d}_{time_end:06d}.<ext>`` (the name the usual downloaders write) or
  ``{youtube_id}.<ext>``, in the video root or in its ``<label>/`` sub-folder. Class ``i`` is line
  ``i`` of a classes file, else the ``i``-th of the CSV's labels sorted by name.
* UCF101 (Soomro et al., "UCF101: A Dataset of 101 Human Actions Classes From Videos in The Wild",
  2012): ``classInd.txt`` (``1 ApplyEyeMakeup`` lines, 1-based) next to a split file
  (``testlist01.txt``: ``ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi`` lines; a train list adds
  the 1-based class); the class of a test line is its folder's. An entry may be a video file
  or a folder of frames of the same name without the extension (UCF101-24's ``rgb-images``).
* UCF101-24-style boxes: a folder per clip, ``BOXES/<Class>/<video>/`` (the split entry without
  its extension; for a folder dataset ``BOXES/<file stem>/``) holding one text file per
  annotated frame, ``00001.txt`` for the first frame, one ``label x1 y1 x2 y2`` line per box in
  pixels of the original frame. The evidence of the spatial pointing game is the union of a
  frame's boxes mapped through the clip's resize and center crop.

Malformed files are a :class:`~removalx.errors.DatasetError` naming the file, the line and what
was expected; a listed clip that is missing is skipped with a warning saying how many are. An
entry that names a path outside the video root (``..`` components, an absolute path) is a
``DatasetError``: entries are looked up lexically under the root (symbolic links inside the root
are followed, so a root may be a folder of links), never beside or above it. An annotation file
that lists no clip, a class listed twice, a ``classInd.txt`` whose indices are not ``1..K`` and a
non-finite Kinetics time are ``DatasetError`` too.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from removalx.errors import DatasetError, truncate

__all__ = ["box_evidence", "box_folder", "kinetics_entries", "ucf101_entries"]

_EXTS = (".mp4", ".avi", ".webm", ".mov", ".mkv", ".m4v", ".gif")

Entry = tuple[str, Path, "int | None"]

_ESCAPE_FIX = (
    "Remove the line: entries name files relative to --video-root, without '..' or an absolute path."
)


def _inside(root: Path, rel: str) -> bool:
    """Whether ``root / rel`` stays in ``root`` once ``..`` and absolute parts are resolved lexically."""
    if not rel or os.path.isabs(rel) or rel.startswith(("/", "\\")):
        return False
    base = os.path.abspath(root)
    target = os.path.normpath(os.path.join(base, rel))
    return os.path.commonpath([base, target]) == base


def _check_inside(root: Path, rel: str, where: str, what: str) -> None:
    if not _inside(root, rel):
        raise DatasetError(
            f"{where}: {what} {truncate(rel, 80)!r} names a path outside the video root {truncate(str(root), 120)}.",
            _ESCAPE_FIX,
        )


def _no_clips(ann: Path, what: str) -> DatasetError:
    return DatasetError(
        f"{ann} lists no clips (it holds no {what}).", f"Pass a {what} file with at least one clip."
    )


def _read_lines(path: Path, what: str) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text.", f"Save the {what} as UTF-8.") from exc
    except OSError as exc:
        raise DatasetError(
            f"Cannot read the {what} {path}: {truncate(str(exc), 120)}.", "Check the path."
        ) from exc


def _find(root: Path, stems: Sequence[str], subdirs: Sequence[str] = ("",)) -> Path | None:
    for sub in subdirs:
        base = root / sub if sub else root
        for stem in stems:
            if (base / stem).is_dir():
                return base / stem
            for ext in _EXTS:
                if (base / f"{stem}{ext}").is_file():
                    return base / f"{stem}{ext}"
    return None


def _skip_missing(missing: list[str], ann: Path, root: Path, n_listed: int) -> None:
    if not missing:
        return
    if len(missing) == n_listed:
        raise DatasetError(
            f"None of the {n_listed} clips listed in {ann} is in {root} (first: {truncate(missing[0], 80)!r}).",
            "Pass --video-root the folder holding the clips.",
        )
    warnings.warn(
        f"{len(missing)} of {n_listed} clips listed in {ann} are not in {root} and are skipped "
        f"(first: {truncate(missing[0], 80)!r}).",
        stacklevel=3,
    )


def kinetics_entries(
    ann: Path, root: Path, classes: str | Path | None = None, class_names: dict[int, str] | None = None
) -> list[Entry]:
    """``(name, path, label)`` of every clip of a Kinetics annotation CSV found under ``root``.

    ``class_names``, if given, receives ``{class index: class name}`` of the classes used.
    """
    lines = _read_lines(ann, "Kinetics annotation CSV")
    rows = list(csv.reader(lines))
    need = ("label", "youtube_id", "time_start", "time_end")
    header = [c.strip() for c in rows[0]] if rows else []
    if any(c not in header for c in need):
        raise DatasetError(
            f"{ann}, line 1: expected a header with {','.join(need)},split; got {truncate(','.join(header), 120)!r}.",
            "Use the annotation CSV of the Kinetics release (label,youtube_id,time_start,time_end,split).",
        )
    col = {c: header.index(c) for c in need}
    parsed: list[tuple[int, str, str, int, int]] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        try:
            label = row[col["label"]].strip()
            yid = row[col["youtube_id"]].strip()
            t0, t1 = int(float(row[col["time_start"]])), int(float(row[col["time_end"]]))
        except (IndexError, ValueError, OverflowError):  # OverflowError: inf, 1e400
            raise DatasetError(
                f"{ann}, line {lineno}: expected label,youtube_id,time_start,time_end with whole-second "
                f"times, got {truncate(','.join(row), 120)!r}.",
                "Fix or remove the line.",
            ) from None
        where = f"{ann}, line {lineno}"
        _check_inside(root, yid, where, "youtube_id")
        _check_inside(root, label, where, "the class folder of label")
        parsed.append((lineno, label, yid, t0, t1))
    if not parsed:
        raise _no_clips(ann, "row after the header")
    if classes is not None:
        names = [x.strip() for x in _read_lines(Path(classes), "classes file") if x.strip()]
        _no_duplicates(names, Path(classes))
    else:
        names = sorted({p[1] for p in parsed})
    index = {n: i for i, n in enumerate(names)}
    if class_names is not None:
        class_names.update(enumerate(names))
    out: list[Entry] = []
    missing: list[str] = []
    for lineno, label, yid, t0, t1 in parsed:
        if label not in index:
            raise DatasetError(
                f"{ann}, line {lineno}: class {truncate(label, 80)!r} is not in {classes}.",
                "Use the classes file the model was trained with.",
            )
        stem = f"{yid}_{t0:06d}_{t1:06d}"
        path = _find(root, (stem, yid), ("", label, label.replace(" ", "_")))
        if path is None:
            missing.append(stem)
            continue
        out.append((path.name, path, index[label]))
    _skip_missing(missing, ann, root, len(parsed))
    return out


def _no_duplicates(names: Sequence[str], path: Path) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names, start=1):
        if name in seen:
            raise DatasetError(
                f"{path}: class {truncate(name, 80)!r} is listed twice (the second time as class {i}).",
                "List every class once, in the order the model was trained with.",
            )
        seen.add(name)


def _class_index(ind_path: Path) -> dict[str, int]:
    """``{class name: index}`` of a UCF101 ``classInd.txt`` (1-based lines ``k Name``, k = 1..K)."""
    index: dict[str, int] = {}
    numbers: dict[int, int] = {}
    for lineno, line in enumerate(_read_lines(ind_path, "classInd.txt"), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not (parts[0].isascii() and parts[0].isdigit()):
            raise DatasetError(
                f"{ind_path}, line {lineno}: expected 'INDEX ClassName' with INDEX >= 1, got {truncate(line, 80)!r}.",
                "Use the classInd.txt of the UCF101 release.",
            )
        k = int(parts[0])
        if k < 1 or parts[1] in index or k in numbers:
            what = (
                f"class {truncate(parts[1], 60)!r} is listed twice"
                if parts[1] in index
                else (f"index {k} is also on line {numbers[k]}" if k in numbers else "INDEX must be >= 1")
            )
            raise DatasetError(
                f"{ind_path}, line {lineno}: {what}.", "Use the classInd.txt of the UCF101 release."
            )
        index[parts[1]], numbers[k] = k - 1, lineno
    if not index:
        raise _no_clips(ind_path, "'INDEX ClassName' line")
    if max(numbers) > len(index):
        raise DatasetError(
            f"{ind_path}: the indices must be 1..{len(index)} (one per class), got {max(numbers)} on line "
            f"{numbers[max(numbers)]}.",
            "Number the classes 1, 2, ..., K in the order the model was trained with.",
        )
    return index


def ucf101_entries(split: Path, root: Path, class_names: dict[int, str] | None = None) -> list[Entry]:
    """``(name, path, label)`` of every clip of a UCF101 split file found under ``root``.

    ``class_names``, if given, receives ``{class index: class name}`` of ``classInd.txt``.
    """
    ind_path = split.parent / "classInd.txt"
    if not ind_path.is_file():
        raise DatasetError(
            f"No classInd.txt next to {split}.", "Keep the split files of UCF101 together (ucfTrainTestlist)."
        )
    index = _class_index(ind_path)
    if class_names is not None:
        class_names.update({i: n for n, i in index.items()})
    out: list[Entry] = []
    missing: list[str] = []
    n = 0
    for lineno, line in enumerate(_read_lines(split, "UCF101 split file"), start=1):
        if not line.strip():
            continue
        parts = line.split()
        rel = parts[0]
        cls = rel.split("/")[0] if "/" in rel else None
        if cls not in index or len(parts) > 2:
            raise DatasetError(
                f"{split}, line {lineno}: expected 'Class/v_Class_gXX_cYY.avi [INDEX]' with a class of "
                f"classInd.txt, got {truncate(line, 80)!r}.",
                "Use a split file of the UCF101 release.",
            )
        given = parts[1] if len(parts) == 2 else None
        if given is not None and not (given.isascii() and given.isdigit() and int(given) == index[cls] + 1):
            raise DatasetError(
                f"{split}, line {lineno}: the class index {truncate(parts[1], 20)!r} of a train-list line must be "
                f"the 1-based index of {truncate(cls, 60)!r} in classInd.txt, {index[cls] + 1}.",
                "Use a split file of the UCF101 release with its own classInd.txt.",
            )
        _check_inside(root, rel, f"{split}, line {lineno}", "the entry")
        n += 1
        stem = rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel
        path = root / rel if (root / rel).exists() else _find(root, (stem,))
        if path is None:
            missing.append(rel)
            continue
        out.append((stem, path, index[cls]))
    if n == 0:
        raise _no_clips(split, "'Class/v_Class_gXX_cYY.avi' line")
    _skip_missing(missing, split, root, n)
    return out


def box_folder(boxes: Path, name: str) -> Path:
    """The box folder of a clip: ``boxes / name`` without the file extension."""
    stem = name.rsplit(".", 1)[0] if "." in name.rsplit("/", 1)[-1] else name
    return boxes / stem


def box_evidence(
    folder: Path, indices: Sequence[int], original: tuple[int, int], size: tuple[int, int]
) -> torch.Tensor:
    """``bool[T, H, W]`` union of each sampled frame's boxes, mapped like the frames were.

    Parameters
    ----------
    folder : Path
        The clip's box folder (``00001.txt`` = frame index 0).
    indices : sequence of int
        Original frame index of each clip frame (``VideoInfo.indices``).
    original : (int, int)
        ``(H, W)`` of the original frames (box coordinates are in these pixels).
    size : (int, int)
        ``(H, W)`` of the clip: frames were resized to cover it keeping the aspect ratio and
        center-cropped (:func:`removalx.video.io.read_video`, ``crop="center"``).
    """
    h, w = original
    th, tw = size
    scale = max(th / h, tw / w)
    rh, rw = max(th, round(h * scale)), max(tw, round(w * scale))
    top, left = (rh - th) // 2, (rw - tw) // 2
    ys = torch.arange(th, dtype=torch.float64) + 0.5 + top  # pixel centres in resized coordinates
    xs = torch.arange(tw, dtype=torch.float64) + 0.5 + left
    out = torch.zeros(len(indices), th, tw, dtype=torch.bool)
    for t, idx in enumerate(indices):
        f = folder / f"{int(idx) + 1:05d}.txt"
        if not f.is_file():
            continue
        for lineno, line in enumerate(_read_lines(f, "box file"), start=1):
            if not line.strip():
                continue
            parts = line.split()
            try:
                x1, y1, x2, y2 = (float(v) for v in parts[1:5])
            except ValueError:
                parts = []
            if len(parts) != 5 or not (x2 > x1 and y2 > y1):
                raise DatasetError(
                    f"{f}, line {lineno}: expected 'label x1 y1 x2 y2' with x2 > x1 and y2 > y1, "
                    f"got {truncate(line, 80)!r}.",
                    "Write one box per line in pixels of the original frame.",
                )
            iny = (ys >= y1 * rh / h) & (ys <= y2 * rh / h)
            inx = (xs >= x1 * rw / w) & (xs <= x2 * rw / w)
            out[t] |= iny[:, None] & inx[None, :]
    return out
