"""Incremental inference equals full forward passes (docs/incremental.md).

Oracles: the model's own full forward pass on the same perturbed batch (every architecture,
boxes at the borders, odd strides, overlapping windows, pooling, dilation, residual
additions), brute force for the box arithmetic, and the pipeline / curves run with
incremental inference off.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import removalx
from removalx.incremental import IncrementalModel, TraceUnsupported, build, session
from removalx.incremental.boxes import changed_boxes, window_output_box
from removalx.incremental.session import plan_reference
from removalx.metrics.perturbation import perturbation_curve
from removalx.testing import tiny_video
from removalx.zoo.models import build_model

SIZE = (8, 32, 32)


@pytest.fixture(autouse=True)
def _any_model_size(monkeypatch):
    """The tests use small models: let incremental inference run on them (see MIN_MACS)."""
    monkeypatch.setattr(session, "MIN_MACS", 0)


def _close(got: torch.Tensor, want: torch.Tensor) -> None:
    """Equal to 1e-4 relative to the largest output."""
    scale = float(want.abs().max())
    assert float((got - want).abs().max()) <= 1e-4 * scale + 1e-7


def _perturbed(ref: torch.Tensor) -> torch.Tensor:
    """Boxes at both corners, in the middle with odd sizes, one voxel, the whole map, none."""
    g = torch.Generator().manual_seed(0)
    x = ref.expand(7, *ref.shape[1:]).clone()
    t, h, w = ref.shape[2:]
    boxes = [
        (slice(0, 2), slice(0, 5), slice(0, 5)),
        (slice(t - 3, t), slice(h - 7, h), slice(w - 3, w)),
        (slice(3, 6), slice(11, 18), slice(9, 22)),
        (slice(4, 5), slice(h - 1, h), slice(0, 1)),
        (slice(0, t), slice(0, h), slice(0, w)),
        (slice(1, 3), slice(5, 9), slice(w - 9, w)),
    ]
    for i, box in enumerate(boxes):
        v = x[i][(slice(None), *box)]
        v.copy_(torch.rand(v.shape, generator=g))
    return x  # sample 6 is the reference itself


def _torchvision(name: str) -> nn.Module:
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return getattr(tv.models.video, name)(num_classes=7).eval()


def _randomize_bn(model: nn.Module) -> nn.Module:
    """Non-trivial batch-norm statistics (random init has mean 0 and var 1)."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


ARCHS = ["r3d_tiny", "r3d_18", "mc3_18", "r2plus1d_18"]


@pytest.mark.parametrize("arch", ARCHS)
def test_equals_full_forward_on_every_supported_architecture(arch):
    model = build_model("r3d_tiny", input_size=SIZE) if arch == "r3d_tiny" else _torchvision(arch)
    model = _randomize_bn(model.eval())
    ref = torch.rand(1, 3, *SIZE, generator=torch.Generator().manual_seed(2))
    engine = build(model, ref)
    x = _perturbed(ref)
    with torch.inference_mode():
        got, want = engine(x), model(x)
    _close(got, want)
    assert 0.0 < engine.saved_fraction < 1.0
    assert set(engine._kinds) >= {"window", "unary", "binary"}  # convs, BN/ReLU, residuals replayed


class _Odd(nn.Module):
    """Odd strides, overlapping windows, dilation, pooling (max and average), a residual sum."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv3d(3, 4, (3, 5, 5), stride=(1, 3, 3), padding=(1, 2, 2))
        self.bn = nn.BatchNorm3d(4)
        self.pool = nn.MaxPool3d(3, stride=2, padding=1)
        self.c2 = nn.Conv3d(4, 4, 3, padding=2, dilation=2)
        self.c3 = nn.Conv3d(4, 6, (2, 3, 3), stride=(1, 1, 2))
        self.avg = nn.AvgPool3d(2, stride=1)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(nn.functional.leaky_relu(self.bn(self.c1(x)), 0.1))
        x = torch.sigmoid(self.c2(x)) * 2.0 + x
        x = self.avg(torch.relu(self.c3(x)))
        return self.head(x.mean(dim=(2, 3, 4)))


class _Frames2d(nn.Module):
    """A 2D CNN on one frame (Conv2d, stride 2, max pooling)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 5, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(5, 4, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)


