"""``removalx explain`` on real files and bad input: defaults, early checks, model failures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from removalx.cli import EXIT_INPUT, EXIT_OK, main
from removalx.cli.explain import clip_options
from removalx.core.classifier import VideoClassifier
from removalx.errors import ModelError, OutputError
from removalx.files.outputs import StagedOutput, check_output_dir, check_output_file
from removalx.models import load_model
from removalx.pipeline import Explainer
from removalx.video.io import read_video, sample_indices, write_avi

FAST = [
    "--set",
    "segmentation.name=grid3d",
    "--set",
    "segmentation.cells=[2,2,2]",
    "--set",
    "sample_selection.n_samples=8",
    "--quiet",
]


def _args(**kw) -> argparse.Namespace:
    base = {"frames": None, "size": None, "start": None, "duration": None, "start_frame": 0, "stride": None}
    return argparse.Namespace(**{**base, **kw})


@pytest.fixture(scope="module")
def fade_in_avi(tmp_path_factory) -> Path:
    """40 frames at 10 fps, 240x320, the first one black (as many films start), then textured."""
    gen = torch.Generator().manual_seed(0)
    frames = (torch.rand(40, 240, 320, 3, generator=gen) * 200 + 30).to(torch.uint8)
    frames[0] = 0
    return write_avi(frames, tmp_path_factory.mktemp("v") / "street.avi", fps=10)


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if an explanation starts (the checks must come before any work)."""

    def boom(*_a, **_k):
        raise AssertionError("the explanation ran although the input was invalid")

    monkeypatch.setattr(Explainer, "explain", boom)


# -- defaults for real files -------------------------------------------------------------------
def test_centre_sampling_is_one_frame_per_segment() -> None:
    assert sample_indices(40, frames=4, uniform="centers") == [5, 15, 25, 35]  # (2i+1)*40 // 8
    assert sample_indices(16, frames=16, uniform="centers") == list(range(16))
    assert sample_indices(20, frames=4, start=10, uniform="centers") == [11, 13, 16, 18]


@pytest.mark.parametrize(
    ("kw", "clip_size", "original", "expected"),
    [
        ({}, (16, 112, 112), (576, 768), {"frames": 16, "size": (112, 112), "uniform": "centers"}),
        ({}, (16, 224, 224), (576, 768), {"frames": 16, "size": (224, 224)}),
        ({"size": 64, "frames": 8}, (16, 112, 112), (576, 768), {"frames": 8, "size": (64, 64)}),
        ({}, None, (4000, 4000), {"frames": 16, "size": 112, "crop": "none"}),  # shrink, aspect kept
        ({}, None, (48, 64), {"frames": 16}),  # small frames of an unknown model stay as they are
        ({"stride": 2}, (16, 112, 112), (576, 768), {"stride": 2}),
    ],
)
def test_clip_defaults_follow_the_model(kw, clip_size, original, expected) -> None:
    options = clip_options(_args(**kw), clip_size, original)
    for key, value in expected.items():
        assert options[key] == value
    if clip_size is None and min(original) <= 112:
        assert "size" not in options
    assert ("uniform" in options) != ("stride" in options)


