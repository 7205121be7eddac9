"""Tests of the model adapters ``torchvision`` and ``python`` (plugins of the ``model`` stage)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from removalx.core.classifier import VideoClassifier
from removalx.core.registry import Registry
from removalx.errors import ModelError


def _import_plugins() -> tuple[object, object]:
    """Import ``removalx_plugins.models.*``, from the source tree when the package is not installed."""
    if importlib.util.find_spec("removalx_plugins") is None:
        root = Path(__file__).resolve().parents[2] / "removalx_plugins"
        spec = importlib.util.spec_from_file_location(
            "removalx_plugins", root / "__init__.py", submodule_search_locations=[str(root)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["removalx_plugins"] = module
        spec.loader.exec_module(module)
    tv = importlib.import_module("removalx_plugins.models.torchvision_models")
    py = importlib.import_module("removalx_plugins.models.python_module")
    return tv, py


torchvision_models, python_module = _import_plugins()

#: Forward times measured by test_torchvision_forward, printed at the end (pytest -s).
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def reg() -> Registry:
    r = Registry()
    r.register_module(torchvision_models)
    r.register_module(python_module)
    return r


def make(reg: Registry, adapter: str, config: dict) -> VideoClassifier:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return reg.make("model", adapter, config)


@pytest.fixture(scope="module", autouse=True)
def _report_times():
    yield
    if TIMES:
        print("\nforward times (batch 1, native size, random weights):")
        for k, v in TIMES.items():
            print(f"  {k:12s} {v:6.2f} s")


# -- torchvision ---------------------------------------------------------------------------
NATIVE = {
    "r3d_18": (16, 112, 112),
    "mc3_18": (16, 112, 112),
    "r2plus1d_18": (16, 112, 112),
    "s3d": (16, 224, 224),
    "mvit_v1_b": (16, 224, 224),
    "mvit_v2_s": (16, 224, 224),
    "swin3d_t": (16, 224, 224),
}
SLOW = {"s3d", "mvit_v1_b", "mvit_v2_s", "swin3d_t"}
ARCH_PARAMS = [pytest.param(a, marks=pytest.mark.slow) if a in SLOW else a for a in NATIVE]


def test_registered(reg: Registry) -> None:
    assert {"torchvision", "python"} <= set(reg.names("model"))


@pytest.mark.parametrize("arch", ARCH_PARAMS)
def test_torchvision_forward(reg: Registry, arch: str) -> None:
    torch.manual_seed(0)
    clf = make(reg, "torchvision", {"target": arch, "weights": "none", "device": "cpu"})
    assert isinstance(clf, VideoClassifier)
    assert clf.layout == "BCTHW" and clf.input_size == NATIVE[arch]
    assert clf.class_names is not None and len(clf.class_names) == 400
    assert clf.mean is not None and clf.std is not None
    x = torch.rand(1, *NATIVE[arch], 3)
    with torch.inference_mode():
        t0 = time.perf_counter()
        logits = clf(x)
        TIMES[arch] = time.perf_counter() - t0
    assert logits.shape == (1, 400)
    assert torch.isfinite(logits).all()


def test_torchvision_resizes_any_clip(reg: Registry) -> None:
    clf = make(reg, "torchvision", {"target": "r3d_18", "weights": "none", "device": "cpu"})
    with torch.inference_mode():
        assert clf(torch.rand(1, 5, 40, 56, 3)).shape == (1, 400)
    small = make(reg, "torchvision", {"target": "r3d_18", "weights": "none", "input_size": [8, 64, 64]})
    assert small.input_size == (8, 64, 64)
    assert small.preprocess(torch.rand(1, 4, 30, 30, 3)).shape == (1, 3, 8, 64, 64)


@pytest.mark.parametrize("weights", [None, "none", "NONE"])
def test_random_weights_warn_loudly(reg: Registry, weights: str | None) -> None:
    cfg = {"target": "r3d_18"} if weights is None else {"target": "r3d_18", "weights": weights}
    with pytest.warns(UserWarning, match="random weights: explanations are of an untrained model"):
        reg.make("model", "torchvision", cfg)


def test_torchvision_weights_round_trip(reg: Registry, tmp_path: Path) -> None:
    from torchvision.models.video import r3d_18

    torch.manual_seed(1)
    src = r3d_18(weights=None).eval()
    path = tmp_path / "r3d.pt"
    torch.save(src.state_dict(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no random-weights warning with a real file
        clf = reg.make("model", "torchvision", {"target": "r3d_18", "weights": str(path), "device": "cpu"})
    x = torch.rand(1, 16, 112, 112, 3)
    with torch.inference_mode():
        ours = clf(x)
        ref = src(((x - clf.mean) / clf.std).permute(0, 4, 1, 2, 3))
    assert torch.equal(ours, ref)
    # a checkpoint dict, and DataParallel "module." keys, load too
    ckpt = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, ckpt)
    clf2 = reg.make("model", "torchvision", {"target": "r3d_18", "weights": str(ckpt), "device": "cpu"})
    with torch.inference_mode():
        assert torch.equal(clf2(x), ref)
    model_ckpt = tmp_path / "model.pth"
    torch.save({"model": src.state_dict(), "optimizer": {}}, model_ckpt)
    clf3 = reg.make("model", "torchvision", {"target": "r3d_18", "weights": str(model_ckpt)})
    with torch.inference_mode():
        assert torch.equal(clf3(x), ref)


def test_torchvision_bad_keys(reg: Registry, tmp_path: Path) -> None:
    from torchvision.models.video import mc3_18

    path = tmp_path / "mc3.pt"
    state = mc3_18(weights=None).state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["fc.bias"]
    torch.save(state, path)
    with pytest.raises(ModelError) as err:
        reg.make("model", "torchvision", {"target": "r3d_18", "weights": str(path)})
    msg = str(err.value)
    assert "mc3.pt" in msg and "missing keys" in msg and "fc.bias" in msg
    assert "unexpected keys" in msg and "extra.weight" in msg


def test_torchvision_shape_mismatch(reg: Registry, tmp_path: Path) -> None:
    from torchvision.models.video import r3d_18

    path = tmp_path / "r3d10.pt"
    torch.save(r3d_18(weights=None, num_classes=10).state_dict(), path)
    with pytest.raises(ModelError, match=r"shape mismatch.*fc\.weight"):
        reg.make("model", "torchvision", {"target": "r3d_18", "weights": str(path)})
    clf = reg.make("model", "torchvision", {"target": "r3d_18", "weights": str(path), "num_classes": 10})
    assert clf.class_names is None
    with torch.inference_mode():
        assert clf(torch.rand(1, 4, 32, 32, 3)).shape == (1, 10)


def test_torchvision_errors(reg: Registry, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="Valid: r3d_18, mc3_18") as err:
        reg.make("model", "torchvision", {"target": "resnet50", "weights": "none"})
    assert "resnet50" in str(err.value)
    with pytest.raises(ModelError, match="does not exist") as err:
        reg.make("model", "torchvision", {"target": "r3d_18", "weights": str(tmp_path / "missing.pt")})
    assert "missing.pt" in str(err.value)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="Cannot load weights file"):
        reg.make("model", "torchvision", {"target": "r3d_18", "weights": str(junk)})
    nodict = tmp_path / "list.pt"
    torch.save([1, 2, 3], nodict)
    with pytest.raises(ModelError, match="expected a state_dict"):
        reg.make("model", "torchvision", {"target": "r3d_18", "weights": str(nodict)})
    with pytest.raises(ModelError, match="native input size"):
        make(reg, "torchvision", {"target": "mvit_v2_s", "weights": "none", "input_size": [8, 224, 224]})
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            make(reg, "torchvision", {"target": "r3d_18", "weights": "none", "device": "cuda"})
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        reg.make("model", "torchvision", {"target": "r3d_18", "input_size": [112, 112]})
    with pytest.raises(ValidationError):
        reg.make("model", "torchvision", {"target": "r3d_18", "bogus": 1})


# -- python --------------------------------------------------------------------------------
MODEL_FILE = """
import torch
from torch import nn

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):  # BCTHW
        return self.fc(self.conv(x).mean(dim=(2, 3, 4)))

