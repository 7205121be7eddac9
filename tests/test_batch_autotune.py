"""Issue 27 §2.13: the default CPU batch, and ``batch_size="auto"`` tuned per model.

Oracles: hand-made per-clip costs (a fake clock the model advances by a cost that depends on
the batch size), a brute-force argmin over the sizes tried, and the run with the chosen batch
size given explicitly, which the tuned run must equal bit for bit -- with a model whose
outputs do depend on the batch (ToyClassifier through oneDNN), so the equality is not free.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import removalx
from removalx.pipeline import batches
from removalx.pipeline.batches import (
    BatchTuner,
    clear_tuned_batch_sizes,
    default_batch_size,
    tuning_candidates,
)
from removalx.testing import ToyClassifier, tiny_video

#: Fake seconds per clip of a forward pass of each batch size: 4 is the fastest, 8 is more
#: than 1.2x slower than 4, so 16 and 32 are never tried.
COST = {1: 5e-3, 2: 4e-3, 4: 1e-3, 8: 3e-3, 16: 0.5e-3, 32: 0.5e-3}
OVERRIDES = {"segmentation.n_segments": 10, "sample_selection.n_samples": 96}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Timed(nn.Module):
    """ToyClassifier (batched) that records the batch sizes it sees and advances a fake clock."""

    def __init__(self, clock: FakeClock | None = None, cost: dict[int, float] | None = None) -> None:
        super().__init__()
        self.inner = ToyClassifier(n_classes=3, seed=1)
        self.clock, self.cost = clock, cost or COST
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = int(x.shape[0])
        self.sizes.append(b)
        if self.clock is not None:
            self.clock.now += self.cost.get(b, 1.0) * b
        return self.inner(x)


class Invariant(Timed):
    """Timed, with outputs that do not depend on the batch (each clip through the model alone)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = int(x.shape[0])
        self.sizes.append(b)
        if self.clock is not None:
            self.clock.now += self.cost.get(b, 1.0) * b
        return torch.cat([self.inner(x[i : i + 1]) for i in range(b)])


