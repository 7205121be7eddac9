"""H.264 MP4 writing with PyAV (the extra ``removalx[mp4]``; PyAV's wheels bundle FFmpeg).

Browsers play H.264 (``avc1``) in ``yuv420p``; OpenCV's ``mp4v`` (MPEG-4 Part 2) they do not.
``yuv420p`` halves the colour resolution, so odd frame sizes are padded by one pixel (edge
colour repeated) to even ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from removalx.errors import VideoError, require_extra

__all__ = ["write_h264"]


def write_h264(frames: np.ndarray, path: Path, fps: float, crf: int = 18) -> Path:
    """Write ``uint8[T, H, W, 3]`` RGB frames to ``path`` as H.264 ``yuv420p`` MP4.

    Parameters
    ----------
    frames : ndarray
        ``uint8[T, H, W, 3]``, already checked.
    path : Path
        The ``.mp4`` file.
    fps : float
        Frames per second (stored as a rational with denominator 1000).
    crf : int
        x264 constant rate factor (18: visually lossless).
    """
    from fractions import Fraction

    av = require_extra("av", "mp4", "Writing H.264 MP4 files")
    _, h, w, _ = frames.shape
    ph, pw = h + h % 2, w + w % 2
    if (ph, pw) != (h, w):
        frames = np.pad(frames, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    rate = Fraction(round(fps * 1000), 1000)
    try:
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = pw, ph
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "medium"}
            for frame in frames:
                for packet in stream.encode(
                    av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                ):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise VideoError(
            f"Cannot write H.264 MP4 {path}: {type(exc).__name__}: {str(exc)[:200]}.",
            "Check that the folder is writable, or write a GIF / PNG frames instead (--format gif,png).",
        ) from exc
    return path
