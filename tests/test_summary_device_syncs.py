"""Summaries' ``update`` without host-device synchronisation (issue 27, Sec. 2.14; task K).

On the CPU there is no synchronisation to detect, so the code path is checked instead: every
tensor operation made during ``update`` runs under a :class:`~torch.overrides.TorchFunctionMode`
that raises on the calls that read a device tensor back to the host (``.cpu()``, ``.tolist()``,
``.item()``, ``.numpy()``, ``float()``, ``int()``, ``bool()``, ``operator.index``).
``begin``, ``estimate``, ``end_round`` and ``finalize`` may call them (once per round or run).
The AOSA map's range of per-mask drops, now tracked with device tensors across batches, is
checked against a plain Python computation.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

import removalx
from removalx.models import load_model
from removalx.zoo.data import make_clip
from removalx_plugins.machinery.wls import WeightedGram
from removalx_plugins.summary.aosa_map import AosaMap, AosaMapConfig
from removalx_plugins.summary.linear import Linear, LinearConfig
from removalx_plugins.summary.mask_mean import MaskMean
from removalx_plugins.summary.shapley import Shapley, ShapleyConfig

#: Tensor methods that copy a (device) tensor's data to the host, i.e. synchronise.
SYNCING = {
    torch.Tensor.cpu,
    torch.Tensor.tolist,
    torch.Tensor.item,
    torch.Tensor.numpy,
    torch.Tensor.__float__,
    torch.Tensor.__int__,
    torch.Tensor.__bool__,
    torch.Tensor.__index__,
    torch.Tensor.__complex__,
}


class SyncError(AssertionError):
    """A syncing call inside ``update``."""


class NoSyncMode(TorchFunctionMode):
    """Raise on any call in :data:`SYNCING`."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func in SYNCING:
            raise SyncError(f"host-device sync in update(): Tensor.{func.__name__}")
        return func(*args, **(kwargs or {}))


@contextmanager
def guarded_updates(monkeypatch: pytest.MonkeyPatch, cls: Any) -> Iterator[list[Any]]:
    """Run ``cls.update`` under :class:`NoSyncMode`; yields the instances it was called on."""
    seen: list[Any] = []
    original: Callable[..., None] = cls.update

    @functools.wraps(original)
    def update(self: Any, *args: Any, **kwargs: Any) -> None:
        seen.append(self)
        with NoSyncMode():
            original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "update", update)
    yield seen


@pytest.fixture(scope="module")
def clip_and_model() -> tuple[torch.Tensor, Any]:
    return make_clip(1, 3, frames=8, size=32).video, load_model("zoo:r3d_tiny_ls")


ADAPTIVE = [
    "sample_selection.name=adaptive",
    "sample_selection.round_size=20",
    "sample_selection.max_samples=80",
    "sample_selection.tolerance=1e-9",
]
FEW = ["sample_selection.n_samples=48"]

CASES = [
    ("rise3d", MaskMean, FEW),
    ("rise3d", MaskMean, [*FEW, "summary.normalize=p", "summary.include_original=false"]),
    ("rise3d", MaskMean, ADAPTIVE),
    ("lime3d", Linear, FEW),
    ("lime3d", Linear, ADAPTIVE),
    ("kernelshap3d", Shapley, FEW),
    ("kernelshap3d", Shapley, ADAPTIVE),
    ("leverage_shap3d", Shapley, ADAPTIVE),
    ("aosa", AosaMap, []),
    ("aosa", AosaMap, ["summary.formula=eq2_literal"]),
    ("aosa", AosaMap, ["summary.formula=occlusion_difference"]),
    ("aosa_cs", AosaMap, []),
    ("osa3d", AosaMap, []),
]


@pytest.mark.parametrize(("recipe", "cls", "overrides"), CASES, ids=lambda c: str(c))
def test_update_does_not_sync(monkeypatch, clip_and_model, recipe, cls, overrides):
    video, model = clip_and_model
    with guarded_updates(monkeypatch, cls) as seen:
        attr = removalx.Explainer.from_recipe(recipe, seed=0, overrides=overrides, progress=False).explain(
            model, video, batch_size=7
        )
    assert len(seen) >= 2, "update ran on several batches"
    assert torch.isfinite(attr.feature_values).all()
    if recipe in ("kernelshap3d", "leverage_shap3d") and overrides is ADAPTIVE:
        assert seen[0].n_terms > 0, "the pair terms of adaptive Kernel SHAP were accumulated in update"
    if recipe == "aosa_cs":
        assert seen[0].draws > 1 and seen[0].drop_min < seen[0].drop_max


def test_guard_catches_each_syncing_call():
    t = torch.arange(3.0)
    calls = [
        lambda: t.cpu(),
        lambda: t.tolist(),
        lambda: t[0].item(),
        lambda: t.numpy(),
        lambda: float(t[0]),
        lambda: int(t[0]),
        lambda: bool(t[0] > 0),
        lambda: range(t[0].long()),
        lambda: [v for v in t if v > 0],
    ]
    for call in calls:
        with pytest.raises(SyncError), NoSyncMode():
            call()
    with NoSyncMode():  # device-side work passes
        (t * 2).sum(0).to(torch.float64)


