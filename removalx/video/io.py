"""Video input/output: read clips into the video contract, validate tensors, write results.

The video contract of removalx is ``torch.float32[T, H, W, C]`` with values in [0, 1] and
``C = 3`` (RGB). :func:`read_video` turns a file (``.mp4``, ``.avi``, ``.webm``, ``.gif``, ...)
or a folder of frames into such a tensor, sampling a clip and resizing it on the way;
:func:`validate_video` checks (and lightly repairs) tensors users pass in; the writers turn
``uint8[T, H, W, 3]`` frames (e.g. a visualization) back into files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from removalx.errors import VideoError, short_repr

__all__ = [
    "FRAME_EXTENSIONS",
    "MAX_CLIP_PIXELS",
    "VIDEO_EXTENSIONS",
    "VideoInfo",
    "probe_video",
    "read_video",
    "sample_indices",
    "validate_video",
    "write_avi",
    "write_gif",
    "write_mp4",
    "write_png_frames",
    "write_video",
    "write_webm",
]

#: Containers decoded with OpenCV (FFmpeg backend).
CV2_EXTENSIONS = (".mp4", ".avi", ".webm", ".mov", ".mkv", ".m4v")
#: Every file extension :func:`read_video` accepts.
VIDEO_EXTENSIONS = (*CV2_EXTENSIONS, ".gif")
#: Image files read from a folder of frames.
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg")

#: Largest clip :func:`read_video` decodes, in pixels (frames x height x width after any resize):
#: 2**27 (134 M) pixels, 1.5 GiB as float32 RGB (e.g. 64 frames of 1920 x 1080, or 8 frames of
#: 4000 x 4000). Raise it with ``read_video(..., max_pixels=...)``.
MAX_CLIP_PIXELS = 2**27

_CONVERT_HINT = "Convert it with ffmpeg, e.g. `ffmpeg -i {name} -c:v libx264 -pix_fmt yuv420p clip.mp4`."


@dataclass(frozen=True)
class VideoInfo:
    """Where a clip returned by :func:`read_video` came from.

    Attributes
    ----------
    path : Path
        The file or folder read.
    fps : float or None
        Frame rate of the original video (``None`` for a folder of frames, or when the
        container does not store one).
    n_frames : int
        Number of frames in the whole file (not only the clip).
    original : tuple of int
        ``(H, W)`` of the original frames, before resizing.
    indices : tuple of int
        Index (in the original video) of every frame of the clip.
    """

    path: Path
    fps: float | None
    n_frames: int
    original: tuple[int, int]
    indices: tuple[int, ...]


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------
def sample_indices(
    n_total: int,
    frames: int | None = None,
    stride: int | None = None,
    start: int = 0,
    uniform: bool | str = False,
    *,
    source: str = "the video",
) -> list[int]:
    """Indices of the frames of a clip.

    Parameters
    ----------
    n_total : int
        Number of frames in the video.
    frames : int, optional
        Number of frames of the clip. Default: every frame from ``start`` on (every
        ``stride``-th).
    stride : int, optional
        Step between consecutive frames (default 1). Not allowed with ``uniform``.
    start : int
        Index of the first frame (a frame index, not seconds).
    uniform : bool or {"endpoints", "centers"}
        Spread ``frames`` frames evenly over ``[start, n_total - 1]`` instead of taking
        consecutive ones. ``True`` or ``"endpoints"``: the first and last frames are included.
        ``"centers"``: the window is cut into ``frames`` equal segments and the middle frame
        of each is taken (one frame per segment, as TSN-style samplers do), so a fade-in or
        fade-out at either end of the video is not in the clip.
    source : str
        Name of the video, used in error messages.

    Returns
    -------
    list of int

    Raises
    ------
    VideoError
        Invalid arguments, or a clip that does not fit in the video.
    """
    for name, value, low in (("frames", frames, 1), ("stride", stride, 1), ("start", start, 0)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            unit = " (a frame index; a start in seconds is start_time)" if name == "start" else ""
            raise VideoError(
                f"{source}: {name} must be an integer >= {low}{unit}, got {short_repr(value)}.",
                f"Pass {name}={low} or more.",
            )
    if n_total <= 0:
        raise VideoError(f"{source} has no frames.", "Check that the file is a complete video.")
    if start >= n_total:
        raise VideoError(
            f"{source} has {n_total} frames (0..{n_total - 1}); start={start} is beyond the end "
            "(start is a frame index, not seconds).",
            f"Pass start < {n_total} (a frame index), or give the start in seconds as start_time "
            "(removalx explain: --start SECONDS, --start-frame N).",
        )
    if uniform not in (False, True, "endpoints", "centers"):
        raise VideoError(
            f"{source}: uniform must be True, False, 'endpoints' or 'centers', got {short_repr(uniform)}.",
            "Pass uniform='centers' (one frame per segment) or uniform=True (first and last included).",
        )
    if uniform:
        if stride is not None:
            raise VideoError(
                f"{source}: uniform=True spreads the frames over the whole video; stride={stride} "
                "cannot be used with it.",
                "Drop stride, or set uniform=False.",
            )
        if frames is None:
            raise VideoError(
                f"{source}: uniform=True needs the number of frames to sample, got frames=None.",
                "Pass frames=N, e.g. frames=16.",
            )
        available = n_total - start
        if frames > available:
            raise VideoError(
                f"{source} has {available} frames from frame {start}; cannot sample {frames} distinct "
                "frames uniformly.",
                f"Pass frames <= {available}.",
            )
        if uniform == "centers":
            return [start + ((2 * i + 1) * available) // (2 * frames) for i in range(frames)]
        if frames == 1:
            return [start + (available - 1) // 2]
        return [start + round(i * (available - 1) / (frames - 1)) for i in range(frames)]
    step = 1 if stride is None else int(stride)
    if frames is None:
        return list(range(start, n_total, step))
    last = start + (frames - 1) * step
    if last >= n_total:
        fit = (n_total - 1 - start) // step + 1
        raise VideoError(
            f"{source} has {n_total} frames; frames={frames} with stride={step} from frame {start} needs "
            f"frame {last}, which is beyond the end.",
            f"Pass frames <= {fit} (or a smaller stride/start), or uniform=True to spread the frames "
            "over the whole video.",
        )
    return list(range(start, last + 1, step))


#: ``pick(n_total, fps, source) -> frame indices``: the clip of a video once its length is known.
Picker = Callable[[int, "float | None", str], list[int]]


def _picker(
    frames: int | None,
    stride: int | None,
    start: int,
    uniform: bool | str,
    start_time: float | None,
    duration: float | None,
) -> Picker:
    """The frame picker of :func:`read_video` (a window in seconds becomes frame indices)."""
    for name, value in (("start_time", start_time), ("duration", duration)):
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise VideoError(
                f"{name} must be a number of seconds >= 0, got {short_repr(value)}.", f"Pass e.g. {name}=2.5."
            )
    if duration is not None and duration <= 0:
        raise VideoError(f"duration must be > 0 seconds, got {duration}.", "Pass e.g. duration=4.")
    if start_time is not None and start:
        raise VideoError(
            f"start={start} (a frame index) and start_time={start_time} (seconds) were both given.",
            "Give the start of the clip one way: start_time in seconds or start as a frame index.",
        )

    def pick(n_total: int, fps: float | None, source: str) -> list[int]:
        first, stop = start, n_total
        if start_time is not None or duration is not None:
            if fps is None:
                raise VideoError(
                    f"{source} has no frame rate, so a window in seconds (start/duration) cannot be used.",
                    "Give the clip in frames instead: --start-frame N and --frames N (or --stride).",
                )
            first = round((start_time or 0.0) * fps)
            if first >= n_total:
                raise VideoError(
                    f"{source} is {n_total / fps:.2f} s long ({n_total} frames at {fps:g} fps); the window "
                    f"starts at {start_time} s, beyond the end.",
                    f"Pass a start below {n_total / fps:.2f} s.",
                )
            if duration is not None:
                stop = min(n_total, first + max(1, round(duration * fps)))
        return sample_indices(stop, frames, stride, first, uniform, source=source)

    return pick


def _target_size(size: tuple[int, int] | int | None) -> tuple[int, int] | int | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        if size < 1:
            raise VideoError(f"size must be >= 1, got {size}.", "Pass e.g. size=112 or size=(112, 112).")
        return int(size)
    if (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in size)
    ):
        return int(size[0]), int(size[1])
    raise VideoError(
        f"size must be an int or (H, W) of positive ints, got {size!r}.",
        "Pass e.g. size=112 or size=(112, 112).",
    )


def _resize_frame(frame: np.ndarray, size: tuple[int, int] | int | None, crop: str) -> np.ndarray:
    """Resize one ``uint8[H, W, 3]`` frame (see :func:`read_video` for the semantics)."""
    if size is None:
        return frame
    import cv2

    h, w = frame.shape[:2]
    if isinstance(size, int):
        if crop == "none":  # short side to `size`, aspect ratio kept
            scale = size / min(h, w)
            out_hw = (max(1, round(h * scale)), max(1, round(w * scale)))
            th, tw = out_hw
        else:
            th = tw = size
            scale = size / min(h, w)
            out_hw = (max(th, round(h * scale)), max(tw, round(w * scale)))
    elif crop == "none":  # exactly (H, W), aspect ratio not kept
        th, tw = size
        out_hw = size
    else:  # cover (H, W) keeping the aspect ratio, then center crop
        th, tw = size
        scale = max(th / h, tw / w)
        out_hw = (max(th, round(h * scale)), max(tw, round(w * scale)))
    if out_hw != (h, w):
        shrink = out_hw[0] * out_hw[1] < h * w
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        frame = cv2.resize(frame, (out_hw[1], out_hw[0]), interpolation=interp)
    hh, ww = frame.shape[:2]
    if (hh, ww) != (th, tw):
        top, left = (hh - th) // 2, (ww - tw) // 2
        frame = frame[top : top + th, left : left + tw]
    return np.ascontiguousarray(frame)


def _output_hw(hw: tuple[int, int], size: tuple[int, int] | int | None, crop: str) -> tuple[int, int]:
    """``(H, W)`` :func:`_resize_frame` gives a frame of size ``hw``."""
    h, w = hw
    if size is None:
        return hw
    if isinstance(size, int):
        if crop == "none":
            return max(1, round(h * size / min(h, w))), max(1, round(w * size / min(h, w)))
        return size, size
    return size


def _source_hw(path: Path) -> tuple[int, int] | None:
    """``(H, W)`` of a video's frames from its header (or a folder's first frame), ``None`` if unknown."""
    try:
        if path.is_dir():
            from PIL import Image

            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS)
            if not files:
                return None
            with Image.open(min(files, key=_natural_key)) as im:
                return int(im.height), int(im.width)
        if path.suffix.lower() == ".gif":
            from PIL import Image

            with Image.open(path) as im:
                return int(im.height), int(im.width)
        import cv2

        cap = cv2.VideoCapture(str(path))
        try:
            h, w = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        finally:
            cap.release()
        return (h, w) if h > 0 and w > 0 else None
    except Exception:  # unreadable: the reader reports it properly
        return None


def _check_pixels(n: int, hw: tuple[int, int], limit: int, source: str, size: Any) -> None:
    """Refuse a clip of ``n`` frames of ``hw`` output pixels above ``limit`` pixels in total."""
    total = n * hw[0] * hw[1]
    if total <= limit:
        return
    fix = (
        "Pass --size (e.g. --size 224) or size= to resize the frames while reading, fewer --frames, "
        if size is None
        else "Pass fewer --frames or a smaller --size, "
    )
    raise VideoError(
        f"{source}: the clip would be {n} frames of {hw[0]}x{hw[1]} = {total} pixels "
        f"({total * 12 / 2**30:.1f} GiB as float32 RGB), more than the limit of {limit} pixels"
        f"{' (no --size was given, so frames keep their original size)' if size is None else ''}.",
        fix + "or raise the limit with read_video(..., max_pixels=N).",
    )


def _pixel_limit(max_pixels: Any) -> int:
    """``max_pixels`` checked (default :data:`MAX_CLIP_PIXELS`)."""
    limit = MAX_CLIP_PIXELS if max_pixels is None else max_pixels
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise VideoError(
            f"max_pixels must be a positive int, got {short_repr(max_pixels)}.", "Pass e.g. max_pixels=2**27."
        )
    return limit


def _bounded_picker(pick: Picker, path: Path, size: Any, crop: str, limit: int) -> Picker:
    """``pick`` that also refuses a clip above ``limit`` pixels, before any frame is decoded."""

    def bounded(n_total: int, fps: float | None, source: str) -> list[int]:
        indices = pick(n_total, fps, source)
        hw = _source_hw(path)
        if hw is not None:
            _check_pixels(len(indices), _output_hw(hw, size, crop), limit, source, size)
        return indices

    return bounded


def _natural_key(path: Path) -> list[Any]:
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", path.name)]


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    """Image array from any reader -> ``uint8[H, W, 3]``."""
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    elif frame.shape[2] == 4:
        frame = frame[:, :, :3]
    elif frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    if frame.dtype != np.uint8:
        if frame.dtype == np.uint16:
            frame = (frame // 257).astype(np.uint8)
        else:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
    return frame


def _read_folder(
    path: Path, pick: Picker, size: Any, crop: str
) -> tuple[list[np.ndarray], float | None, int, tuple[int, int], list[int]]:
    from PIL import Image

    files = sorted(
        (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS), key=_natural_key
    )
    if not files:
        raise VideoError(
            f"Folder {path} contains no frames ({', '.join(FRAME_EXTENSIONS)} files); expected one image "
            "per frame, sorted by name.",
            "Point to a folder of frame images, or extract them with `ffmpeg -i video.mp4 frames/%05d.png`.",
        )
    indices = pick(len(files), None, f"Folder {path}")
    out: list[np.ndarray] = []
    original: tuple[int, int] | None = None
    for i in indices:
        try:
            with Image.open(files[i]) as im:
                arr = np.asarray(im.convert("RGB"))
        except Exception as exc:
            raise VideoError(
                f"Cannot read frame {files[i]} of folder {path}: {exc}.",
                "Remove or re-export the broken image.",
            ) from exc
        hw = (int(arr.shape[0]), int(arr.shape[1]))
        if original is None:
            original = hw
        elif hw != original:
            raise VideoError(
                f"Frames of folder {path} have different sizes: {files[indices[0]].name} is "
                f"{original[0]}x{original[1]} but {files[i].name} is {hw[0]}x{hw[1]}.",
                "Resize all frames to one size (e.g. with ffmpeg -vf scale=W:H).",
            )
        out.append(_resize_frame(arr, size, crop))
    assert original is not None
    return out, None, len(files), original, indices


def _read_gif(
    path: Path, pick: Picker, size: Any, crop: str
) -> tuple[list[np.ndarray], float | None, int, tuple[int, int], list[int]]:
    from PIL import Image

    try:
        im = Image.open(path)
    except Exception as exc:
        raise VideoError(f"Cannot read GIF {path}: {exc}.", _CONVERT_HINT.format(name=path.name)) from exc
    with im:
        n_total = int(getattr(im, "n_frames", 1))
        duration = im.info.get("duration")
        fps = 1000.0 / float(duration) if duration else None
        original = (int(im.height), int(im.width))
        indices = pick(n_total, fps, f"GIF {path}")
        out: list[np.ndarray] = []
        try:
            for i in indices:
                im.seek(i)
                out.append(_resize_frame(np.asarray(im.convert("RGB")), size, crop))
        except (OSError, EOFError, ValueError) as exc:
            raise VideoError(
                f"GIF {path} is corrupt: decoding frame {i} of {n_total} failed ({exc}).",
                _CONVERT_HINT.format(name=path.name),
            ) from exc
    return out, fps, n_total, original, indices


def _cv2_count(path: Path) -> int:
    """Count decodable frames by demuxing the whole file (used when metadata is unreliable)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n


