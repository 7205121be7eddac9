"""The Python API (DataFrames), and the dataset formats: Kinetics CSV, UCF101 splits, boxes, selection."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from removalx.data.datasets import dataset_refs, load_item
from removalx.errors import DatasetError
from tests.experiments.conftest import GRID

pd = pytest.importorskip("pandas")

FAST = {
    "n_videos": 2,
    "frames": 4,
    "size": 16,
    "metric_set": ["deletion.steps=4", "insertion.steps=4"],
    "overrides": GRID[1::2],
    "progress": False,
}


def _gif(path: Path, seed: int, frames: int = 6) -> None:
    from removalx.testing import tiny_video
    from removalx.video.io import write_gif

    path.parent.mkdir(parents=True, exist_ok=True)
    write_gif((tiny_video(frames=frames, size=16, seed=seed) * 255).round().to(torch.uint8), path, fps=4)


def _frames(folder: Path, n: int, h: int, w: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / f"{i + 1:05d}.jpg")


# -- Python API --------------------------------------------------------------------------------------
def test_evaluate_returns_dataframes_and_cli_shares_the_store(tmp_path, model_spec):
    from removalx.cli.experiments import main
    from removalx.experiments import Store, evaluate

    db = tmp_path / "r.db"
    res = evaluate("lime3d", db, model=model_spec, metrics="deletion,insertion", **FAST)
    assert res.counts.explained == 2 and res.counts.scored == 4
    assert len(res.scores) == 2 * 2 and set(res.scores["metric"]) == {"deletion", "insertion"}
    assert list(res.scores["label"]) == [0, 0, 1, 1]  # zoo:synthetic clip i has label i % 4
    # summary = mean of the per-video rows (pandas as the oracle of our statistics)
    means = res.scores.groupby("metric")["value"].mean()
    for _, row in res.summary.iterrows():
        assert row["mean"] == pytest.approx(means[row["metric"]]) and row["n"] == 2
    stored = Store(db).to_pandas()
    pd.testing.assert_frame_equal(stored, res.scores)
    # the CLI runs through the same API: everything is found in the store
    argv = ["evaluate", "--recipe", "lime3d", "--model", model_spec, "--db", str(db), "--n-videos", "2"]
    argv += ["--frames", "4", "--size", "16", "--quiet", "--metrics", "deletion,insertion"]
    argv += ["--metric-set", "deletion.steps=4", "--metric-set", "insertion.steps=4", *GRID]
    assert main(argv) == 0
    assert len(Store(db).to_pandas()) == 4


def test_ablate_returns_paired_tests(tmp_path, model_spec):
    from removalx.experiments import ablate

    res = ablate("lime3d", "removal.name=constant,mean", tmp_path / "a.db", model=model_spec, **FAST)
    assert list(res.paired["variant"].unique()) == ["lime3d[removal.name=mean]"]
    assert set(res.summary["method"]) == {"lime3d[removal.name=constant]", "lime3d[removal.name=mean]"}


def test_api_without_pandas_names_the_extra(monkeypatch, tmp_path, model_spec):
    from removalx.experiments import evaluate
    from removalx.experiments.frames import MissingExtraError

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingExtraError, match=r"removalx\[pandas\]"):
        evaluate("lime3d", tmp_path / "x.db", model=model_spec, **FAST)
    assert not (tmp_path / "x.db").exists()


def test_unknown_option_lists_the_valid_ones(tmp_path):
    from removalx.errors import ConfigError
    from removalx.experiments import evaluate

    with pytest.raises(ConfigError, match=r"(?s)n_video.*Valid options:.*n_videos"):
        evaluate("lime3d", tmp_path / "x.db", n_video=2)


# -- Kinetics -------------------------------------------------------------------------------------
def test_kinetics_csv(tmp_path, model_spec):
    root = tmp_path / "k400"
    _gif(root / "val" / "aaaaaaaaaaa_000010_000020.gif", 0)
    _gif(root / "val" / "zumba" / "bbbbbbbbbbb_000003_000013.gif", 1)  # in a class folder
    ann = root / "validate.csv"
    ann.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,aaaaaaaaaaa,10,20,val\n"
        "zumba,bbbbbbbbbbb,3,13,val\n"
        "zumba,ccccccccccc,0,10,val\n"  # not downloaded: skipped with a warning
    )
    with pytest.warns(UserWarning, match="1 of 3 clips"):
        _, refs = dataset_refs(f"kinetics:{ann}", frames=4, size=16, video_root=root / "val")
    assert [(r.item, r.label) for r in refs] == [
        ("aaaaaaaaaaa_000010_000020.gif-f4-x16", 0),  # sorted class names: abseiling 0, zumba 1
        ("bbbbbbbbbbb_000003_000013.gif-f4-x16", 1),
    ]
    classes = tmp_path / "classes.txt"
    classes.write_text("zumba\nabseiling\n")
    with pytest.warns(UserWarning):
        _, refs = dataset_refs(f"kinetics:{ann}", frames=4, size=16, video_root=root / "val", classes=classes)
    assert [r.label for r in refs] == [1, 0]
    assert tuple(load_item(refs[0]).video.shape) == (4, 16, 16, 3)
    from removalx.experiments import evaluate

    with pytest.warns(UserWarning):
        res = evaluate(
            "lime3d",
            tmp_path / "k.db",
            dataset=f"kinetics:{ann}",
            video_root=str(root / "val"),
            model=model_spec,
            metrics="deletion",
            **{**FAST, "metric_set": ["deletion.steps=4"]},
        )
    assert sorted(res.scores["label"]) == [0, 1]


def test_kinetics_bad_csv(tmp_path):
    ann = tmp_path / "a.csv"
    ann.write_text("label,youtube_id,time_start,time_end,split\nzumba,abc,three,13,val\n")
    with pytest.raises(DatasetError, match=r"a\.csv, line 2: expected label,youtube_id"):
        dataset_refs(f"kinetics:{ann}")
    ann.write_text("name,id\n")
    with pytest.raises(DatasetError, match="line 1: expected a header"):
        dataset_refs(f"kinetics:{ann}")


# -- UCF101 and UCF101-24 boxes --------------------------------------------------------------------
@pytest.fixture
def ucf(tmp_path) -> Path:
    root = tmp_path / "ucf"
    splits = root / "ucfTrainTestlist"
    splits.mkdir(parents=True)
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Basketball\n3 YoYo\n")
    (splits / "testlist01.txt").write_text("YoYo/v_YoYo_g01_c01.avi\nBasketball/v_Basketball_g01_c01.avi\n")
    _gif(root / "videos" / "YoYo" / "v_YoYo_g01_c01.gif", 0)
    _frames(root / "videos" / "Basketball" / "v_Basketball_g01_c01", 20, 30, 40)  # rgb-images style
    return root


def test_ucf101_split_files(ucf):
    _, refs = dataset_refs(f"ucf101:{ucf / 'ucfTrainTestlist' / 'testlist01.txt'}", video_root=ucf / "videos")
    assert [(r.item, r.label) for r in refs] == [
        ("YoYo/v_YoYo_g01_c01-f16-x112", 2),  # classInd is 1-based
        ("Basketball/v_Basketball_g01_c01-f16-x112", 1),
    ]
    (ucf / "ucfTrainTestlist" / "testlist01.txt").write_text("Fencing/v_Fencing_g01_c01.avi\n")
    with pytest.raises(DatasetError, match="line 1: expected 'Class/"):
        dataset_refs(f"ucf101:{ucf / 'ucfTrainTestlist' / 'testlist01.txt'}", video_root=ucf / "videos")


def test_ucf101_24_boxes_become_pointing_evidence(ucf, tmp_path, model_spec):
    boxes = ucf / "labels"
    clip = boxes / "Basketball" / "v_Basketball_g01_c01"
    clip.mkdir(parents=True)
    (clip / "00001.txt").write_text("1 10 5 20 15\n")
    (clip / "00020.txt").write_text("1 0 0 40 30\n")  # the whole frame
    (clip / "00008.txt").write_text("1 0 0 40 30\n")  # frame 7: not one the clip samples
    spec = f"ucf101:{ucf / 'ucfTrainTestlist' / 'testlist01.txt'}"
    _, refs = dataset_refs(spec, frames=4, size=16, video_root=ucf / "videos", boxes=boxes)
    item = load_item(refs[1])
    assert item.evidence is not None and item.evidence.shape == (4, 16, 16)
    # 40x30 frames cover 16x16 at scale 16/30: 21x16, 2 columns cropped on the left. Box x 10..20,
    # y 5..15 -> x 3.33..8.67, y 2.67..8 in the crop: pixel centres j + 0.5 inside -> cols 3..8, rows 3..7.
    want = torch.zeros(16, 16, dtype=torch.bool)
    want[3:8, 3:9] = True
    assert torch.equal(item.evidence[0], want)
    assert item.evidence[3].all() and not item.evidence[1:3].any()  # frames 0, 6, 13, 19 are sampled
    assert item.evidence_frames == [0, 3]
    assert load_item(refs[0]).evidence is not None and not load_item(refs[0]).evidence.any()  # no boxes
    from removalx.experiments import evaluate

    res = evaluate(
        "lime3d",
        tmp_path / "b.db",
        dataset=spec,
        video_root=str(ucf / "videos"),
        boxes=str(boxes),
        model=model_spec,
        metrics="spatial_pointing",
        **{**FAST, "metric_set": []},
    )
    got = dict(zip(res.scores["item"], res.scores["value"]))
    assert len(got) == 2 and np.isfinite(got[refs[1].item])
    assert np.isnan(got[refs[0].item])  # a clip without boxes has no pointing game
    (clip / "00001.txt").write_text("1 10 5 4 15\n")
    with pytest.raises(DatasetError, match=r"00001\.txt, line 1: expected 'label x1 y1 x2 y2'"):
        load_item(refs[1])


# -- --only-correct-by ------------------------------------------------------------------------------
def test_only_correct_by_keeps_clips_every_model_gets_right(model_spec):
    from removalx.experiments.selection import only_correct
    from removalx.models import load_model
    from removalx.zoo.data import make_clip

    specs = ["zoo:r3d_tiny", model_spec]
    _, refs = dataset_refs("zoo:synthetic", 4, frames=8, size=32)
    models = [load_model(s) for s in specs]
    want = []
    for i, r in enumerate(refs):  # brute force: each clip rebuilt by hand, every model run on it
        clip = make_clip(i % 4, i, frames=8, size=32)
        with torch.inference_mode():
            if all(int(m(clip.video[None]).argmax(1)[0]) == i % 4 for m in models):
                want.append(r.item)
    if not want:
        with pytest.raises(DatasetError, match="No clip is classified correctly"):
            only_correct(refs, specs)
        return
    kept = only_correct(refs, specs)
    assert [r.item for r in kept] == want
    assert len(only_correct(refs, specs[:1])) >= len(kept)
