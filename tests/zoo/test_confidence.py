"""The label-smoothed zoo models are accurate but not saturated; the saturated ones stay saturated."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import removalx.zoo.train as zoo_train
from removalx.errors import ConfigError
from removalx.models import load_model
from removalx.zoo.confidence import summarize
from removalx.zoo.data import CLASS_NAMES, make_clip
from removalx.zoo.models import ZOO, list_zoo, load_zoo_model
from removalx.zoo.train import DEFAULTS, smoothing_optimum, train

LS_MODELS = ("r3d_tiny_ls", "cnn_gru_ls", "timesformer_tiny_ls")
SATURATED = ("r3d_tiny", "cnn_gru", "timesformer_tiny")
# Never used for training (seed * 1e6 + [0, n)), validation (+ 500_000), test_models.py
# (90_000_000 + ...) or the default of ``python -m removalx.zoo.confidence`` (91_000_000 + ...).
FRESH_SEED = 92_000_000
N_FRESH = 100


@pytest.fixture(scope="module")
def fresh_clips() -> tuple[torch.Tensor, torch.Tensor]:
    """100 fresh 16x112x112 clips ``[N, T, H, W, 3]``, clip ``i`` of class ``i % 4``."""
    torch.set_num_threads(1)
    labels = torch.arange(N_FRESH) % len(CLASS_NAMES)
    videos = torch.stack([make_clip(int(labels[i]), FRESH_SEED + i).video for i in range(N_FRESH)])
    return videos, labels


@torch.no_grad()
def _top1_and_correct(spec: str, videos: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, float]:
    """Top-1 softmax probability per clip and accuracy, through ``removalx.models.load_model``."""
    model = load_model(spec)
    probs = torch.cat([model(videos[i : i + 25]).softmax(-1) for i in range(0, len(videos), 25)])
    return probs.max(-1).values.numpy(), float((probs.argmax(-1) == labels).float().mean())


@pytest.mark.parametrize("name", LS_MODELS)
def test_label_smoothed_model_is_accurate_but_not_saturated(name: str, fresh_clips) -> None:
    videos, labels = fresh_clips
    top1, acc = _top1_and_correct(f"zoo:{name}", videos, labels)
    q25, median, q75 = np.quantile(top1, [0.25, 0.5, 0.75])
    print(f"\n{name}: accuracy {acc:.3f}, top-1 p quartiles {q25:.3f} / {median:.3f} / {q75:.3f}")
    assert acc >= 0.9
    assert 0.5 <= median <= 0.9
    assert top1.max() < 0.95  # no clip saturates


@pytest.mark.parametrize("name", SATURATED)
def test_plain_models_stay_saturated(name: str, fresh_clips) -> None:
    videos, labels = fresh_clips
    top1, acc = _top1_and_correct(f"zoo:{name}", videos, labels)
    assert acc >= 0.95
    assert np.median(top1) > 0.99


@pytest.mark.parametrize("name", LS_MODELS)
def test_metadata_records_training_and_confidence(name: str) -> None:
    _, meta = load_zoo_model(name)
    assert meta["label_smoothing"] == 0.3 == DEFAULTS[name]["label_smoothing"]
    assert meta["label_smoothing_optimum_p"] == pytest.approx(0.775)  # 1 - 0.3 + 0.3 / 4
    assert meta["epochs"] == DEFAULTS[name]["epochs"] and meta["n_train"] == 2000
    conf = meta["val_confidence"]
    assert conf["n"] == meta["n_val"] == 400
    assert conf["accuracy"] == meta["val_accuracy"] >= 0.9
    top1 = conf["top1_prob"]
    assert top1["q05"] <= top1["q25"] <= top1["median"] <= top1["q75"] <= top1["q95"]
    assert 0.5 <= top1["median"] <= 0.9
    assert meta["train_seconds"] > 0


def test_ls_models_share_their_architecture_with_the_plain_ones() -> None:
    for name in LS_MODELS:
        assert ZOO[name][0] is ZOO[name.removesuffix("_ls")][0]


def test_list_zoo_shows_the_new_models_with_their_median() -> None:
    rows = {row["name"]: row for row in list_zoo()}
    for name in LS_MODELS:
        assert rows[name]["trained"] and rows[name]["label_smoothing"] == 0.3
        assert 0.5 <= rows[name]["top1_prob_median"] <= 0.9


@pytest.mark.parametrize(("epsilon", "expected"), [(0.0, 1.0), (0.1, 0.925), (0.3, 0.775), (0.6, 0.55)])
def test_smoothing_optimum_is_the_minimum_of_the_smoothed_loss(epsilon: float, expected: float) -> None:
    # Hand values of 1 - eps + eps / 4; the numeric minimiser of torch's smoothed cross-entropy agrees.
    assert smoothing_optimum(epsilon, 4) == pytest.approx(expected)
    if epsilon == 0.0:
        return  # the minimum is at infinite logits
    logits = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([logits], lr=1.0, max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits, torch.tensor([2]), label_smoothing=epsilon)
        loss.backward()
        return loss

    opt.step(closure)
    p = logits.detach().softmax(-1)[0]
    assert float(p[2]) == pytest.approx(expected, abs=1e-6)
    assert p[[0, 1, 3]].numpy() == pytest.approx(epsilon / 4, abs=1e-6)


def test_summarize_hand_case() -> None:
    probs = torch.tensor(
        [
            [0.9, 0.05, 0.03, 0.02],  # top-1 0.9, class 0
            [0.2, 0.6, 0.1, 0.1],  # 0.6, class 1
            [0.1, 0.1, 0.8, 0.0],  # 0.8, class 2
            [0.7, 0.1, 0.1, 0.1],  # 0.7, class 0
            [0.25, 0.25, 0.0, 0.5],  # 0.5, class 3
        ]
    )
    labels = torch.tensor([0, 1, 2, 3, 3])  # clip 3 is wrong
    out = summarize(probs, labels)
    assert out["n"] == 5 and out["accuracy"] == 0.8
    # sorted top-1: 0.5 0.6 0.7 0.8 0.9; numpy's linear quantiles at 5 / 25 / 50 / 75 / 95 %
    assert out["top1_prob"] == pytest.approx(
        {"q05": 0.52, "q25": 0.6, "median": 0.7, "q75": 0.8, "q95": 0.88, "mean": 0.7}
    )
    assert out["true_prob_median"] == pytest.approx(0.6)  # true-class p: 0.9 0.6 0.8 0.1 0.5


def test_train_passes_label_smoothing_and_records_confidence(tmp_path, monkeypatch) -> None:
    seen: list[float] = []
    real = F.cross_entropy

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs.get("label_smoothing", 0.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(zoo_train.F, "cross_entropy", spy)
    meta = train("r3d_tiny_ls", n_train=4, n_val=4, epochs=1, batch_size=2, out_dir=tmp_path, progress=False)
    assert seen == [0.3, 0.3]  # two batches of two clips, both with the model's smoothing
    saved = json.loads((tmp_path / "r3d_tiny_ls.json").read_text())
    assert saved == json.loads(json.dumps(meta))
    assert saved["label_smoothing"] == 0.3 and saved["val_confidence"]["n"] == 4
    assert saved["val_confidence"]["accuracy"] == saved["val_accuracy"]
    model, _ = load_zoo_model("r3d_tiny_ls", weights_dir=tmp_path)
    assert model(torch.rand(1, 3, 16, 112, 112)).shape == (1, 4)
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no temporary file left


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_train_refuses_label_smoothing_outside_0_1(bad: float, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"label_smoothing must be in \[0, 1\)"):
        train("r3d_tiny_ls", n_train=4, n_val=4, label_smoothing=bad, out_dir=tmp_path, progress=False)
    assert not list(tmp_path.iterdir())


def test_compare_defaults_to_the_label_smoothed_3d_cnn(capsys) -> None:
    import argparse

    from removalx.cli.experiments import add_subcommands

    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["compare", "--recipes", "lime3d", "--db", "x.db"]).model == "zoo:r3d_tiny_ls"
    assert parser.parse_args(["evaluate", "-r", "lime3d", "--db", "x.db"]).model == "zoo:r3d_tiny"
    assert (
        parser.parse_args(["ablate", "-r", "lime3d", "--vary", "a=1,2", "--db", "x.db"]).model
        == "zoo:r3d_tiny"
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["compare", "--help"])
    assert "default zoo:r3d_tiny_ls" in " ".join(capsys.readouterr().out.split())