#: Seek (instead of grabbing forward) when the next frame of the clip is more than this many
#: frames ahead of the decoder; nearer frames are cheaper to reach by grabbing.
SEEK_GAP = 8

#: ``(frames by index, frames decoded before the stream ended or the last one, original size)``.
_Decoded = tuple[dict[int, np.ndarray], int, "tuple[int, int] | None"]


def _decode_cv2(path: Path, indices: list[int], size: Any, crop: str, seek: bool) -> _Decoded | None:
    """Decode the frames ``indices`` of ``path``, seeking over gaps longer than :data:`SEEK_GAP`.

    Returns ``None`` when a seek misbehaved (refused, landed elsewhere, or was followed by the
    end of the stream): the caller then decodes again without seeking, so a file whose index
    is wrong still gives exactly the frames a sequential read gives.
    """
    import cv2

    cap = cv2.VideoCapture(str(path))
    got: dict[int, np.ndarray] = {}
    original: tuple[int, int] | None = None
    pos = 0  # index of the frame the next grab() returns
    seeked = False
    try:
        for k in sorted(set(indices)):
            if seek and k - pos > SEEK_GAP:
                if not cap.set(cv2.CAP_PROP_POS_FRAMES, k) or int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != k:
                    return None
                pos, seeked = k, True
            while pos <= k:
                if not cap.grab():
                    return None if seeked else (got, pos, original)
                pos += 1
            ok, bgr = cap.retrieve()
            if not ok or bgr is None:
                return None if seeked else (got, k, original)
            if original is None:
                original = (int(bgr.shape[0]), int(bgr.shape[1]))
            got[k] = _resize_frame(_to_rgb(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), size, crop)
    finally:
        cap.release()
    return got, pos, original


