"""The two CNN-LSTM models: ``zoo:cnn_lstm_ls`` (trained, not saturated) and ``cnn_lstm:vgg16``.

Every explainer family the STEP papers run on their VGG16-LSTM runs on both: EB-R, Grad-CAM,
STEP / EP-3D (few iterations) and a removal recipe (few samples).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import removalx
from removalx.core.registry import get_registry
from removalx.errors import ModelError
from removalx.zoo.data import make_dataset
from removalx.zoo.models import CNNLSTM, load_zoo_model
from removalx.zoo.recurrent import ReLULSTM
from removalx.zoo.train import native_clips


@pytest.fixture(autouse=True)
def _two_threads():
    n = torch.get_num_threads()
    torch.set_num_threads(min(n, 2))
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def reg():
    return get_registry()


def vgg(reg, **cfg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return reg.get("model", "cnn_lstm").make({"target": "vgg16", **cfg})


@pytest.fixture(scope="module")
def small_vgg(reg):
    """The paper's architecture at random init, run on 4 frames of 64 x 64 (fast enough for CI)."""
    torch.manual_seed(0)  # torchvision's VGG initialiser draws from the global generator
    return vgg(reg, frames=4, size=64, num_classes=5)


@pytest.fixture(scope="module")
def zoo_lstm():
    return removalx.VideoClassifier(load_zoo_model("cnn_lstm_ls")[0], layout="BCTHW", name="zoo:cnn_lstm_ls")


def test_cnn_lstm_ls_is_trained_and_not_saturated():
    model, meta = load_zoo_model("cnn_lstm_ls")
    assert isinstance(model, CNNLSTM) and isinstance(model.lstm, ReLULSTM)
    assert meta["val_accuracy"] >= 0.95 and meta["label_smoothing"] == 0.3
    assert 0.7 <= meta["val_confidence"]["top1_prob"]["median"] <= 0.85
    videos, labels = make_dataset(12, seed=4242)[:2]
    with torch.inference_mode():
        p = torch.softmax(model(native_clips(videos).float() / 255.0), 1)
    assert (p.argmax(1) == labels).float().mean() >= 0.9
    assert float(p.max(1).values.median()) < 0.9  # not saturated, unlike the plain zoo models


def test_vgg16_lstm_has_the_papers_sizes_and_runs_at_112(reg):
    m = vgg(reg, frames=2, size=112)
    net = m.module
    sizes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert sizes["features.28.weight"] == (512, 512, 3, 3)  # conv5_3
    assert sizes["classifier.0.weight"] == (4096, 25088)  # fc6
    assert sizes["classifier.3.weight"] == (4096, 4096)  # fc7
    assert sizes["lstm.weight_ih_l0"] == (4 * 256, 4096)  # 256 hidden units on fc7
    assert sizes["fc.weight"] == (101, 256)  # UCF101
    assert sum(isinstance(x, torch.nn.Conv2d) for x in net.features) == 13
    with torch.inference_mode():
        out = m(torch.rand(1, 3, 40, 40, 3))  # [B, T, H, W, C], resized to 2 x 112 x 112 by the wrapper
    assert out.shape == (1, 101) and torch.isfinite(out).all()


def test_vgg16_lstm_random_weights_warn_and_a_local_vgg_file_loads(reg, tmp_path: Path):
    with pytest.warns(UserWarning, match="random weights"):
        reg.get("model", "cnn_lstm").make({"frames": 2, "size": 32, "num_classes": 3})
    from torchvision.models import vgg16

    state = vgg16(weights=None).state_dict()
    state["features.0.weight"].fill_(0.125)
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    m = vgg(reg, weights=str(path), frames=2, size=32, num_classes=3)
    assert torch.equal(m.module.features[0].weight, state["features.0.weight"])
    assert torch.equal(m.module.classifier[3].bias, state["classifier.3.bias"])
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(ModelError, match="do not fit VGG16"):
        vgg(reg, weights=str(path))
    with pytest.raises(ModelError, match="does not exist"):
        vgg(reg, weights=str(tmp_path / "missing.pth"))


def test_mean_prob_readout_averages_the_step_probabilities(small_vgg):
    net = small_vgg.module
    x = torch.rand(1, 3, 4, 64, 64)
    with torch.inference_mode():
        net.readout = "last"
        last = net(x)
        net.readout = "mean_prob"
        mean = net(x)
    net.readout = "last"
    assert torch.allclose(torch.exp(mean).sum(1), torch.ones(1), atol=1e-5)
    assert last.shape == mean.shape == (1, 5)


def _explain(reg, model, video, recipe: str, **over):
    ex = removalx.Explainer.from_recipe(recipe, seed=0, overrides=over, registry=reg, progress=False)
    return ex.explain(model, video, target=1)


CASES = [
    ("eb_r", {}),
    ("grad_cam", {}),
    ("step", {"explainer.iterations": 2}),
    ("ep3d", {"explainer.iterations": 2}),
    ("rise3d", {"sample_selection.n_samples": 4, "segmentation.cells": [2, 2, 2]}),
]


@pytest.mark.parametrize(("recipe", "over"), CASES, ids=[c[0] for c in CASES])
def test_explainers_run_on_the_zoo_lstm(reg, zoo_lstm, recipe, over):
    video = torch.rand(8, 32, 32, 3, generator=torch.Generator().manual_seed(0))
    a = _explain(reg, zoo_lstm, video, recipe, **over)
    assert a.values.shape == (8, 32, 32) and torch.isfinite(a.values).all()
    if recipe == "eb_r":
        assert a.meta["layers_met"]["lstm"] == "ReLULSTM" and a.meta["layer"] == "features"
        assert float(a.values.sum()) > 0


@pytest.mark.parametrize(("recipe", "over"), CASES, ids=[c[0] for c in CASES])
def test_explainers_run_on_vgg16_lstm(reg, small_vgg, recipe, over):
    video = torch.rand(4, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    a = _explain(reg, small_vgg, video, recipe, **over)
    assert a.values.shape == (4, 64, 64) and torch.isfinite(a.values).all()
    if recipe == "eb_r":
        assert a.meta["layers_met"]["lstm"] == "ReLULSTM"
