"""The removalx command line: explain, plugins, recipes, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from removalx.cli import EXIT_INPUT, EXIT_OK, EXIT_USAGE, main
from removalx.core.types import Attribution
from removalx.testing import tiny_video
from removalx.video.io import write_gif

MODEL_FILE = """
from removalx.testing import ToyClassifier

def make():
    return ToyClassifier(n_classes=3)
"""


@pytest.fixture
def clip_and_model(tmp_path):
    video = tiny_video(frames=4, size=16)
    gif = write_gif((video * 255).round().to(torch.uint8), tmp_path / "clip.gif", fps=4)
    model = tmp_path / "mymodel.py"
    model.write_text(MODEL_FILE)
    return gif, model


def test_explain_writes_outputs(tmp_path, clip_and_model, capsys):
    gif, model = clip_and_model
    out = tmp_path / "out"
    rc = main(
        [
            "explain",
            str(gif),
            "--model",
            f"python:{model}:make",
            "--frames",
            "4",
            "--recipe",
            "lime3d",
            "--set",
            "segmentation.name=grid3d",
            "--set",
            "segmentation.cells=[2,2,2]",
            "--set",
            "sample_selection.n_samples=8",
            "--format",
            "gif,mp4,png",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == EXIT_OK
    assert capsys.readouterr().out.strip() == str(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_forward"] == 9 and summary["recipe"]["name"] == "lime3d"  # clean pass + 8 samples
    values = np.load(out / "attribution.npy")
    assert values.shape == (4, 16, 16)
    assert (out / "overlay.gif").stat().st_size > 0 and (out / "overlay.mp4").stat().st_size > 0
    assert len(list((out / "overlay_frames").glob("*.png"))) == 4
    saved = Attribution.load(out / "attribution.npz")
    np.testing.assert_allclose(saved.values.numpy(), values)


def test_explain_bad_input_exit_code(tmp_path, clip_and_model, capsys):
    gif, model = clip_and_model
    rc = main(
        [
            "explain",
            str(gif),
            "--model",
            f"python:{model}:make",
            "--frames",
            "4",
            "--set",
            "removal.name=nope",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == EXIT_INPUT
    err = capsys.readouterr().err
    assert "removal" in err and "constant" in err
    rc = main(
        [
            "explain",
            str(tmp_path / "missing.mp4"),
            "--model",
            f"python:{model}:make",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == EXIT_INPUT
    rc = main(
        [
            "explain",
            str(gif),
            "--model",
            f"python:{model}:make",
            "--frames",
            "4",
            "--target",
            "7",
            "--set",
            "segmentation.name=grid3d",
            "--set",
            "segmentation.cells=[1,2,2]",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == EXIT_INPUT
    assert "3 classes" in capsys.readouterr().err


def test_recipes_commands(tmp_path, capsys):
    assert main(["recipes", "list"]) == EXIT_OK
    assert "rise3d" in capsys.readouterr().out
    assert main(["recipes", "show", "lime3d", "--set", "sample_selection.n_samples=5"]) == EXIT_OK
    assert "n_samples: 5" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("segmentation: {name: slic3d, colour: 1}\n")
    assert main(["recipes", "validate", str(bad)]) == EXIT_INPUT
    assert "segmentation.colour" in capsys.readouterr().err
    assert main(["recipes", "schema"]) == EXIT_OK
    assert "properties" in json.loads(capsys.readouterr().out)


def test_plugins_lists_every_stage(capsys):
    assert main(["plugins", "--json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    stages = {r["stage"] for r in rows}
    assert {
        "segmentation",
        "feature_selection",
        "sample_selection",
        "removal",
        "behavior",
        "summary",
        "visualization",
        "model",
    } <= stages
    slic = next(r for r in rows if r["name"] == "slic3d")
    assert slic["source"] == "removalx" and "n_segments" in slic["fields"]


def test_no_command_and_help():
    assert main([]) == EXIT_USAGE
    with pytest.raises(SystemExit) as e:
        main(["explain", "--help"])
    assert e.value.code == 0


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "removalx.cli", "recipes", "list"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "lime3d" in out.stdout