def _brute_drop_range(ref: float, ys: list[float], draws: int) -> tuple[float, float]:
    """Min / max over complete groups of ``draws`` rows of the mean of ``ref - y`` (Python floats)."""
    means = []
    for start in range(0, len(ys) - draws + 1, draws):
        total = 0.0
        for value in ys[start : start + draws]:
            total += ref - value
        means.append(total / draws)
    return min(means), max(means)


def _run_aosa(ys: torch.Tensor, ref: float, draws: int, batch: int, n_features: int = 5):
    gen = torch.Generator().manual_seed(1)
    n = ys.shape[0]
    z = (torch.rand(n, n_features, generator=gen) > 0.4).float()
    keep = (torch.rand(n, 2, 3, 3, generator=gen) > 0.4).float()
    s = AosaMap(AosaMapConfig(formula="eq2_centred", normalize="coverage"))
    space: Any = SimpleNamespace(n_features=n_features)
    plan: Any = SimpleNamespace(meta={"draws": draws})
    s.begin(space, plan, {"full": ref})
    for a in range(0, n, batch):
        with NoSyncMode():
            s.update(z[a : a + batch], keep[a : a + batch], ys[a : a + batch], None)
    values, fv = s.finalize(space)
    return s, values, fv


@pytest.mark.parametrize("draws", [1, 3, 10])
@pytest.mark.parametrize("batch", [1, 2, 3, 7, 32])
@pytest.mark.parametrize("extra", [0, 2])
def test_aosa_drop_range_matches_brute_force(draws, batch, extra):
    rng = random.Random(draws * 1000 + batch * 10 + extra)
    n_groups = 6
    ys_list = [rng.uniform(0.0, 1.0) for _ in range(n_groups * draws + (extra if draws > 1 else 0))]
    ys = torch.tensor(ys_list, dtype=torch.float64)
    ref = 0.625
    lo, hi = _brute_drop_range(ref, ys_list, draws)
    s, values, _ = _run_aosa(ys, ref, draws, batch)
    assert (s.drop_min, s.drop_max) == (lo, hi)  # the same left-to-right sums: exact
    # an independent check of the groups: numpy's means of the complete groups
    d = ref - np.array(ys_list[: n_groups * draws]).reshape(n_groups, draws)
    assert s.drop_min == pytest.approx(d.mean(1).min(), abs=1e-15)
    assert s.drop_max == pytest.approx(d.mean(1).max(), abs=1e-15)
    # the map is rescaled onto that range (eq2_centred)
    assert float(values.min()) == pytest.approx(lo, abs=1e-6) and float(values.max()) == pytest.approx(
        hi, abs=1e-6
    )
    if draws > 1:
        assert s.group_n == (extra if draws > 1 else 0)  # the open group left at the end


def test_aosa_drop_range_independent_of_batching():
    ys = torch.rand(70, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ranges = {
        (_run_aosa(ys, 0.5, 10, b)[0].drop_min, _run_aosa(ys, 0.5, 10, b)[0].drop_max) for b in (3, 7, 32, 70)
    }
    assert len(ranges) == 1


def _meta_batch(n: int, f: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch on the shape-only ``meta`` device: copying it to the host raises."""
    return torch.empty(n, f, device="meta"), torch.empty(n, device="meta"), torch.empty(n, device="meta")


def test_weighted_gram_follows_the_rows_device():
    gram = WeightedGram(4)
    gram.add(torch.ones(2, 4), torch.ones(2), torch.ones(2))  # CPU rows first (LIME's clean clip)
    x, y, w = _meta_batch(3, 4)
    with NoSyncMode():
        gram.add(x, y, w)
    assert gram.sxx.device.type == "meta" and gram.sw.device.type == "meta" and gram.n == 5
    assert gram.to("meta") is gram
    cpu_gram = WeightedGram(2)
    assert cpu_gram.to("cpu") is cpu_gram and cpu_gram.to("meta").sxx.device.type == "meta"


@pytest.mark.parametrize("adaptive", [False, True])
def test_linear_and_shapley_keep_their_grams_on_the_batch_device(adaptive):
    f = 6
    space = SimpleNamespace(n_features=f)
    lin = Linear(LinearConfig())
    lin.adaptive = adaptive
    lin.begin(space, SimpleNamespace(meta={}), {"full": 0.9})
    shap = Shapley(ShapleyConfig())
    shap.begin(space, SimpleNamespace(meta={}), {"full": 0.9, "empty": 0.1})
    if adaptive:  # a second round: the pair terms are accumulated in update
        shap.head = torch.zeros(f - 1, dtype=torch.float64)
    z, y, _ = _meta_batch(4, f)
    with NoSyncMode():
        lin.update(z, None, y, None)
        shap.update(z, None, y, None)
    assert lin.gram.sxx.device.type == "meta"
    assert all(rep.sxx.device.type == "meta" for rep in lin.replicates) and len(lin.replicates) == (
        32 if adaptive else 0
    )
    assert shap.gram.sxx.device.type == "meta"
    if adaptive:
        assert shap.su.device.type == "meta" and shap.suu.device.type == "meta" and shap.n_terms == 4