def test_odd_strides_dilation_pooling_and_2d_convolutions():
    torch.manual_seed(3)
    model = _randomize_bn(_Odd().eval())
    ref = torch.rand(1, 3, *SIZE)
    engine = build(model, ref)
    with torch.inference_mode():
        _close(engine(_perturbed(ref)), model(_perturbed(ref)))
    assert engine._kinds.count("window") == 5  # 3 convs and 2 pools replayed on boxes
    frames = _Frames2d().eval()
    ref2 = torch.rand(1, 3, 31, 29)
    engine2 = build(frames, ref2)
    x = ref2.expand(3, -1, -1, -1).clone()
    x[0, :, :4, :3] = 0.0
    x[1, :, 20:31, 27:29] = 1.0
    with torch.inference_mode():
        _close(engine2(x), frames(x))
    assert engine2._kinds.count("window") == 3


def test_previous_step_reference_follows_the_batches():
    model = build_model("r3d_tiny", input_size=SIZE).eval()
    ref = torch.rand(1, 3, *SIZE)
    engine = IncrementalModel(model, ref)
    engine.follow = True
    x = ref.clone()
    for step in range(3):  # three batches of two growing deletions
        batch = []
        for k in range(2):
            x = x.clone()
            x[:, :, step * 2 + k, : 4 + 4 * step, :] = 0.0
            batch.append(x)
        b = torch.cat(batch)
        with torch.inference_mode():
            _close(engine(b), model(b))
    assert torch.equal(engine.graph.values[0], x)  # the last step is the next reference


def test_window_output_box_matches_brute_force():
    g = torch.Generator().manual_seed(4)
    for k, s, p, d in [(3, 1, 1, 1), (5, 3, 2, 1), (3, 2, 2, 2), (2, 2, 0, 1), (7, 2, 3, 1)]:
        conv = nn.Conv1d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
        nn.init.constant_(conv.weight, 1.0)
        n = 23
        out_n = conv(torch.zeros(1, 1, n)).shape[-1]
        for lo in range(0, n, 3):
            for hi in range(lo + 1, n + 1, 4):
                x = torch.zeros(1, 1, n)
                x[..., lo:hi] = torch.rand(hi - lo, generator=g) + 1.0
                hit = (conv(x)[0, 0] != 0).nonzero().flatten()
                (a,), (b,) = window_output_box(((lo,), (hi,)), (out_n,), (k,), (s,), (p,), (d,))
                if hit.numel() == 0:  # dilated strided windows may skip the change entirely
                    continue
                assert int(hit.min()) >= a and int(hit.max()) < b  # a superset of the change
                if d == 1:  # dense windows: exactly the change
                    assert (a, b) == (int(hit.min()), int(hit.max()) + 1)


def test_changed_boxes_match_nonzero():
    ref = torch.rand(1, 2, 5, 6, 7)
    x = ref.expand(3, -1, -1, -1, -1).clone()
    x[0, 1, 1:3, 0:1, 4:7] += 1.0
    x[1, 0, 4, 5, 0] = -1.0
    boxes = changed_boxes(x, ref)
    for i in range(2):
        nz = (x[i] != ref[0]).any(0).nonzero()
        assert boxes[i] == (tuple(nz.min(0).values.tolist()), tuple((nz.max(0).values + 1).tolist()))
    assert boxes[2] == ((0, 0, 0), (0, 0, 0))