def _decode(path: Path, indices: list[int], size: Any, crop: str) -> _Decoded:
    """:func:`_decode_cv2` seeking, or sequentially when seeking fails on this file."""
    decoded = _decode_cv2(path, indices, size, crop, seek=True)
    if decoded is None:
        decoded = _decode_cv2(path, indices, size, crop, seek=False)
    assert decoded is not None  # a sequential read never gives up
    return decoded


def _read_cv2(
    path: Path, pick: Picker, size: Any, crop: str
) -> tuple[list[np.ndarray], float | None, int, tuple[int, int], list[int]]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(
            f"Cannot open video {path}: the file is corrupt or its codec is not supported by OpenCV here.",
            _CONVERT_HINT.format(name=path.name),
        )
    try:
        fps_raw = float(cap.get(cv2.CAP_PROP_FPS))
        fps = fps_raw if math.isfinite(fps_raw) and fps_raw > 0 else None
        reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    if reported <= 0:  # unknown: count by demuxing
        reported = _cv2_count(path)
    n_total = reported
    if n_total <= 0:
        raise VideoError(f"Video {path} has zero frames.", _CONVERT_HINT.format(name=path.name))
    indices = pick(n_total, fps, f"Video {path}")
    got, decoded, original = _decode(path, indices, size, crop)
    if decoded == 0:
        raise VideoError(
            f"Video {path} has zero decodable frames (the container says {reported}).",
            _CONVERT_HINT.format(name=path.name),
        )
    if len(got) < len(set(indices)):
        # The container's frame count was wrong: the stream ended after `decoded` frames.
        # Sample again with the true count (which raises when a consecutive clip no longer fits).
        return _read_cv2_exact(path, decoded, pick, size, crop, fps)
    assert original is not None
    return [got[k] for k in indices], fps, n_total, original, indices