def test_real_file_defaults(tmp_path, fade_in_avi, capsys) -> None:
    out = tmp_path / "out"
    rc = main(["explain", str(fade_in_avi), "--out", str(out), *FAST[:-1]])
    assert rc == EXIT_OK
    err = capsys.readouterr().err
    assert "clip: 16 frames" in err and "240x320 -> 112x112" in err
    assert err.count("note: zoo:r3d_tiny is a demo model") == 1 and "--model torchvision:r3d_18" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clip"]["size"] == [16, 112, 112]
    assert summary["clip"]["indices"] == [(2 * i + 1) * 40 // 32 for i in range(16)]
    assert 0 not in summary["clip"]["indices"]  # the black first frame is not in the clip
    assert np.load(out / "attribution.npy").shape == (16, 112, 112)
    assert not list(out.glob(".removalx-*"))  # no staging leftovers


def test_window_in_seconds(tmp_path, fade_in_avi) -> None:
    out = tmp_path / "out"
    rc = main(
        [
            "explain",
            str(fade_in_avi),
            "--start",
            "1",
            "--duration",
            "2",
            "--frames",
            "4",
            "--out",
            str(out),
            *FAST,
        ]
    )
    assert rc == EXIT_OK
    # 10 fps: the window is frames 10..29; the middle frame of each quarter
    assert json.loads((out / "summary.json").read_text())["clip"]["indices"] == [12, 17, 22, 27]


def test_window_beyond_the_end(tmp_path, fade_in_avi, capsys) -> None:
    rc = main(["explain", str(fade_in_avi), "--start", "9", "--out", str(tmp_path / "o"), *FAST])
    assert rc == EXIT_INPUT
    assert "4.00 s long" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_no_note_for_the_bundled_demo_or_a_real_model(tmp_path, capsys) -> None:
    from removalx.zoo.data import DEMO_PATH

    assert main(["explain", str(DEMO_PATH), "--out", str(tmp_path / "o"), *FAST[:-1]]) == EXIT_OK
    assert "note:" not in capsys.readouterr().err


# -- bad input: checked before any work, nothing written -----------------------------------------
def _bad_out_cases(tmp: Path) -> dict[str, tuple[str, str]]:
    (tmp / "afile").write_text("x")
    return {
        "existing file": (str(tmp / "afile"), "is an existing file"),
        "inside a file": (str(tmp / "afile" / "sub"), "is a file, not a folder"),
        "not writable": ("/proc/removalx-out", "not writable"),
    }


@pytest.mark.parametrize("case", ["existing file", "inside a file", "not writable"])
def test_bad_out_is_refused_before_work(tmp_path, fade_in_avi, no_work, capsys, case) -> None:
    path, message = _bad_out_cases(tmp_path)[case]
    rc = main(["explain", str(fade_in_avi), "--out", path, *FAST])
    assert rc == EXIT_INPUT
    assert message in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device", "cuda"], "no cuda device"),
        (["--device", "tpu:9"], "is not a device name"),
        (["--device", "cpu:x"], "is not a device name"),
        (["--format", "gif,bmp"], "--format takes"),
        (["--start", "1", "--start-frame", "3"], "were both given"),
    ],
)
def test_bad_flags_exit_3_before_work(tmp_path, fade_in_avi, no_work, capsys, flags, message) -> None:
    rc = main(["explain", str(fade_in_avi), *flags, "--out", str(tmp_path / "o"), *FAST])
    assert rc == EXIT_INPUT
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "flags",
    [
        ["--batch-size", "0"],
        ["--batch-size", "-4"],
        ["--frames", "0"],
        ["--size", "-1"],
        ["--stride", "x"],
        ["--start", "-1"],
        ["--duration", "0"],
        ["--duration", "nan"],
        ["--start-frame", "-3"],
    ],
)
def test_bad_numbers_are_usage_errors(tmp_path, flags, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["explain", *flags, "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "expected a" in capsys.readouterr().err


def test_device_check_names_what_exists() -> None:
    with pytest.raises(ModelError, match="Pass one of the devices this machine has: cpu"):
        load_model("zoo:r3d_tiny", device="cuda:3")


# -- models that misbehave --------------------------------------------------------------------------
class Raising(torch.nn.Module):
    def forward(self, x):
        raise RuntimeError("shape mismatch in layer 3")


class Shifting(torch.nn.Module):
    """Returns one more class on every call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return torch.zeros(x.shape[0], 2 + self.calls)


def test_model_raising_in_forward_is_a_model_error() -> None:
    clf = VideoClassifier(Raising(), name="mynet")
    with pytest.raises(ModelError) as exc:
        clf(torch.rand(5, 4, 8, 8, 3))
    text = str(exc.value)
    assert "mynet raised RuntimeError" in text and "5x3x4x8x8" in text and "--batch-size" in text
    assert "shape mismatch in layer 3" in text


def test_model_whose_class_count_changes() -> None:
    clf = VideoClassifier(Shifting())
    clf(torch.rand(1, 4, 8, 8, 3))
    with pytest.raises(ModelError, match=r"returned 4 classes .* but 3 on its first call"):
        clf(torch.rand(1, 4, 8, 8, 3))


@pytest.mark.parametrize("where", ["import", "factory"])
def test_model_file_calling_sys_exit(tmp_path, capsys, where) -> None:
    body = (
        "import sys\nsys.exit(0)\ndef make():\n    pass\n"
        if where == "import"
        else "import sys\ndef make():\n    sys.exit(0)\n"
    )
    f = tmp_path / "m.py"
    f.write_text(body)
    rc = main(["explain", "--model", f"python:{f}:make", "--out", str(tmp_path / "o"), *FAST])
    assert rc == EXIT_INPUT
    assert "sys.exit(0)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_failing_model_leaves_out_untouched(tmp_path, capsys) -> None:
    f = tmp_path / "m.py"
    f.write_text(
        "import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n"
        "        raise ValueError('boom')\ndef make():\n    return M()\n"
    )
    out = tmp_path / "o"
    out.mkdir()
    (out / "summary.json").write_text("old")
    rc = main(["explain", "--model", f"python:{f}:make", "--out", str(out), *FAST])
    assert rc == EXIT_INPUT
    assert "raised ValueError" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["summary.json"] and (out / "summary.json").read_text() == "old"


# -- output helpers ---------------------------------------------------------------------------------
def test_output_checks_create_nothing(tmp_path) -> None:
    target = tmp_path / "a" / "b"
    assert check_output_dir(target) == target and not (tmp_path / "a").exists()
    assert check_output_file(tmp_path / "r" / "report.html").name == "report.html"
    assert not (tmp_path / "r").exists()
    with pytest.raises(OutputError, match="existing folder"):
        check_output_file(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_staged_output_moves_all_or_nothing(tmp_path) -> None:
    out = tmp_path / "out"
    with StagedOutput(out) as stage:
        (stage.path / "a.txt").write_text("1")
        (stage.path / "frames").mkdir()
        (stage.path / "frames" / "0.png").write_text("p")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "frames"]
    with pytest.raises(RuntimeError), StagedOutput(out) as stage:
        (stage.path / "a.txt").write_text("2")
        raise RuntimeError("interrupted")
    assert (out / "a.txt").read_text() == "1"
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "frames"]


def test_read_video_rejects_a_window_without_frame_rate(tmp_path) -> None:
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / f"{i}.png")
    from removalx.errors import VideoError

    with pytest.raises(VideoError, match="has no frame rate"):
        read_video(tmp_path, frames=2, uniform="centers", start_time=0.5)


class OneClass(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(1, 2, 3, 4))[:, None]


def test_one_class_model_with_softmax_behavior_is_refused() -> None:
    video = torch.rand(4, 8, 8, 3)
    grid = {"segmentation.name": "grid3d", "segmentation.cells": [2, 2, 2]}
    ex = Explainer.from_recipe("lime3d", overrides={**grid, "sample_selection.n_samples": 4}, progress=False)
    with pytest.raises(ModelError, match="single class"):
        ex.explain(OneClass(), video)
    for recipe in ("gradient",):  # an explainer: the map is constant
        with pytest.raises(ModelError, match="single class"):
            Explainer.from_recipe(recipe, progress=False).explain(OneClass(), video)


def test_one_class_model_with_logit_behavior_works() -> None:
    video = torch.rand(4, 8, 8, 3)
    ex = Explainer.from_recipe(
        "occlusion3d",
        overrides={"behavior.name": "logit", "segmentation.name": "grid3d", "segmentation.cells": [2, 2, 2]},
        progress=False,
    )
    attr = ex.explain(OneClass(), video)
    assert attr.values.shape == (4, 8, 8) and attr.values.std() > 0


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--recipe", "lime3d", "--n-videos", "1", "--db", "{file}/runs.db"],
        [
            "evaluate",
            "--recipe",
            "lime3d",
            "--n-videos",
            "1",
            "--db",
            "{tmp}/runs.db",
            "--export",
            "{file}/x.csv",
        ],
        ["report", "{tmp}/runs.db", "--out", "{file}/report.html"],
        ["report", "{tmp}/runs.db", "--out", "{tmp}"],
    ],
)
def test_experiment_outputs_are_checked_before_work(tmp_path, capsys, monkeypatch, argv) -> None:
    import removalx.data.datasets as datasets
    import removalx.experiments.report as report

    def boom(*_a, **_k):
        raise AssertionError("work started although an output path is unusable")

    monkeypatch.setattr(datasets, "dataset_refs", boom)
    monkeypatch.setattr(report, "write_report", boom)
    (tmp_path / "afile").write_text("x")
    args = [a.format(file=tmp_path / "afile", tmp=tmp_path) for a in argv]
    assert main(args) == EXIT_INPUT
    assert "removalx: error:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