class _Branches(nn.Module):
    """Data-dependent control flow: cannot be replayed from one reference."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if y.mean() > 0:
            y = -y
        return self.head(y.mean(dim=(2, 3, 4)))


def test_unsupported_model_falls_back_with_a_notice(capsys):
    model = _Branches().eval()
    with pytest.raises(TraceUnsupported):
        IncrementalModel(model, torch.rand(1, 3, *SIZE))
    clf = removalx.VideoClassifier(model)
    video = tiny_video(frames=SIZE[0], size=SIZE[1], seed=1)
    over = {"segmentation.window": [4, 16, 16], "segmentation.stride": [4, 16, 16]}
    a = removalx.Explainer.from_recipe("occlusion3d", overrides=over, progress=False).explain(clf, video, 0)
    assert not a.meta["incremental"]["used"] and "not supported" in a.meta["incremental"]["reason"]
    notice = [line for line in capsys.readouterr().err.splitlines() if "incremental" in line]
    assert len(notice) == 1 and "full forward passes" in notice[0]
    b = removalx.Explainer.from_recipe("occlusion3d", overrides=over, progress=False, incremental=False)
    assert torch.equal(a.values, b.explain(clf, video, 0).values)


def test_attention_model_is_refused_and_explained_by_full_passes(capsys):
    model = build_model("timesformer_tiny", input_size=SIZE).eval()
    # refused by the allow-list: its patch embedding adds a position table and reshapes tokens
    with pytest.raises(TraceUnsupported, match="before the global pooling"):
        build(model, torch.rand(1, 3, *SIZE))
    clf = removalx.VideoClassifier(model)
    video = tiny_video(frames=SIZE[0], size=SIZE[1], seed=1)
    over = {"segmentation.n_segments": 8}
    a = removalx.Explainer.from_recipe("loco_lv", overrides=over, progress=False).explain(clf, video, 0)
    assert not a.meta["incremental"]["used"]
    assert "incremental inference is off" in capsys.readouterr().err
    b = removalx.Explainer.from_recipe("loco_lv", overrides=over, progress=False, incremental=False)
    assert torch.equal(a.values, b.explain(clf, video, 0).values)


@pytest.fixture(scope="module")
def zoo_clf():
    return removalx.VideoClassifier(_randomize_bn(build_model("r3d_tiny", input_size=SIZE).eval()))


@pytest.mark.parametrize(
    "recipe, over, reference",
    [
        ("occlusion3d", {"segmentation.window": [4, 12, 12], "segmentation.stride": [4, 10, 10]}, "clean"),
        ("loco_lv", {"segmentation.n_segments": 12}, "clean"),
        ("univariate_lv", {"segmentation.n_segments": 12}, "empty"),
    ],
)
def test_pipeline_equals_full_forward_passes(zoo_clf, recipe, over, reference):
    video = tiny_video(frames=SIZE[0], size=SIZE[1], seed=2)
    inc = removalx.Explainer.from_recipe(recipe, overrides=over, progress=False).explain(zoo_clf, video, 1)
    off = dict(over, **{"behavior.incremental": False})
    full = removalx.Explainer.from_recipe(recipe, overrides=off, progress=False).explain(zoo_clf, video, 1)
    meta = inc.meta["incremental"]
    assert meta["used"] and meta["reference"] == reference and 0.0 < meta["macs_saved_fraction"] < 1.0
    assert full.meta["incremental"]["used"] is False and full.meta["incremental"]["reason"] == "turned off"
    assert inc.meta["n_forward"] == full.meta["n_forward"]
    _close(inc.values, full.values)
    _close(inc.feature_values, full.feature_values)


def test_sampled_recipes_are_not_local():
    z = (torch.rand(8, 50, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    assert plan_reference(z) is None
    assert plan_reference(1 - torch.eye(50)[:8]) == "clean"
    assert plan_reference(torch.eye(50)[:8]) == "empty"


@pytest.mark.parametrize("mode", ["deletion", "insertion"])
def test_curve_equals_full_forward_passes(zoo_clf, mode):
    video = tiny_video(frames=SIZE[0], size=SIZE[1], seed=2)
    imp = torch.rand(SIZE, generator=torch.Generator().manual_seed(5))
    kw = dict(mode=mode, unit="patch", patch=7, steps=10, batch_size=4)
    a = perturbation_curve(zoo_clf, video, imp, 1, **kw)
    b = perturbation_curve(zoo_clf, video, imp, 1, incremental=False, **kw)
    _close(a.y, b.y)
    assert a.meta == b.meta


def test_small_models_run_full_forward_passes_by_default(zoo_clf, monkeypatch):
    """Below MIN_MACS the engine is not used, the values are those of full passes, and meta says why."""
    monkeypatch.setattr(session, "MIN_MACS", 10**9)
    video = tiny_video(frames=SIZE[0], size=SIZE[1], seed=3)
    over = {"segmentation.window": [4, 12, 12], "segmentation.stride": [4, 10, 10]}
    a = removalx.Explainer.from_recipe("occlusion3d", overrides=over, progress=False).explain(
        zoo_clf, video, 1
    )
    meta = a.meta["incremental"]
    assert meta["used"] is False and meta["macs_computed"] == 0
    assert meta["reason"].startswith("model too small to gain: ") and "below 1 G" in meta["reason"]