def _read_cv2_exact(
    path: Path,
    n_true: int,
    pick: Picker,
    size: Any,
    crop: str,
    fps: float | None,
) -> tuple[list[np.ndarray], float | None, int, tuple[int, int], list[int]]:
    indices = pick(n_true, fps, f"Video {path}")
    got, _, original = _decode(path, indices, size, crop)
    if len(got) < len(set(indices)) or original is None:
        raise VideoError(
            f"Video {path} is corrupt: decoding stopped before the end of the stream.",
            _CONVERT_HINT.format(name=path.name),
        )
    return [got[k] for k in indices], fps, n_true, original, indices


def read_video(
    path: str | Path,
    *,
    frames: int | None = None,
    stride: int | None = None,
    start: int = 0,
    uniform: bool | str = False,
    size: tuple[int, int] | int | None = None,
    crop: str = "center",
    start_time: float | None = None,
    duration: float | None = None,
    max_pixels: int | None = None,
) -> tuple[Tensor, VideoInfo]:
    """Read a clip as ``float32[T, H, W, 3]`` in [0, 1].

    Parameters
    ----------
    path : str or Path
        A video file (``.mp4``, ``.avi``, ``.webm``, ``.mov``, ``.mkv``, ``.m4v`` through
        OpenCV; ``.gif`` through Pillow) or a folder of frames (``.png``/``.jpg`` files,
        sorted by name, numbers compared numerically).
    frames : int, optional
        Number of frames of the clip. Default: the whole video (every ``stride``-th frame).
    stride : int, optional
        Take every ``stride``-th frame (default 1).
    start : int
        Index of the first frame: a frame index, not seconds (for a start in seconds use
        ``start_time``; ``removalx explain --start`` is seconds, ``--start-frame`` a frame index).
    uniform : bool or {"endpoints", "centers"}
        Spread ``frames`` frames evenly over the video (or the window) instead of taking
        consecutive frames: ``True``/``"endpoints"`` includes the window's first and last
        frames, ``"centers"`` takes the middle frame of each of ``frames`` equal segments
        (see :func:`sample_indices`).
    size : int or (H, W), optional
        Output size. With ``crop="center"``: resize keeping the aspect ratio so the frame
        covers ``(H, W)`` (for a square ``size`` this resizes the short side), then
        center-crop. With ``crop="none"``: an int resizes the short side to ``size`` and
        keeps the aspect ratio; ``(H, W)`` resizes to exactly that size.
    crop : {"center", "none"}
        See ``size``.
    start_time, duration : float, optional
        A window of the video in seconds (needs the file's frame rate): the clip is taken
        from ``[start_time, start_time + duration)`` instead of the whole video. Not
        combined with ``start`` (a frame index).
    max_pixels : int, optional
        Largest clip in pixels (frames x H x W after resizing; default :data:`MAX_CLIP_PIXELS`): a
        larger one is a :class:`VideoError` (before decoding when the file's header gives the size).

    Returns
    -------
    video : Tensor
        ``float32[T, H, W, 3]`` in [0, 1].
    info : VideoInfo
        Frame rate, frame count and size of the original, and the frame indices used.

    Raises
    ------
    VideoError
        Missing, unsupported, unreadable or empty file, a clip that does not fit or is over ``max_pixels``.

    Notes
    -----
    Only the frames of the clip are read: over a gap of more than :data:`SEEK_GAP` frames
    the reader seeks (FFmpeg resumes decoding at the key frame before the target, so the
    saving grows with the gap and the file's key-frame interval) instead of decoding every
    frame in between; a file on which seeking fails is read sequentially, with the same
    result. A GIF is read frame by frame by Pillow; a folder of frames opens only the files
    it needs.
    """
    p = Path(path).expanduser()
    if crop not in ("center", "none"):
        raise VideoError(
            f"crop must be 'center' or 'none', got {crop!r}.", "Pass crop='center' or crop='none'."
        )
    tsize = _target_size(size)
    limit = _pixel_limit(max_pixels)
    pick = _bounded_picker(
        _picker(frames, stride, start, uniform, start_time, duration), p, tsize, crop, limit
    )
    if not p.exists():
        hint = f"Check the path (relative paths start from the current directory: {Path.cwd()})."
        raise VideoError(f"Video {p} does not exist.", hint)
    if p.is_dir():
        out, fps, n_total, original, indices = _read_folder(p, pick, tsize, crop)
    else:
        ext = p.suffix.lower()
        if ext not in VIDEO_EXTENSIONS:
            raise VideoError(
                f"Unsupported video file {p}: extension {ext or '(none)'!r}; expected one of "
                f"{', '.join(VIDEO_EXTENSIONS)} or a folder of frames.",
                _CONVERT_HINT.format(name=p.name),
            )
        if p.stat().st_size == 0:
            raise VideoError(f"Video {p} is empty (0 bytes).", "Re-export or re-download the file.")
        reader = _read_gif if ext == ".gif" else _read_cv2
        out, fps, n_total, original, indices = reader(p, pick, tsize, crop)
    _check_pixels(len(out), (int(out[0].shape[0]), int(out[0].shape[1])), limit, f"Video {p}", tsize)
    video = torch.from_numpy(np.stack(out)).to(torch.float32).div_(255.0)
    info = VideoInfo(path=p, fps=fps, n_frames=int(n_total), original=original, indices=tuple(indices))
    return video, info


