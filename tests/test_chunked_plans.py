"""Sample plans read in chunks: same rows as one draw, bounded memory, checked contracts.

Oracles: ``torch.rand(S, F) < p`` drawn in one call (what ``bernoulli`` did before plans were
chunked), coalition matrices written out by hand, the digest formula computed with
:mod:`hashlib` directly, and a torch-function recorder that sees every tensor created.
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Iterator

import pytest
import torch
from torch.overrides import TorchFunctionMode

import removalx
from removalx.cli import EXIT_INPUT, main
from removalx.core.hookspecs import hookimpl
from removalx.core.plans import (
    SCAN_ELEMENTS,
    ChunkedPlan,
    ComputedPlan,
    LazyPlan,
    PlanChunk,
    SamplePlan,
    UnweightedLazyPlan,
)
from removalx.core.registry import Registry
from removalx.core.stages import MAX_SAMPLES, FeatureSelector, PluginConfig, SampleSelector
from removalx.errors import ConfigError, PluginError, RecipeError
from removalx.testing import LinearVideoModel, tiny_video
from removalx_plugins.selection.shapley_kernel import MAX_SAMPLED_ENTRIES


def _selector(name: str, config: dict | None = None) -> FeatureSelector:
    return removalx.get_registry().make("feature_selection", name, config or {})


def _rows(plan: ChunkedPlan, size: int) -> tuple[list[PlanChunk], torch.Tensor]:
    chunks = list(plan.chunks(size))
    return chunks, torch.cat([c.z for c in chunks])


def _oracle_digest(z: torch.Tensor, w: torch.Tensor | None) -> str:
    """The digest's definition: sha256 of the shape, the float32 rows, the float64 weights."""
    h = hashlib.sha256()
    h.update(str(tuple(z.shape)).encode())
    h.update(z.to(torch.float32).contiguous().numpy().tobytes())
    if w is not None:
        h.update(w.to(torch.float64).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# -- lazily drawn plans equal one draw -----------------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 64, 1000, 5000])
def test_bernoulli_chunks_equal_one_draw(size):
    n, f, p, seed = 1003, 37, 0.3, 11
    gen = torch.Generator().manual_seed(seed)
    torch.rand(5, generator=gen)  # a used generator: the plan starts from its current state
    state = gen.get_state()
    plan = _selector("bernoulli", {"p": p}).plan(f, n, gen)
    assert torch.equal(gen.get_state(), state)  # the caller's generator is not advanced

    oracle_gen = torch.Generator().manual_seed(seed)
    torch.rand(5, generator=oracle_gen)
    expected = (torch.rand(n, f, generator=oracle_gen) < p).float()
    assert 0.2 < expected.mean() < 0.4  # a real draw with keep probability p

    chunks, z = _rows(plan, size)
    assert torch.equal(z, expected)
    assert [c.start for c in chunks] == list(range(0, n, size))
    assert all(c.z.shape[0] == min(size, n - c.start) for c in chunks)
    assert all(c.weights is None for c in chunks)
    assert torch.equal(_rows(plan, size)[1], expected)  # a second reading gives the same rows
    assert plan.meta == {"p": p} and not plan.weighted
    assert torch.equal(plan.z, expected)  # SamplePlan-style access materialises the same rows


def test_bernoulli_digest_streams_and_equals_the_materialised_plan():
    n, f = 3000, 700  # more than one scan chunk (SCAN_ELEMENTS entries)
    assert n * f > SCAN_ELEMENTS
    plan = _selector("bernoulli").plan(f, n, torch.Generator().manual_seed(2))
    z = (torch.rand(n, f, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    assert plan.digest() == _oracle_digest(z, None) == SamplePlan(z).digest()
    other = _selector("bernoulli").plan(f, n, torch.Generator().manual_seed(3))
    assert other.digest() != plan.digest()


def _hand_coalitions(f: int) -> torch.Tensor:
    """Row r keeps feature j when bit j of r is set (written with Python integers)."""
    return torch.tensor([[float((r >> j) & 1) for j in range(f)] for r in range(2**f)])


@pytest.mark.parametrize(
    "name,config,f,n,expected",
    [
        ("leave_one_out", {}, 5, None, [[0.0 if i == j else 1.0 for j in range(5)] for i in range(5)]),
        ("only_one", {}, 4, 4, [[1.0 if i == j else 0.0 for j in range(4)] for i in range(4)]),
        ("bernoulli", {"p": 0.5}, 4, None, "coalitions"),
        ("cooccurrence", {"k": 2}, 6, None, [[0.0 if i == j else 1.0 for j in range(6)] for i in range(6)]),
    ],
)
def test_computed_plans_equal_their_definitions(name, config, f, n, expected):
    plan = _selector(name, config).plan(f, n, torch.Generator().manual_seed(0))
    assert isinstance(plan, ComputedPlan)
    expected = _hand_coalitions(f) if expected == "coalitions" else torch.tensor(expected)
    for size in (1, 3, 100):
        assert torch.equal(_rows(plan, size)[1], expected)
    idx = torch.tensor([2, 0, 2, expected.shape[0] - 1])
    assert torch.equal(plan.rows(idx)[0], expected[idx])
    assert plan.digest() == _oracle_digest(expected, None)


def test_cooccurrence_rows_remove_each_tube_with_its_partners():
    sel = _selector("cooccurrence", {"k": 2})
    sel.partners = torch.tensor([[1, 2], [0, 3], [3, 4], [2, 0], [0, 1]])  # as bind() would set them
    plan = sel.plan(5, None, torch.Generator())
    removed = [{0, 1, 2}, {1, 0, 3}, {2, 3, 4}, {3, 2, 0}, {4, 0, 1}]
    expected = torch.tensor([[0.0 if j in r else 1.0 for j in range(5)] for r in removed])
    assert torch.equal(_rows(plan, 2)[1], expected)
    assert torch.equal(plan.rows(torch.tensor([4, 1]))[0], expected[[4, 1]])
    assert plan.meta == {"exhaustive": True, "k": 2}


def test_rows_scans_a_lazy_plan():
    n, f = 5000, 300  # several scan chunks
    plan = _selector("bernoulli").plan(f, n, torch.Generator().manual_seed(4))
    z = (torch.rand(n, f, generator=torch.Generator().manual_seed(4)) < 0.5).float()
    idx = torch.tensor([4999, 0, 3500, 17, 3500, 1747])
    rows, w = plan.rows(idx)
    assert torch.equal(rows, z[idx]) and w is None
    with pytest.raises(IndexError):
        plan.rows(torch.tensor([n]))


class _WrappedPlan(LazyPlan):
    """A weighted lazy plan serving the rows of a SamplePlan (a stand-in for any lazy plan)."""

    def __init__(self, plan: SamplePlan) -> None:
        self._plan = plan
        self.meta = dict(plan.meta)
        self.sizes: list[int] = []

    @property
    def n_samples(self) -> int:
        return self._plan.n_samples

    @property
    def n_features(self) -> int:
        return self._plan.n_features

    @property
    def weighted(self) -> bool:
        return self._plan.weights is not None

    def chunks(self, size: int) -> Iterator[PlanChunk]:
        for chunk in self._plan.chunks(size):
            self.sizes.append(int(chunk.z.shape[0]))
            yield PlanChunk(
                chunk.start, chunk.z.clone(), None if chunk.weights is None else chunk.weights.clone()
            )


def test_sample_plan_chunks_are_slices_and_weighted_digests_stream():
    z = (torch.rand(10, 3, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    w = torch.arange(1.0, 11.0)
    plan = SamplePlan(z, w, meta={"exhaustive": False})
    chunks = list(plan.chunks(4))
    assert [c.start for c in chunks] == [0, 4, 8]
    assert chunks[1].z.data_ptr() == z[4].data_ptr()  # a view, not a copy
    assert torch.equal(torch.cat([c.weights for c in chunks]), w)
    assert plan.materialize() is plan
    lazy = _WrappedPlan(plan)
    assert lazy.digest() == plan.digest() == _oracle_digest(z, w)
    assert _oracle_digest(z, None) != plan.digest()  # the weights count
    rows, weights = lazy.rows(torch.tensor([9, 2]))
    assert torch.equal(rows, z[[9, 2]]) and torch.equal(weights, w[[9, 2]])


# -- the pipeline reads plans in chunks of the batch size ------------------------------------


class SpyConfig(PluginConfig):
    """Keep probability of the wrapped ``bernoulli`` selection."""

    p: float = 0.5


def _registry(hook: str, name: str, factory) -> Registry:
    mod = types.ModuleType(f"local_{name}")

    def register(registry):
        registry.add(name, SpyConfig, factory)

    register.__name__ = hook
    setattr(mod, hook, hookimpl(register))
    reg = Registry()
    reg.load_entry_points()
    reg.register_module(mod)
    return reg


def _spy_registry(plans: list, materialise: bool = False) -> Registry:
    """A ``spy`` feature selection: bernoulli plans wrapped so that their chunks are recorded."""

    class Spy(FeatureSelector):
        def __init__(self, config):
            self.inner = removalx.get_registry().make("feature_selection", "bernoulli", {"p": config.p})

        def plan(self, n_features, n_samples, generator):
            plan = self.inner.plan(n_features, n_samples, generator)
            plan = plan.materialize() if materialise else _WrappedPlan(plan.materialize())
            plans.append(plan)
            return plan

    return _registry("removalx_register_feature_selectors", "spy", Spy)


def _tiny_linear_model(f_video=(4, 8, 8)) -> removalx.VideoClassifier:
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(3, *f_video, 3, generator=g) * 0.1
    return removalx.VideoClassifier(LinearVideoModel(weight), layout="BTHWC")


def _recipe(n: int, selection: str = "bernoulli", summary: str = "linear") -> dict:
    return {
        "name": "chunked",
        "segmentation": {"name": "grid3d", "cells": [4, 4, 4]},
        "feature_selection": {"name": selection},
        "sample_selection": {"name": "fixed", "n_samples": n},
        "removal": {"name": "constant", "value": 0.0},
        "behavior": {"name": "logit"},
        "summary": {"name": summary},
    }


def test_pipeline_reads_the_plan_in_batch_size_chunks():
    plans: list = []
    reg = _spy_registry(plans)
    video = tiny_video(frames=4, size=8, seed=0)
    ex = removalx.Explainer.from_recipe(_recipe(203, "spy"), seed=0, registry=reg, progress=False)
    a = ex.explain(_tiny_linear_model(), video, target=0, batch_size=16)
    (plan,) = plans
    # the digest's scan (one chunk: 203 rows of 64 entries fit in SCAN_ELEMENTS), the first
    # batch read by incremental inference to see whether the samples are local (they are not),
    # then the forward passes in chunks of the batch size
    assert plan.sizes == [203] + [16] + [16] * 12 + [11]
    # the same attribution as the built-in lazy bernoulli plan (identical rows)
    b = removalx.Explainer.from_recipe(_recipe(203), seed=0, progress=False).explain(
        _tiny_linear_model(), video, target=0, batch_size=16
    )
    assert torch.equal(a.values, b.values) and a.meta["plan_digest"] == b.meta["plan_digest"]


class _TensorRecorder(TorchFunctionMode):
    """Records the shape of every tensor a torch function returns."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out


def _plan_sized(n: int, registry: Registry | None, selection: str) -> list[tuple[int, ...]]:
    """Shapes of the tensors with at least ``n`` rows created while explaining with ``n`` samples."""
    video = tiny_video(frames=4, size=8, seed=0)
    model = _tiny_linear_model()
    ex = removalx.Explainer.from_recipe(_recipe(n, selection), seed=0, registry=registry, progress=False)
    with _TensorRecorder() as rec:
        a = ex.explain(model, video, target=1, batch_size=64)
    assert a.meta["n_samples"] == n and a.meta["n_features"] == 64
    assert len(rec.shapes) > 1000  # the recorder saw the pipeline's work
    return [s for s in rec.shapes if len(s) >= 2 and s[0] >= n]


def test_no_tensor_with_a_row_per_sample_is_created():
    n = 20_000  # more rows than a scan chunk of 64 features (16,384)
    assert n > SCAN_ELEMENTS // 64
    assert _plan_sized(n, None, "bernoulli") == []
    # the recorder does see a materialised plan of the same size: the check can fail
    plans: list = []
    big = _plan_sized(n, _spy_registry(plans, materialise=True), "spy")
    assert (n, 64) in big


# -- upper bound on the number of samples ----------------------------------------------------


def test_too_many_samples_is_a_recipe_error():
    with pytest.raises(RecipeError, match=r"sample_selection\.n_samples.*10000000"):
        removalx.load_recipe("lime3d", overrides={"sample_selection.n_samples": 10**9})
    assert removalx.load_recipe("lime3d", overrides={"sample_selection.n_samples": MAX_SAMPLES})
    with pytest.raises(RecipeError, match=r"sample_selection\.factor"):
        removalx.load_recipe(
            "lime3d", overrides={"sample_selection.name": "per_feature", "sample_selection.factor": 1e12}
        )


def test_cli_validate_rejects_too_many_samples(capsys):
    rc = main(["recipes", "validate", "lime3d", "--set", "sample_selection.n_samples=1000000000"])
    assert rc == EXIT_INPUT
    err = capsys.readouterr().err
    assert "sample_selection.n_samples" in err and "10000000" in err and "Traceback" not in err


def test_per_feature_beyond_the_bound_is_a_config_error():
    sel = removalx.get_registry().make("sample_selection", "per_feature", {"factor": 1000.0})
    bern = _selector("bernoulli")
    assert sel.n_samples(10_000, bern) == MAX_SAMPLES  # exactly at the bound: allowed
    with pytest.raises(ConfigError, match="per_feature"):
        sel.n_samples(10_001, bern)


def test_shapley_kernel_bounds_its_in_memory_plan():
    sel = _selector("shapley_kernel")
    f = 1000
    with pytest.raises(ConfigError, match="shapley_kernel"):
        sel.plan(f, MAX_SAMPLED_ENTRIES // f + 1, torch.Generator().manual_seed(0))
    plan = sel.plan(30, 50, torch.Generator().manual_seed(0))  # small budgets are unaffected
    assert plan.n_samples <= 50 and plan.weighted


def test_third_party_sample_selection_beyond_the_bound_is_a_config_error():
    class Greedy(SampleSelector):
        def __init__(self, config):
            pass

        def n_samples(self, n_features, selector):
            return MAX_SAMPLES + 1

    reg = _registry("removalx_register_sample_selectors", "greedy", Greedy)
    recipe = _recipe(10)
    recipe["sample_selection"] = {"name": "greedy"}
    ex = removalx.Explainer.from_recipe(recipe, seed=0, registry=reg, progress=False)
    with pytest.raises(ConfigError, match="10,000,001 samples"):
        ex.explain(_tiny_linear_model(), tiny_video(frames=4, size=8), target=0)


# -- malformed plans are plugin errors -------------------------------------------------------


class _BadPlan(UnweightedLazyPlan):
    def __init__(self, fault: str, n: int = 10, f: int = 64) -> None:
        super().__init__(n, f)
        self.fault = fault

    @property
    def weighted(self) -> bool:
        return self.fault == "no_weights"

    def chunks(self, size: int) -> Iterator[PlanChunk]:
        if self.fault == "too_big":
            yield PlanChunk(0, torch.ones(self._n, self._f), None)
            return
        stop = self._n - 1 if self.fault == "short" else self._n
        for start in range(0, stop, size):
            k = min(size, stop - start)
            cols = self._f + 1 if self.fault == "columns" and start > 0 else self._f
            yield PlanChunk(start + (1 if self.fault == "gap" else 0), torch.ones(k, cols), None)


@pytest.mark.parametrize(
    "fault,message",
    [
        ("too_big", r"1 <= k <= 4"),
        ("columns", r"shape \(4, 65\)"),
        ("gap", r"expected a chunk at row 0"),
        ("short", r"gave 9 rows; its n_samples is 10"),
        ("no_weights", r"has no weights; expected weights"),
    ],
)
def test_malformed_chunks_are_plugin_errors(fault, message):
    class Bad(FeatureSelector):
        def __init__(self, config):
            pass

        def plan(self, n_features, n_samples, generator):
            return _BadPlan(fault)

    reg = _registry("removalx_register_feature_selectors", "bad", Bad)
    ex = removalx.Explainer.from_recipe(_recipe(10, "bad"), seed=0, registry=reg, progress=False)
    with pytest.raises(PluginError, match=message):
        ex.explain(_tiny_linear_model(), tiny_video(frames=4, size=8), target=0, batch_size=4)


# -- the pre-flight line ---------------------------------------------------------------------


@pytest.mark.parametrize("recipe,n_base", [("lime3d", 0), ("kernelshap3d", 1)])
def test_preflight_line_states_the_work(capfd, recipe, n_base):
    overrides = {
        "segmentation.name": "grid3d",
        "segmentation.cells": [2, 2, 2],
        "sample_selection.n_samples": 20,
    }
    video = tiny_video(frames=4, size=8, seed=0)
    ex = removalx.Explainer.from_recipe(recipe, seed=0, overrides=overrides, progress=True)
    a = ex.explain(_tiny_linear_model(), video, target=0, batch_size=5)
    err = capfd.readouterr().err
    lines = err.splitlines()
    n = a.meta["n_samples"]
    assert 15 < n <= 20
    n_forward = a.meta["n_forward"] - 1  # all but the clean pass, which runs before the plan
    assert n_forward == n + n_base  # kernelshap3d's f(empty) is one more forward pass
    expected = f"{recipe}: 8 features, {n_forward} forward passes, batch size 5, device cpu"
    assert sum(expected in line for line in lines) == 1
    estimates = [line for line in lines if "for the remaining" in line]
    assert len(estimates) == 1
    assert f"{recipe}: ~" in estimates[0]
    assert f"for the remaining {n - 5} forward passes (first batch of 5: " in estimates[0]

    # a second run on cached outputs announces no forward pass and no estimate
    cache: dict = {}
    ex.explain(_tiny_linear_model(), video, target=0, batch_size=5, cache=cache)
    capfd.readouterr()
    ex.explain(_tiny_linear_model(), video, target=0, batch_size=5, cache=cache)
    err = capfd.readouterr().err
    assert f"{recipe}: 8 features, 0 forward passes, batch size 5, device cpu" in err
    assert "for the remaining" not in err


def test_quiet_runs_print_nothing(capfd):
    overrides = {
        "segmentation.name": "grid3d",
        "segmentation.cells": [2, 2, 2],
        "sample_selection.n_samples": 20,
    }
    ex = removalx.Explainer.from_recipe("lime3d", seed=0, overrides=overrides, progress=False)
    ex.explain(_tiny_linear_model(), tiny_video(frames=4, size=8, seed=0), target=0, batch_size=5)
    captured = capfd.readouterr()
    assert "forward passes" not in captured.err and "forward passes" not in captured.out


def test_format_duration():
    from removalx.core.progress import format_duration

    cases = {0.84: "0.8 s", 42.4: "42 s", 130: "2 min 10 s", 3 * 3600 + 5 * 60 + 20: "3 h 05 min"}
    assert {k: format_duration(k) for k in cases} == cases


def test_every_chunked_plan_is_a_chunked_plan():
    for name, config, n in [
        ("bernoulli", {}, 9),
        ("bernoulli", {}, None),
        ("shapley_kernel", {}, 9),
        ("leave_one_out", {}, None),
        ("only_one", {}, None),
        ("cooccurrence", {}, None),
    ]:
        plan = _selector(name, config).plan(6, n, torch.Generator().manual_seed(0))
        assert isinstance(plan, ChunkedPlan)
        z = plan.materialize().z
        assert z.shape == (plan.n_samples, 6)
        assert set(z.unique().tolist()) <= {0.0, 1.0}