def make_model():
    torch.manual_seed(0)
    return Tiny()

def make_tlast():
    class Last(nn.Module):
        def forward(self, x):  # BTHWC
            assert x.shape[-1] == 3
            return x.mean(dim=(1, 2, 3))
    return Last()

def make_classifier():
    from removalx.core.classifier import VideoClassifier
    return VideoClassifier(Tiny(), layout="BCTHW", name="prebuilt")

def broken():
    raise RuntimeError("boom in factory")

def not_a_model():
    return 42

NOT_CALLABLE = 3
"""


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    p = tmp_path / "my_models.py"
    p.write_text(MODEL_FILE)
    return p


def test_python_file_factory(reg: Registry, model_file: Path) -> None:
    clf = reg.make(
        "model",
        "python",
        {
            "target": f"{model_file}:make_model",
            "mean": [0.5, 0.5, 0.5],
            "std": [0.25, 0.25, 0.25],
            "input_size": [4, 16, 16],
        },
    )
    assert isinstance(clf, VideoClassifier) and clf.layout == "BCTHW"
    assert clf.input_size == (4, 16, 16)
    with torch.inference_mode():
        out = clf(torch.rand(2, 6, 20, 24, 3))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


def test_python_layout_and_prebuilt(reg: Registry, model_file: Path) -> None:
    clf = reg.make("model", "python", {"target": f"{model_file}:make_tlast", "layout": "bthwc"})
    assert clf.layout == "BTHWC"
    with torch.inference_mode():
        assert clf(torch.rand(1, 3, 8, 8, 3)).shape == (1, 3)
    pre = reg.make("model", "python", {"target": f"{model_file}:make_classifier"})
    assert isinstance(pre, VideoClassifier) and pre.name == "prebuilt"


def test_python_module_import(reg: Registry, model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(model_file.parent))
    sys.modules.pop("my_models", None)
    clf = reg.make("model", "python", {"target": "my_models:make_model"})
    with torch.inference_mode():
        assert clf(torch.rand(1, 2, 8, 8, 3)).shape == (1, 5)
    sys.modules.pop("my_models", None)


def test_python_weights(reg: Registry, model_file: Path, tmp_path: Path) -> None:
    src = make(reg, "python", {"target": f"{model_file}:make_model"}).module
    with torch.no_grad():
        for p in src.parameters():
            p.add_(1.0)
    path = tmp_path / "tiny.pt"
    torch.save(src.state_dict(), path)
    clf = reg.make("model", "python", {"target": f"{model_file}:make_model", "weights": str(path)})
    for a, b in zip(clf.module.state_dict().values(), src.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    bad = tmp_path / "bad.pt"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ModelError, match=r"missing keys: conv\.bias"):
        reg.make("model", "python", {"target": f"{model_file}:make_model", "weights": str(bad)})


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ("{dir}/nope.py:make_model", "does not exist"),
        ("{file}:missing_factory", "has no attribute 'missing_factory'.*make_model"),
        ("{file}:broken", r"raised RuntimeError: boom in factory"),
        ("{file}:not_a_model", "returned a int"),
        ("{file}:NOT_CALLABLE", "not a callable factory"),
        ("{file}", "no ':<factory>' part"),
        ("definitely_not_a_module_xyz:make", "not found"),
    ],
)
def test_python_errors(reg: Registry, model_file: Path, target: str, match: str) -> None:
    target = target.format(dir=model_file.parent, file=model_file)
    with pytest.raises(ModelError, match=match) as err:
        reg.make("model", "python", {"target": target})
    assert "Fix:" in str(err.value)


def test_python_file_with_syntax_error(reg: Registry, tmp_path: Path) -> None:
    p = tmp_path / "bad_syntax.py"
    p.write_text("def make(:\n")
    with pytest.raises(ModelError, match=r"Importing model file .*bad_syntax\.py failed"):
        reg.make("model", "python", {"target": f"{p}:make"})


def test_python_config_validation(reg: Registry, model_file: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        reg.make("model", "python", {"target": f"{model_file}:make_model", "layout": "NCHW"})
    with pytest.raises(ValidationError):
        reg.make("model", "python", {"target": f"{model_file}:make_model", "mean": [0.1, 0.2]})