def probe_video(path: str | Path) -> tuple[int, tuple[int, int]]:
    """Frame count (as the container reports it) and ``(H, W)`` of a video, without decoding it all.

    Raises
    ------
    VideoError
        What :func:`read_video` raises for a missing, unsupported or unreadable source.
    """
    p = Path(path).expanduser()
    if p.is_file() and p.suffix.lower() in CV2_EXTENSIONS:
        import cv2

        cap = cv2.VideoCapture(str(p))
        try:
            h, w = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()
        if h > 0 and w > 0:
            return n, (h, w)
    _, info = read_video(p, frames=1)
    return info.n_frames, info.original


# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------
def validate_video(video: Any, *, name: str = "video") -> Tensor:
    """Check a clip against the video contract and return it as ``float32[T, H, W, 3]``.

    Parameters
    ----------
    video : Tensor or np.ndarray
        Floating ``[T, H, W, C]`` with ``C`` in {1, 3} and values in [0, 1].
    name : str
        What to call it in error messages.

    Returns
    -------
    Tensor
        ``float32[T, H, W, 3]``, values clamped to [0, 1] (values outside by at most
        ``1e-6`` are accepted); one channel is repeated to three.

    Raises
    ------
    VideoError
        Wrong type, dtype, rank, channel count, non-finite values or values outside [0, 1].
    """
    if isinstance(video, np.ndarray):
        if video.dtype == object:
            raise VideoError(
                f"{name} is a NumPy array of Python objects; expected float32[T, H, W, 3] in [0, 1].",
                "Stack the frames into one numeric array: np.stack(frames).astype(np.float32) / 255.",
            )
        video = torch.from_numpy(np.ascontiguousarray(video))
    elif not isinstance(video, Tensor):
        raise VideoError(
            f"{name} must be a torch.Tensor or np.ndarray float32[T, H, W, 3] in [0, 1], got "
            f"{type(video).__name__}.",
            "Load it with removalx.video.io.read_video(path), or convert with torch.as_tensor(...).",
        )
    shape = tuple(video.shape)
    if not torch.is_floating_point(video):
        if video.dtype == torch.uint8:
            fix = "Divide by 255: video = video.float() / 255."
        elif video.dtype == torch.bool or video.is_complex():
            fix = "Pass RGB intensities as float32 in [0, 1]."
        else:
            fix = "Convert to float in [0, 1], e.g. video.float() / video.max() (or / 255 for 8-bit values)."
        raise VideoError(
            f"{name} must be a floating tensor float32[T, H, W, 3] in [0, 1], got dtype "
            f"{str(video.dtype).replace('torch.', '')} with shape {shape}.",
            fix,
        )
    if video.dim() != 4:
        if video.dim() == 5 and shape[0] == 1:
            fix = "Drop the batch dimension: video[0]."
        elif video.dim() == 3 and shape[-1] in (1, 3):
            fix = "A single frame? Add the time dimension: video[None]."
        elif video.dim() == 3:
            fix = "A grayscale clip [T, H, W]? Add the channel dimension: video[..., None]."
        else:
            fix = "Pass one clip float32[T, H, W, 3] (frames, height, width, RGB channels)."
        raise VideoError(f"{name} must have 4 dimensions [T, H, W, C], got shape {shape}.", fix)
    t, h, w, c = shape
    if c not in (1, 3):
        if h in (1, 3) and c > 4:
            fix = "It looks channels-first [T, C, H, W]: permute to [T, H, W, C] with video.permute(0, 2, 3, 1)."
        elif t in (1, 3) and c > 4:
            fix = "It looks like [C, T, H, W]: permute to [T, H, W, C] with video.permute(1, 2, 3, 0)."
        elif c == 4:
            fix = "Drop the alpha channel: video[..., :3]."
        else:
            fix = "Pass RGB frames [T, H, W, 3] (or grayscale [T, H, W, 1])."
        raise VideoError(
            f"{name} must be [T, H, W, C] with C = 3 (RGB) or 1 (gray), got shape {shape} (C = {c}).", fix
        )
    if min(t, h, w) == 0:
        raise VideoError(
            f"{name} is empty: expected T, H, W >= 1, got shape {shape}.",
            "Pass a clip with at least one frame and pixel.",
        )
    if video.dtype != torch.float32:
        video = video.to(torch.float32)
    if not bool(torch.isfinite(video).all()):
        raise VideoError(
            f"{name} must be finite (expected values in [0, 1]), but it contains NaN or infinite values "
            f"(shape {shape}).",
            "Replace them, e.g. torch.nan_to_num(video).clamp(0, 1), or fix the code that made the clip.",
        )
    lo, hi = float(video.min()), float(video.max())
    tol = 1e-6
    if lo < -tol or hi > 1 + tol:
        if lo >= 0 and hi <= 255:
            fix = "The values look like 0..255 intensities: divide by 255."
        elif lo < 0:
            fix = (
                "The clip looks normalised (mean/std): pass the raw clip in [0, 1]; the VideoClassifier "
                "applies the model's normalisation itself."
            )
        else:
            fix = "Rescale to [0, 1], e.g. (video - video.min()) / (video.max() - video.min())."
        raise VideoError(f"{name} values must be in [0, 1], got range [{lo:.4g}, {hi:.4g}].", fix)
    video = video.clamp(0.0, 1.0)
    if c == 1:
        video = video.expand(t, h, w, 3)
    return video.contiguous()


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------
def _frames_uint8(frames: Any, what: str) -> np.ndarray:
    """``uint8[T, H, W, 3]`` (torch or NumPy) -> contiguous NumPy array; VideoError otherwise."""
    if isinstance(frames, Tensor):
        arr = frames.detach().cpu().numpy()
    elif isinstance(frames, np.ndarray):
        arr = frames
    else:
        raise VideoError(
            f"{what}: frames must be a uint8[T, H, W, 3] tensor or array, got {type(frames).__name__}.",
            "Pass e.g. (video * 255).round().to(torch.uint8).",
        )
    if arr.dtype != np.uint8:
        raise VideoError(
            f"{what}: frames must have dtype uint8, got {arr.dtype} with shape {tuple(arr.shape)}.",
            "Convert a [0, 1] float clip with (video * 255).round().to(torch.uint8).",
        )
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.ndim != 4 or arr.shape[-1] != 3 or min(arr.shape) == 0:
        raise VideoError(
            f"{what}: frames must be uint8[T, H, W, 3] with T, H, W >= 1, got shape {tuple(arr.shape)}.",
            "Channels-first frames [T, 3, H, W]: permute(0, 2, 3, 1).",
        )
    return np.ascontiguousarray(arr)