class Varying(Invariant):
    """Invariant, plus an offset that depends on the batch size (as some CPU kernels round)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + 1e-6 * x.shape[0]


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_tuned_batch_sizes()
    yield
    clear_tuned_batch_sizes()


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    c = FakeClock()
    monkeypatch.setattr(batches, "perf_counter", c)
    return c


@pytest.fixture(scope="module")
def video() -> torch.Tensor:
    return tiny_video(frames=4, size=16, seed=3)


def _explain(model, video, batch_size="auto", **kw):
    ex = removalx.Explainer.from_recipe("lime3d", seed=0, overrides=OVERRIDES, progress=False, **kw)
    return ex.explain(removalx.VideoClassifier(model), video, target=1, batch_size=batch_size)


def _is_with_probes(seen: list[int], calls: list[int], probes: list[int]) -> bool:
    """Whether ``seen`` is ``calls`` with ``probes`` inserted once, somewhere."""
    return any(seen == calls[:i] + probes + calls[i:] for i in range(len(calls) + 1))


def test_candidates_are_powers_of_two_then_the_cap():
    assert tuning_candidates(32) == [1, 2, 4, 8, 16, 32]
    assert tuning_candidates(10) == [1, 2, 4, 8, 10]
    assert tuning_candidates(1) == [1]


def test_tuner_keeps_the_fastest_size_per_clip_and_stops_past_it():
    tuner = BatchTuner(None, torch.device("cpu"), (4, 16, 16, 3), 32)
    tried = []
    while tuner.size is None:
        k = tuner.current
        tried.append(k)
        tuner.record(k, COST[k] * k)
    assert tuner.size == min(set(tried), key=lambda s: COST[s]) == 4  # brute force over the sizes tried
    assert tried == [1, 1, 2, 2, 4, 4, 8, 8]  # 8 is > 1.2x slower than 4: 16 and 32 not tried
    tuner.record(4, 0.0)  # after the decision, nothing changes
    assert tuner.size == 4 and tuner.meta()["ms_per_clip"] == {"1": 5.0, "2": 4.0, "4": 1.0, "8": 3.0}


def test_tuned_run_equals_the_explicit_batch_run_bit_for_bit(video, clock, monkeypatch):
    monkeypatch.setattr(batches, "TUNING_BUDGET", 1e9)  # the whole ladder
    model = Timed(clock)
    tuned = _explain(model, video)
    assert tuned.meta["batch_size"] == 4 and tuned.meta["batch_tuning"]["batch_size"] == 4
    fixed_model = Timed()
    fixed = _explain(fixed_model, video, batch_size=4)
    assert "batch_tuning" not in fixed.meta
    # the tuned model saw the fixed run's calls with the probes inserted once, before the samples
    assert _is_with_probes(model.sizes, fixed_model.sizes, [1, 1, 2, 2, 4, 4, 8, 8])
    assert max(fixed_model.sizes) == 4
    assert tuned.values.abs().max() > 0
    assert torch.equal(tuned.values, fixed.values)
    assert torch.equal(tuned.feature_values, fixed.feature_values)
    assert tuned.meta["n_forward"] == fixed.meta["n_forward"]  # probes are not counted
    assert tuned.meta["timings"]["batch_tuning"] > 0
    # the control: batch 1 gives different bits with this model, so the equality above is not free
    other = _explain(Timed(), video, batch_size=1)
    assert not torch.equal(other.values, fixed.values)


def test_explicit_batch_size_disables_tuning(video, clock):
    model = Timed(clock)
    attr = _explain(model, video, batch_size=7)
    assert "batch_tuning" not in attr.meta and attr.meta["batch_size"] == 7
    assert max(model.sizes) == 7 and "batch_tuning" not in attr.meta["timings"]
    model = Timed(clock)
    ex = removalx.Explainer.from_recipe("lime3d", seed=0, overrides=OVERRIDES, progress=False, batch_size=5)
    attr = ex.explain(removalx.VideoClassifier(model), video, target=1)
    assert "batch_tuning" not in attr.meta and max(model.sizes) == 5
    assert "batch_tuning" in _explain(Timed(clock), video).meta  # the control: tuned


def test_choice_is_cached_per_model_device_and_clip_shape(video, clock):
    model = Timed(clock)
    first = _explain(model, video)
    assert not first.meta["batch_tuning"]["cached"]
    model.sizes.clear()
    second = _explain(model, video)
    assert second.meta["batch_tuning"] == {
        "batch_size": first.meta["batch_size"],
        "cached": True,
        "batch_invariant": None,
        "ms_per_clip": {},
    }
    fixed_model = Timed()
    _explain(fixed_model, video, batch_size=first.meta["batch_size"])
    assert model.sizes == fixed_model.sizes  # no probes the second time
    assert torch.equal(first.values, second.values)
    assert not _explain(model, tiny_video(frames=4, size=12, seed=3)).meta["batch_tuning"]["cached"]
    assert not _explain(Timed(clock), video).meta["batch_tuning"]["cached"]  # another model


def test_budget_stops_the_probes_early(video, clock, monkeypatch):
    # probes may cost TUNING_BUDGET x the planned passes (64 here) at the best rate seen: with
    # 0.2, after sizes 1, 1, 2, 2 (26 ms spent) the budget is 0.2 x 64 x 4 ms = 51 ms; after the
    # first probe of 4 (30 ms spent) it is 0.2 x 64 x 1 ms = 12.8 ms: stop there
    monkeypatch.setattr(batches, "TUNING_BUDGET", 0.2)
    model = Invariant(clock)
    attr = _explain(model, video)
    assert attr.meta["batch_size"] == 4  # the fastest measured
    fixed_model = Invariant()
    _explain(fixed_model, video, batch_size=4)
    # then one batch of the reference size 8, whose output the chosen size must reproduce
    assert _is_with_probes(model.sizes, fixed_model.sizes, [1, 1, 2, 2, 4, 8])


def test_a_heavy_model_takes_the_reference_size(video, clock):
    model = Timed(clock, cost={1: 0.5})  # 0.5 s per clip: more than HEAVY_SECONDS
    attr = _explain(model, video)
    cap = min(default_batch_size(video, torch.device("cpu")), batches.FIXED_BATCH)
    assert attr.meta["batch_size"] == cap
    fixed_model = Timed()
    _explain(fixed_model, video, batch_size=cap)
    assert _is_with_probes(model.sizes, fixed_model.sizes, [1])  # one probe clip only


def test_the_fastest_size_is_kept_only_where_it_reproduces_the_reference_size(video, clock, monkeypatch):
    """A model whose outputs depend on the batch size gets the reference size whatever the
    timings (its attribution must not depend on the machine's load); a batch-invariant one the
    fastest size (4 under COST)."""
    monkeypatch.setattr(batches, "TUNING_BUDGET", 10.0)  # time every size up to the optimum
    ref = min(default_batch_size(video, torch.device("cpu")), batches.FIXED_BATCH)
    invariant = _explain(Invariant(clock), video)
    assert invariant.meta["batch_size"] == 4 and invariant.meta["batch_tuning"]["batch_invariant"] is True
    clear_tuned_batch_sizes()
    varying = _explain(Varying(clock), video)
    assert varying.meta["batch_size"] == ref and varying.meta["batch_tuning"]["batch_invariant"] is False
    assert torch.equal(varying.values, _explain(Varying(), video, batch_size=ref).values)


def test_the_default_cpu_batch_is_fixed_and_never_timed(video, clock):
    """No batch size: ``min(memory bound, FIXED_BATCH)`` on the CPU, with no probes (the same
    bits in every process, whatever the load)."""
    model = Timed(clock)
    attr = _explain(model, video, batch_size=None)
    ref = min(default_batch_size(video, torch.device("cpu")), batches.FIXED_BATCH)
    assert attr.meta["batch_size"] == ref and "batch_tuning" not in attr.meta
    assert clock.now == sum(COST.get(b, 1.0) * b for b in model.sizes)  # only the run's passes
    fixed = Timed()
    _explain(fixed, video, batch_size=ref)
    assert model.sizes == fixed.sizes
