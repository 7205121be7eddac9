"""Issue 27 §3.8: more steps than units scores each distinct clip once, with the same curve.

Oracle: the implementation before the change (every step scored), kept behind
``removalx.metrics.perturbation._DISTINCT_STEPS = False``, and hand-counted clips.
"""

from __future__ import annotations

import pytest
import torch

from removalx.core.classifier import VideoClassifier
from removalx.metrics import auc, perturbation_curve
from removalx.metrics import perturbation as pert
from removalx.testing import LinearVideoModel, tiny_video

T, S = 2, 8


class Counting(torch.nn.Module):
    """A linear model that records how many clips each forward pass received."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(int(x.shape[0]))
        return self.inner(x)


def model(kind: str = "linear") -> VideoClassifier:
    """A linear model, or a small 3D CNN (incremental inference applies to it)."""
    torch.manual_seed(3)
    if kind == "conv":
        net = torch.nn.Sequential(
            torch.nn.Conv3d(3, 4, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool3d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(4, 3),
        )
        return VideoClassifier(Counting(net), layout="BCTHW")
    w = torch.randn(3, T, S, S, 3)
    return VideoClassifier(Counting(LinearVideoModel(w, torch.zeros(3))), layout="BTHWC")


def importance() -> torch.Tensor:
    # 5 distinct values (ties included) -> the level unit has 5 units
    base = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    return base[torch.arange(T * S * S) % 5].reshape(T, S, S)


def curve(distinct: bool, monkeypatch: pytest.MonkeyPatch, kind: str = "linear", **kw):
    monkeypatch.setattr(pert, "_DISTINCT_STEPS", distinct)
    m = model(kind)
    c = perturbation_curve(m, tiny_video(T, S), importance(), 1, unit="level", levels=0, **kw)
    counting = m.module
    assert isinstance(counting, Counting)
    return c, counting.batches


@pytest.mark.parametrize("mode", ["deletion", "insertion"])
@pytest.mark.parametrize("steps", [7, 37, 200])
@pytest.mark.parametrize("incremental", [True, False])
@pytest.mark.parametrize("batch_size", [1, 4, 16])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_same_curve_and_auc_as_every_step_scored(monkeypatch, mode, steps, incremental, batch_size, kind):
    kw = {"mode": mode, "steps": steps, "incremental": incremental, "batch_size": batch_size, "fill": "gray"}
    kw["kind"] = kind
    before, _ = curve(False, monkeypatch, **kw)
    after, _ = curve(True, monkeypatch, **kw)
    assert before.meta["n_units"] == after.meta["n_units"] == 5
    assert after.x.shape == before.x.shape == (steps + 1,)
    assert torch.equal(after.x, before.x)
    assert torch.equal(after.y, before.y)
    for formula in ("trapezoid", "step_mean"):
        assert auc(after.x, after.y, formula) == auc(before.x, before.y, formula)
    # forward passes: every step + the clean clip before; after, at most the 6 distinct clips
    # (0..5 units perturbed), the padding of the last full batch and the last short batch
    assert before.meta["n_forward"] == steps + 2
    assert after.meta["n_forward"] <= min(steps + 2, 6 + 2 * (batch_size - 1) + 1)
    if steps == 200:  # the distinct clips were scored once each
        assert after.meta["n_forward"] < before.meta["n_forward"]


def test_clips_scored_do_not_grow_with_steps_beyond_the_units(monkeypatch):
    kw = {"batch_size": 4, "incremental": False}
    runs = {s: curve(True, monkeypatch, steps=s, **kw) for s in (5, 1000, 100_000)}
    # L = 5: 6 steps, no step repeats: batches of 4 and 2 as before, then the clean clip
    assert runs[5][1] == [4, 2, 1] and runs[5][0].meta["n_forward"] == 7
    for s in (1000, 100_000):
        c, batches = runs[s]
        # L + 1 = 4q + 1 steps: the full batches' steps perturb 0..4 units (5 distinct clips,
        # padded to 8 = two batches of 4), the last batch is the last step (5 units), then the
        # clean clip; the same for L = 1000 and L = 100000
        assert batches == [4, 4, 1, 1]
        assert c.meta["n_forward"] == 10
    c, _ = runs[100_000]
    assert c.y.shape == (100_001,) and c.x[0] == 0 and c.x[-1] == 1
    # step l perturbs floor(l * 5 / L) units: the repeated scores follow that count
    k = torch.arange(100_001) * 5 // 100_000
    distinct = runs[5][0].y
    assert torch.equal(c.y, distinct[k])