def _check_fps(fps: float, what: str) -> float:
    if (
        isinstance(fps, bool)
        or not isinstance(fps, (int, float, np.number))
        or not (math.isfinite(float(fps)) and float(fps) > 0)
    ):
        raise VideoError(f"{what}: fps must be a positive number, got {fps!r}.", "Pass e.g. fps=8.")
    return float(fps)


def _prepare_path(path: str | Path) -> Path:
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def write_gif(frames: Any, path: str | Path, fps: float = 8) -> Path:
    """Write ``uint8[T, H, W, 3]`` frames as a looping GIF.

    Colours are quantised to 255 per frame (GIF is lossy). Every frame is kept, even when
    two consecutive frames are identical (Pillow would otherwise merge them). The GIF format
    stores frame delays in hundredths of a second, so ``fps`` is rounded accordingly.

    Returns
    -------
    Path
        The file written.
    """
    from PIL import Image

    p = _prepare_path(path)
    arr = _frames_uint8(frames, f"write_gif({p})")
    fps = _check_fps(fps, f"write_gif({p})")
    duration = max(10, round(100.0 / fps) * 10)
    images: list[Image.Image] = []
    prev: tuple[bytes, list[int]] | None = None
    for frame in arr:
        im = Image.fromarray(frame, "RGB").quantize(
            colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        palette = list(im.getpalette() or [])
        palette += [0] * (768 - len(palette))
        # Palette entry 255 is unused (255 colours at most); it repeats the colour of pixel
        # (0, 0). Identical consecutive frames (which Pillow would merge) point that pixel at
        # entry 255 instead: same picture, different indices, so the frame is kept.
        first = int(np.asarray(im)[0, 0])
        palette[765:768] = palette[3 * first : 3 * first + 3]
        im.putpalette(palette)
        key = (im.tobytes(), palette)
        if prev is not None and key == prev:
            im.putpixel((0, 0), 255)
            key = (im.tobytes(), palette)
        prev = key
        images.append(im)
    try:
        images[0].save(
            p,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=duration,
            loop=0,
            optimize=False,
            disposal=1,
        )
    except OSError as exc:
        raise VideoError(f"Cannot write GIF {p}: {exc}.", "Check that the folder is writable.") from exc
    return p


#: fourcc code used by each container.
_FOURCC = {".avi": "MJPG", ".webm": "VP80"}


def _write_cv2(frames: Any, path: str | Path, fps: float, ext: str, func: str) -> Path:
    import cv2

    p = _prepare_path(path)
    what = f"{func}({p})"
    arr = _frames_uint8(frames, what)
    fps = _check_fps(fps, what)
    if p.suffix.lower() != ext:
        raise VideoError(
            f"{what}: the file name must end in {ext}, got {p.suffix or '(none)'!r}.",
            f"Name the file *{ext}, or use write_video(frames, path) to pick the writer from the extension.",
        )
    fourcc = _FOURCC[ext]
    t, h, w, _ = arr.shape
    writer = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))  # type: ignore[attr-defined]
    if not writer.isOpened():
        writer.release()
        raise VideoError(
            f"{what}: OpenCV cannot encode {ext} with codec {fourcc!r} on this machine.",
            "Write a GIF, PNG frames or .avi (MJPG) instead, or install an OpenCV build with FFmpeg.",
        )
    try:
        for frame in arr:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    # Verify the file is readable and complete (some builds "open" writers that write nothing).
    cap = cv2.VideoCapture(str(p))
    ok = cap.isOpened()
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
    first_ok = ok and cap.read()[0]
    cap.release()
    if not first_ok or (n > 0 and n != t):
        raise VideoError(
            f"{what}: OpenCV wrote {p} with codec {fourcc!r} but it cannot be read back "
            f"(frames read: {n}, expected {t}; frame size {w}x{h}).",
            "Use even frame sizes, or write a GIF / PNG frames / .avi (MJPG) instead.",
        )
    return p


