"""Tests of removalx.video.io: reading, sampling, resizing, validation and writing of videos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from removalx.errors import VideoError
from removalx.video.io import (
    VideoInfo,
    read_video,
    sample_indices,
    validate_video,
    write_avi,
    write_gif,
    write_mp4,
    write_png_frames,
    write_video,
    write_webm,
)

T, H, W = 12, 48, 64


def moving_square(t: int = T, h: int = H, w: int = W, static: tuple[int, ...] = (5, 6)) -> np.ndarray:
    """``uint8[t, h, w, 3]``: an orange square moving right on a dark-blue background."""
    v = np.zeros((t, h, w, 3), np.uint8)
    v[..., 2] = 60
    for i in range(t):
        x = (4 * i) % (w - 16)
        v[i, 12:28, x : x + 16] = (255, 128, 0)
    for i in static:  # identical consecutive frames must survive the round trip
        if 0 < i < t:
            v[i] = v[i - 1]
    return v


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return moving_square()


# -- round trips ---------------------------------------------------------------------------
# (writer, extension, mean-abs tolerance, max-abs tolerance); GIF is exact for few colours.
FORMATS = [
    (write_gif, ".gif", 1e-6, 1e-6),
    (write_mp4, ".mp4", 0.02, 0.5),
    (write_avi, ".avi", 0.02, 0.5),
    (write_webm, ".webm", 0.02, 0.5),
]


@pytest.mark.parametrize(("writer", "ext", "mean_tol", "max_tol"), FORMATS, ids=[f[1] for f in FORMATS])
def test_round_trip(
    tmp_path: Path, clip: np.ndarray, writer, ext: str, mean_tol: float, max_tol: float
) -> None:
    path = writer(clip, tmp_path / f"clip{ext}", fps=10)
    assert path.exists() and path.stat().st_size > 0
    video, info = read_video(path)
    assert video.dtype == torch.float32 and video.shape == (T, H, W, 3)
    assert float(video.min()) >= 0.0 and float(video.max()) <= 1.0
    assert info.n_frames == T
    assert info.indices == tuple(range(T))
    assert info.original == (H, W)
    assert info.fps == pytest.approx(10.0, abs=0.01)
    diff = (video - torch.from_numpy(clip).float() / 255).abs()
    assert float(diff.mean()) < mean_tol
    assert float(diff.max()) < max_tol
    # the square is found where it was drawn in every frame (lossy codecs too)
    orange = (video[..., 0] > 0.7) & (video[..., 2] < 0.4)
    expected = (clip[..., 0] == 255) & (clip[..., 2] == 0)
    agree = (orange.numpy() == expected).mean()
    assert agree > 0.97


def test_gif_fps_rounded_to_centiseconds(tmp_path: Path, clip: np.ndarray) -> None:
    path = write_gif(clip, tmp_path / "c.gif", fps=8)  # 125 ms -> 120 or 130 ms
    _, info = read_video(path)
    assert info.fps == pytest.approx(8.0, abs=0.35)


@pytest.mark.parametrize("ext", [".gif", ".mp4", ".avi", ".webm"])
def test_write_video_dispatch_accepts_torch(tmp_path: Path, clip: np.ndarray, ext: str) -> None:
    path = write_video(torch.from_numpy(clip), tmp_path / "sub" / f"out{ext}", fps=5)
    assert path.suffix == ext and path.exists()
    video, info = read_video(path)
    assert video.shape[0] == T and info.fps == pytest.approx(5.0, abs=0.01)


def test_png_frames_round_trip_exact(tmp_path: Path, clip: np.ndarray) -> None:
    files = write_png_frames(torch.from_numpy(clip), tmp_path / "frames")
    assert len(files) == T and files == sorted(files)
    video, info = read_video(tmp_path / "frames")
    assert torch.equal(video, torch.from_numpy(clip).float() / 255)
    assert info.fps is None and info.n_frames == T and info.original == (H, W)
    folder = write_video(clip, tmp_path / "frames2")
    assert len(list(folder.glob("*.png"))) == T


def test_folder_sorted_naturally_and_jpg(tmp_path: Path) -> None:
    from PIL import Image

    d = tmp_path / "frames"
    d.mkdir()
    for i in range(11):  # frame_2 must come before frame_10
        Image.fromarray(np.full((8, 10, 3), i * 20, np.uint8)).save(d / f"frame_{i}.png")
    (d / "notes.txt").write_text("ignored")
    video, info = read_video(d)
    assert info.n_frames == 11
    assert torch.allclose(video[:, 0, 0, 0] * 255, torch.arange(11).float() * 20)
    jd = tmp_path / "jpgs"
    jd.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 10, 3), 100, np.uint8)).save(jd / f"{i:03d}.jpg")
    video, _ = read_video(jd)
    assert video.shape == (3, 8, 10, 3)


def test_folder_mixed_sizes_raise(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(VideoError, match="different sizes"):
        read_video(tmp_path)


# -- clip sampling -------------------------------------------------------------------------
def test_sample_indices() -> None:
    assert sample_indices(10) == list(range(10))
    assert sample_indices(10, frames=3) == [0, 1, 2]
    assert sample_indices(10, frames=3, stride=3, start=1) == [1, 4, 7]
    assert sample_indices(10, stride=4) == [0, 4, 8]
    assert sample_indices(10, frames=4, uniform=True) == [0, 3, 6, 9]
    assert sample_indices(10, frames=1, uniform=True) == [4]
    assert sample_indices(10, frames=10, uniform=True) == list(range(10))
    assert sample_indices(10, frames=3, start=4, uniform=True) == [4, 6, 9]


@pytest.mark.parametrize("ext", [".mp4", ".gif", ""])
def test_read_clip_sampling(tmp_path: Path, clip: np.ndarray, ext: str) -> None:
    path = write_video(clip, tmp_path / f"clip{ext}", fps=10)
    full, _ = read_video(path)
    video, info = read_video(path, frames=4, stride=2, start=3)
    assert info.indices == (3, 5, 7, 9) and info.n_frames == T
    assert torch.allclose(video, full[[3, 5, 7, 9]], atol=1e-6)
    video, info = read_video(path, frames=5, uniform=True)
    assert info.indices == (0, 3, 6, 8, 11)
    assert torch.allclose(video, full[list(info.indices)], atol=1e-6)
    video, info = read_video(path, start=10)
    assert info.indices == (10, 11) and video.shape[0] == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frames": 13}, "beyond the end"),
        ({"frames": 5, "stride": 3}, "frames <= 4"),
        ({"start": 12}, "start=12 is beyond the end"),
        ({"frames": 13, "uniform": True}, "frames <= 12"),
        ({"uniform": True}, "needs the number of frames"),
        ({"frames": 4, "stride": 2, "uniform": True}, "cannot be used"),
        ({"frames": 0}, "frames must be an integer >= 1"),
        ({"stride": 0}, "stride must be"),
        ({"start": -1}, "start must be"),
    ],
)
def test_sampling_errors(tmp_path: Path, clip: np.ndarray, kwargs: dict, match: str) -> None:
    path = write_mp4(clip, tmp_path / "c.mp4")
    with pytest.raises(VideoError, match=match) as err:
        read_video(path, **kwargs)
    assert "c.mp4" in str(err.value) and "Fix:" in str(err.value)


# -- resizing ------------------------------------------------------------------------------
def test_resize_and_crop(tmp_path: Path, clip: np.ndarray) -> None:
    path = write_png_frames(clip, tmp_path / "f")[0].parent
    video, info = read_video(path, size=32)  # 48x64 -> short side 32 -> 32x43 -> crop 32x32
    assert video.shape == (T, 32, 32, 3) and info.original == (H, W)
    video, _ = read_video(path, size=(24, 40))
    assert video.shape == (T, 24, 40, 3)
    video, _ = read_video(path, size=(40, 20))  # covering needs upscaling the height
    assert video.shape == (T, 40, 20, 3)
    video, _ = read_video(path, size=24, crop="none")  # short side 24, aspect kept
    assert video.shape == (T, 24, 32, 3)
    video, _ = read_video(path, size=(10, 10), crop="none")  # exact, aspect not kept
    assert video.shape == (T, 10, 10, 3)
    # center crop keeps the middle: the background column at x=0 vs the crop's borders
    full, _ = read_video(path, size=48)
    ref, _ = read_video(path)
    assert torch.allclose(full, ref[:, :, 8:56], atol=1e-6)
    with pytest.raises(VideoError, match="crop must be"):
        read_video(path, size=10, crop="left")
    with pytest.raises(VideoError, match="size must be"):
        read_video(path, size=(0, 10))


# -- read errors ---------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="does not exist") as err:
        read_video(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(err.value)


def test_unsupported_extension(tmp_path: Path) -> None:
    p = tmp_path / "clip.txt"
    p.write_text("hello")
    with pytest.raises(VideoError, match="Unsupported video file") as err:
        read_video(p)
    assert "clip.txt" in str(err.value) and "ffmpeg" in str(err.value)


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".webm", ".gif"])
def test_corrupt_file(tmp_path: Path, ext: str) -> None:
    p = tmp_path / f"broken{ext}"
    p.write_bytes(b"this is not a video at all" * 50)
    with pytest.raises(VideoError) as err:
        read_video(p)
    assert f"broken{ext}" in str(err.value) and "ffmpeg" in str(err.value)


def test_empty_file_and_folder(tmp_path: Path) -> None:
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        read_video(p)
    d = tmp_path / "nothing"
    d.mkdir()
    with pytest.raises(VideoError, match="no frames") as err:
        read_video(d)
    assert "ffmpeg" in str(err.value)


def test_truncated_mp4(tmp_path: Path, clip: np.ndarray) -> None:
    p = write_mp4(clip, tmp_path / "t.mp4")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])  # moov atom at the end is lost
    with pytest.raises(VideoError, match=r"t\.mp4"):
        read_video(p)


# -- validate_video ------------------------------------------------------------------------
def test_validate_ok_paths() -> None:
    v = torch.rand(4, 8, 8, 3)
    assert validate_video(v).dtype == torch.float32
    out = validate_video(np.random.rand(4, 8, 8, 3))  # float64 numpy -> float32 tensor
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    gray = validate_video(torch.rand(4, 8, 8, 1))
    assert gray.shape == (4, 8, 8, 3) and torch.equal(gray[..., 0], gray[..., 2])
    nudged = validate_video(torch.full((1, 2, 2, 3), 1 + 5e-7))
    assert float(nudged.max()) == 1.0
    assert validate_video(torch.rand(2, 4, 4, 3, dtype=torch.float16)).dtype == torch.float32


@pytest.mark.parametrize(
    ("video", "match"),
    [
        (torch.zeros(4, 8, 8, 3, dtype=torch.uint8), "(?i)divide by 255"),
        (np.zeros((4, 8, 8, 3), np.int64), "float"),
        (torch.rand(4, 3, 8, 8), r"permute\(0, 2, 3, 1\)"),
        (torch.rand(3, 4, 8, 8), r"permute\(1, 2, 3, 0\)"),
        (torch.rand(1, 4, 8, 8, 3), r"video\[0\]"),
        (torch.rand(8, 8, 3), r"video\[None\]"),
        (torch.rand(4, 8, 8, 4), "alpha"),
        (torch.rand(4, 8, 8, 3) * 255, "divide by 255"),
        (torch.rand(4, 8, 8, 3) - 0.5, "normalised"),
        (torch.full((4, 8, 8, 3), float("nan")), "NaN"),
        (torch.zeros(0, 8, 8, 3), "empty"),
        ([[1.0]], "torch.Tensor or np.ndarray"),
        (torch.full((1, 2, 2, 3), 1 + 1e-4), r"\[0, 1\]"),
    ],
)
def test_validate_errors(video, match: str) -> None:
    with pytest.raises(VideoError, match=match) as err:
        validate_video(video)
    msg = str(err.value)
    assert "Fix:" in msg and ("expected" in msg or "must" in msg)


# -- writer errors -------------------------------------------------------------------------
def test_writer_errors(tmp_path: Path, clip: np.ndarray) -> None:
    with pytest.raises(VideoError, match="uint8"):
        write_gif(clip.astype(np.float32) / 255, tmp_path / "a.gif")
    with pytest.raises(VideoError, match=r"\[T, H, W, 3\]"):
        write_mp4(np.zeros((4, 3, 8, 8), np.uint8), tmp_path / "a.mp4")
    with pytest.raises(VideoError, match="fps"):
        write_avi(clip, tmp_path / "a.avi", fps=0)
    with pytest.raises(VideoError, match=r"must end in \.mp4"):
        write_mp4(clip, tmp_path / "a.avi")
    with pytest.raises(VideoError, match="unsupported extension"):
        write_video(clip, tmp_path / "a.flv")


def test_videoinfo_is_dataclass(tmp_path: Path, clip: np.ndarray) -> None:
    _, info = read_video(write_gif(clip, tmp_path / "x.gif"), frames=2)
    assert isinstance(info, VideoInfo) and info.path == tmp_path / "x.gif" and info.indices == (0, 1)


# -- seeking to the sampled frames ---------------------------------------------------------
_VideoCapture = cv2.VideoCapture


class _CountingCapture:
    """``cv2.VideoCapture`` that counts ``grab``/``read`` calls; ``seek=False`` refuses every seek."""

    grabs = 0
    seek = True

    def __init__(self, *args: object) -> None:
        self._cap = _VideoCapture(*args)

    def grab(self) -> bool:
        type(self).grabs += 1
        return bool(self._cap.grab())

    def read(self) -> tuple[bool, np.ndarray]:
        type(self).grabs += 1
        return self._cap.read()

    def set(self, prop: int, value: float) -> bool:
        if prop == cv2.CAP_PROP_POS_FRAMES and not type(self).seek:
            return False
        return bool(self._cap.set(prop, value))

    def __getattr__(self, name: str) -> object:
        return getattr(self._cap, name)


def _all_frames_sequentially(path: Path) -> np.ndarray:
    """The oracle: every frame, decoded in order with plain OpenCV (no seeking), as RGB uint8."""
    cap = _VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(frames)


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".webm"])
def test_reader_seeks_to_the_sampled_frames(tmp_path: Path, ext: str, monkeypatch) -> None:
    from removalx.video import io as rio

    n = 120
    v = moving_square(t=n, h=32, w=48, static=())
    v[..., 1] = (np.arange(n, dtype=np.uint8) * 2)[:, None, None]  # every frame differs
    path = write_video(v, tmp_path / f"long{ext}", fps=25)
    oracle = _all_frames_sequentially(path)
    assert oracle.shape[0] == n
    monkeypatch.setattr(cv2, "VideoCapture", _CountingCapture)
    for seek in (True, False):  # False: every seek refused -> the sequential fallback
        _CountingCapture.grabs, _CountingCapture.seek = 0, seek
        video, info = read_video(path, frames=4, uniform="centers")
        assert info.indices == (15, 45, 75, 105)
        expected = torch.from_numpy(oracle[list(info.indices)]).float() / 255
        assert torch.equal(video, expected), f"seek={seek}: not the frames a sequential read gives"
        if seek:  # a grab per sampled frame, not one per frame up to the last
            assert _CountingCapture.grabs == len(info.indices), _CountingCapture.grabs
        else:
            assert _CountingCapture.grabs >= max(info.indices) + 1
    # Frames close together are grabbed, not sought; the result is the same.
    _CountingCapture.grabs, _CountingCapture.seek = 0, True
    video, info = read_video(path, frames=5, stride=2, start=40)
    assert torch.equal(video, torch.from_numpy(oracle[40:50:2]).float() / 255)
    assert _CountingCapture.grabs == 9 < 50
    assert rio.SEEK_GAP == 8  # the gap above (2) is below it; the uniform gaps (30) above it
