"""Command-line papercuts (issue 27, section 2, items 3, 4, 5 and 10).

--target by class name, the --model help and the hf: hint of a missing folder; per-recipe
overrides and skipped global ones in compare; --quiet that hides progress only; a closed
output pipe; frame-index vs seconds in read_video's messages; the port of `study create`'s serve
command; the attribution files in explain's list of outputs.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import torch

from removalx.cli import EXIT_INPUT, EXIT_OK, main
from removalx.cli.explain import resolve_target
from removalx.cli.main import _parser
from removalx.core.recipe import load_recipe
from removalx.errors import ConfigError, ModelError, TargetError, VideoError
from removalx.experiments.overrides import resolve_overrides, split_overrides
from removalx.testing import tiny_video
from removalx.video.io import sample_indices, write_gif

NAMED_MODEL = """
from removalx import VideoClassifier
from removalx.testing import ToyClassifier


def make():
    return VideoClassifier(ToyClassifier(n_classes=3), layout="BCTHW", class_names=["jumping", "Running", "sitting"])
"""

#: The cheapest removal recipe for a toy model (as in tests/test_cli.py).
CHEAP = ["--set", "segmentation.name=grid3d", "--set", "segmentation.cells=[2,2,2]"]


@pytest.fixture
def named_model(tmp_path) -> tuple[Path, str]:
    video = tiny_video(frames=4, size=16)
    gif = write_gif((video * 255).round().to(torch.uint8), tmp_path / "clip.gif", fps=4)
    (tmp_path / "named.py").write_text(NAMED_MODEL)
    return gif, f"python:{tmp_path / 'named.py'}:make"


# -- 2.3: --target by name, --model help, the hf: hint -----------------------------------------------
def test_resolve_target_takes_an_index_or_a_class_name() -> None:
    names = ["jumping", "Running", "sitting"]
    assert resolve_target(None, names) is None
    assert resolve_target("2", names) == 2
    assert resolve_target(" 7 ", None) == 7  # an index: its range is checked against the logits later
    assert resolve_target("sitting", names) == names.index("sitting")
    assert resolve_target("running", names) == 1  # unique case-insensitive match
    with pytest.raises(TargetError, match="no class names"):
        resolve_target("running", None)


def test_unknown_target_name_lists_the_classes_truncated() -> None:
    names = [f"class_{i:04d}" for i in range(1000)]
    with pytest.raises(TargetError) as info:
        resolve_target("runing" * 100, names, "hf:x")
    msg = str(info.value)
    assert "class_0000, class_0001" in msg and "its 1000 classes" in msg and "0..999" in msg
    assert "class_0999" not in msg and len(msg) < 1000  # the list and the given value are cut
    twice = ["run", "RUN"]  # two case-insensitive matches: ambiguous, refused
    with pytest.raises(TargetError, match="run, RUN"):
        resolve_target("Run", twice)


def test_explain_target_by_name_end_to_end(tmp_path, named_model, capsys) -> None:
    gif, spec = named_model
    out = tmp_path / "out"
    argv = ["explain", str(gif), "--model", spec, "--frames", "4", *CHEAP, "--out", str(out)]
    assert main([*argv, "--target", "sitting", "--set", "sample_selection.n_samples=4"]) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["target"], summary["target_name"]) == (2, "sitting")
    # every file explain wrote at the top of --out is listed (the folder is the oracle)
    wrote = {
        Path(line.split("wrote ", 1)[1]).name
        for line in capsys.readouterr().out.splitlines()
        if "wrote " in line
    }
    assert {"attribution.npz", "attribution.npy", "summary.json"} <= wrote
    assert wrote == {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert main([*argv, "--target", "flying", "-q"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "jumping, Running, sitting" in err and "Traceback" not in err


def test_model_help_names_every_adapter() -> None:
    explain = _parser()._subparsers._group_actions[0].choices["explain"]  # type: ignore[union-attr,index]
    text = " ".join(explain.format_help().split())
    assert all(a in text for a in ("zoo:", "torchvision:", "python:", "hf:"))
    assert _parser().parse_args(["explain", "--target", "running"]).target == "running"


def test_hf_missing_local_folder_says_so_without_a_download_hint(tmp_path) -> None:
    from removalx.models import load_model

    missing = tmp_path / "models" / "videomae"
    with pytest.raises(ModelError) as info:
        load_model(f"hf:{missing}")
    msg = str(info.value)
    assert f"no folder {missing} exists" in msg and "never downloads models at run time" in msg
    assert "hf download" not in msg and "save_pretrained" in msg
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file, not a folder"):
        load_model(f"hf:{tmp_path / 'file.bin'}")


def test_hf_missing_hub_name_names_hf_download() -> None:
    pytest.importorskip("transformers")
    from removalx.models import load_model

    with pytest.raises(ModelError) as info:
        load_model("hf:removalx-tests/no-such-model-9f3c")
    msg = str(info.value)
    assert "hf download removalx-tests/no-such-model-9f3c" in msg
    assert (
        "not a model in the local Hugging Face cache" in msg and "never downloads models at run time" in msg
    )


# -- 2.4: per-recipe and skipped global overrides --------------------------------------------------------
def test_split_overrides_forms() -> None:
    names = ["rise3d", "grad_cam"]
    cli = split_overrides(
        ["seed=3", "rise3d:sample_selection.n_samples=100", "rise3d:removal.value=0.5"], names
    )
    assert cli.common == {"seed": 3}
    assert cli.per_recipe == {"rise3d": {"sample_selection.n_samples": 100, "removal.value": 0.5}}
    py = split_overrides({"rise3d": {"sample_selection.n_samples": 100}, "*": ["seed=3"]}, names)
    assert (py.common, py.per_recipe) == (cli.common, {"rise3d": {"sample_selection.n_samples": 100}})
    flat = split_overrides({"sample_selection.n_samples": 5, "segmentation": {"name": "grid3d"}}, names)
    assert flat.common == {"sample_selection.n_samples": 5, "segmentation": {"name": "grid3d"}}
    assert flat.per_recipe == {}
    with pytest.raises(ConfigError, match="rise3d, grad_cam"):
        split_overrides(["rise3:sample_selection.n_samples=1"], names)
    with pytest.raises(ConfigError, match="no recipe of that name"):
        split_overrides({"rise3": {"sample_selection.n_samples": 1}}, names)  # misspelt, not a recipe key


def test_global_override_skips_recipes_without_the_stage() -> None:
    triples: list[tuple[str, str, dict[str, Any]]] = [("rise3d", "rise3d", {}), ("grad_cam", "grad_cam", {})]
    sets = ["sample_selection.n_samples=100", "seed=4", "grad_cam:explainer.relu=false"]
    out, notes = resolve_overrides(triples, sets, skip_missing=True)
    assert out == [
        ("rise3d", "rise3d", {"sample_selection.n_samples": 100, "seed": 4}),
        ("grad_cam", "grad_cam", {"seed": 4, "explainer.relu": False}),
    ]
    assert len(notes) == 1 and "grad_cam" in notes[0] and "sample_selection.n_samples" in notes[0]
    assert load_recipe("rise3d", overrides=out[0][2]).stage("sample_selection").n_samples == 100  # type: ignore[union-attr]
    # per recipe beats global, a method's own key (an ablate variant) beats both
    out, _ = resolve_overrides(
        [("v", "rise3d", {"sample_selection.n_samples": 7})],
        {"*": {"removal.value": 0.1, "sample_selection.n_samples": 1}, "rise3d": {"removal.value": 0.9}},
        skip_missing=True,
    )
    assert out[0][2] == {"removal.value": 0.9, "sample_selection.n_samples": 7}
    # one recipe (evaluate, ablate): a global override always applies, nothing is skipped
    out, notes = resolve_overrides([("grad_cam", "grad_cam", {})], ["removal.value=0.5"], skip_missing=False)
    assert out[0][2] == {"removal.value": 0.5} and notes == []
    with pytest.raises(ConfigError, match="none of the recipes"):
        resolve_overrides(triples[1:], ["removal.value=0.5"], skip_missing=True)


@pytest.fixture(scope="module")
def toy_spec(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("toy")
    (d / "toy.py").write_text(
        "from removalx.testing import ToyClassifier\n\ndef make():\n    return ToyClassifier(4)\n"
    )
    return f"python:{d / 'toy.py'}:make"


TINY = [
    "--n-videos",
    "2",
    "--frames",
    "4",
    "--size",
    "16",
    "--metrics",
    "deletion",
    "--metric-set",
    "deletion.steps=4",
]


def test_compare_with_a_global_set_skips_grad_cam_and_prints_the_table_when_quiet(tmp_path, toy_spec, capsys):
    db = tmp_path / "c.db"
    argv = ["compare", "--recipes", "rise3d,grad_cam", "--model", toy_spec, "--db", str(db), *TINY, "--quiet"]
    sets = ["--set", "sample_selection.n_samples=8", "--set", "rise3d:segmentation.cells=[1,2,2]"]
    assert main([*argv, *sets, "--no-random"]) == EXIT_OK
    out, err = capsys.readouterr()
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "grad_cam" in notes[0] and "sample_selection" in notes[0]
    rows = [line.split()[0] for line in out.splitlines() if line.split()]
    assert rows[0] == "method" and {"rise3d", "grad_cam"} <= set(rows)  # --quiet keeps the results table
    con = sqlite3.connect(db)
    try:
        stored = dict(con.execute("SELECT method, recipe FROM explanations").fetchall())
    finally:
        con.close()
    rise = json.loads(stored["rise3d"])
    assert rise["sample_selection"]["n_samples"] == 8 and rise["segmentation"]["cells"] == [1, 2, 2]
    assert "sample_selection" not in json.loads(stored["grad_cam"])
    assert main([*argv, "--set", "rise4d:seed=1"]) == EXIT_INPUT  # a recipe the run does not have
    assert "rise3d, grad_cam" in capsys.readouterr().err


def test_evaluate_quiet_prints_results_not_progress(tmp_path, toy_spec, capsys):
    argv = ["evaluate", "--recipe", "occlusion3d", "--model", toy_spec, "--db", str(tmp_path / "e.db"), *TINY]
    assert main([*argv, "--quiet"]) == EXIT_OK
    quiet = capsys.readouterr()
    assert main(argv) == EXIT_OK
    loud = capsys.readouterr()
    table = [line for line in quiet.out.splitlines() if line.startswith(("method", "occlusion3d"))]
    assert len(table) == 2 and all(line in loud.out for line in table)
    assert "computed" not in quiet.out and "computed" in loud.out  # the run's bookkeeping is not a result
    assert "%" not in quiet.err  # no progress bar


# -- 2.10 -----------------------------------------------------------------------------------------------
def test_closed_output_pipe_exits_quietly() -> None:
    exe = Path(sys.executable).with_name("removalx")
    cmd = (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "import sys; from removalx.cli import main; sys.exit(main())"]
    )
    proc = subprocess.Popen([*cmd, "recipes", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before the first line, as `| head -0` would
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_broken_pipe_in_a_command_is_exit_141(monkeypatch) -> None:
    import importlib

    cli_main = importlib.import_module("removalx.cli.main")  # the module, not the re-exported main

    def boom(_args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli_main, "_commands", lambda: {"plugins": boom})
    assert main(["plugins"]) == 141


def test_frame_index_start_says_its_unit() -> None:
    with pytest.raises(
        VideoError, match=r"start=12 is beyond the end \(start is a frame index, not seconds\)"
    ):
        sample_indices(12, frames=2, start=12)
    with pytest.raises(VideoError, match="start_time"):
        sample_indices(12, frames=2, start=12)
    with pytest.raises(VideoError, match="from frame 10 needs frame 13"):
        sample_indices(12, frames=4, start=10)
    with pytest.raises(
        VideoError, match=r"start must be an integer >= 0 \(a frame index; a start in seconds is start_time\)"
    ):
        sample_indices(12, frames=2, start=2.5)  # type: ignore[arg-type]


def test_study_create_prints_a_serve_command_with_the_invite_port(tmp_path, monkeypatch, capsys) -> None:
    import removalx.experiments.study.create as create

    monkeypatch.setattr(create, "create_study", lambda db, spec: ([], {"ann": "tok"}))
    monkeypatch.setattr(create, "describe", lambda items: "0 items")
    db = str(tmp_path / "s.db")
    assert main(["study", "create", "--db", db, "--name", "s", "--port", "8811"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    invite = urlparse(next(line.split(": ", 1)[1] for line in lines if line.startswith("invite ann")))
    serve = next(line.split("serve it with: removalx ", 1)[1] for line in lines if "serve it with" in line)
    args = _parser().parse_args(serve.split())
    assert (args.action, args.db, args.port, args.host) == ("serve", db, invite.port, invite.hostname)
    assert invite.port == 8811