def write_mp4(frames: Any, path: str | Path, fps: float = 8) -> Path:
    """Write ``uint8[T, H, W, 3]`` frames as H.264 ``.mp4`` (browsers play it); returns the path.

    Encoded with PyAV (:mod:`removalx.video.mp4`, the extra ``removalx[mp4]``; a
    :class:`~removalx.errors.MissingExtraError` names it when missing). Odd frame sizes are
    padded by one pixel to even ones (``yuv420p``).
    """
    from removalx.video.mp4 import write_h264

    p = _prepare_path(path)
    what = f"write_mp4({p})"
    arr = _frames_uint8(frames, what)
    fps = _check_fps(fps, what)
    if p.suffix.lower() != ".mp4":
        raise VideoError(
            f"{what}: the file name must end in .mp4, got {p.suffix or '(none)'!r}.",
            "Name the file *.mp4, or use write_video(frames, path) to pick the writer from the extension.",
        )
    return write_h264(arr, p, fps)


def write_webm(frames: Any, path: str | Path, fps: float = 8) -> Path:
    """Write ``uint8[T, H, W, 3]`` frames as VP8 ``.webm``; returns the path.

    Raises :class:`~removalx.errors.VideoError` when OpenCV on this machine has no VP8 encoder.
    """
    return _write_cv2(frames, path, fps, ".webm", "write_webm")


def write_avi(frames: Any, path: str | Path, fps: float = 8) -> Path:
    """Write ``uint8[T, H, W, 3]`` frames as Motion-JPEG ``.avi``; returns the path."""
    return _write_cv2(frames, path, fps, ".avi", "write_avi")


def write_png_frames(frames: Any, directory: str | Path, prefix: str = "frame_") -> list[Path]:
    """Write ``uint8[T, H, W, 3]`` frames as ``<directory>/<prefix>00000.png``, ...

    Returns
    -------
    list of Path
        The files written, in frame order (their names sort in frame order).
    """
    from PIL import Image

    d = Path(directory).expanduser()
    arr = _frames_uint8(frames, f"write_png_frames({d})")
    if d.exists() and not d.is_dir():
        raise VideoError(f"write_png_frames: {d} exists and is not a folder.", "Pass a folder path.")
    d.mkdir(parents=True, exist_ok=True)
    digits = max(5, len(str(len(arr) - 1)))
    out = []
    for i, frame in enumerate(arr):
        f = d / f"{prefix}{i:0{digits}d}.png"
        Image.fromarray(frame, "RGB").save(f)
        out.append(f)
    return out


def write_video(frames: Any, path: str | Path, fps: float = 8) -> Path:
    """Write frames with the writer matching ``path``'s extension.

    ``.gif``, ``.mp4``, ``.webm`` and ``.avi`` pick :func:`write_gif`, :func:`write_mp4`,
    :func:`write_webm`, :func:`write_avi`; a path without extension is a folder of PNG
    frames (:func:`write_png_frames`, ``fps`` unused).

    Returns
    -------
    Path
        The file (or folder) written.
    """
    p = Path(path).expanduser()
    ext = p.suffix.lower()
    writers = {".gif": write_gif, ".mp4": write_mp4, ".webm": write_webm, ".avi": write_avi}
    if ext in writers:
        return writers[ext](frames, p, fps)
    if ext == "":
        write_png_frames(frames, p)
        return p
    raise VideoError(
        f"Cannot write {p}: unsupported extension {ext!r}; expected one of "
        f"{', '.join(writers)} or a folder (no extension) for PNG frames.",
        "Rename the output, e.g. out.gif or out.mp4.",
    )
