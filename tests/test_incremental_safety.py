"""Incremental inference is exact or falls back, by construction (docs/incremental.md, issue 27 §3.1).

A model that reads feature maps at positions it computes (indexing, gather, index_select,
sort/topk, nonzero/masked_select, ``torch.where`` on a data-dependent mask) before its
computation becomes global is refused by the allow-list of local operations
(removalx/incremental/locality.py). Oracles: the model's own full forward pass, and the
explanation with incremental inference off; the first test shows that without the allow-list
the safety batch passes and the replay is wrong (so the refusal is what makes it exact).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import removalx
from removalx.incremental import IncrementalModel, TraceUnsupported, build, locality, session
from removalx.testing import tiny_video

SIZE = (8, 32, 32)


@pytest.fixture(autouse=True)
def _any_model_size(monkeypatch):
    monkeypatch.setattr(session, "MIN_MACS", 0)


class _Picks(nn.Module):
    """Convolution features read at computed positions (``variant`` chooses how)."""

    def __init__(self, variant: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.variant = variant
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.head = nn.Linear(4 * SIZE[1] * SIZE[2], 3)
        self.small = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        b, c, t, hh, ww = h.shape
        g = h.mean(dim=(2, 3, 4))  # global: [B, C]
        if self.variant == "index":  # the model of issue 27 §3.1
            idx = x.mean(dim=(1, 3, 4)).argmax(1)
            return self.head(h[torch.arange(b), :, idx].flatten(1))
        idx = g.argmax(1) % t
        if self.variant == "gather":
            f = torch.gather(h, 2, idx.view(b, 1, 1, 1, 1).expand(b, c, 1, hh, ww))
            return self.head(f.flatten(1))
        if self.variant == "index_select":
            return self.small(h.index_select(2, idx).mean(dim=(2, 3, 4)))
        if self.variant == "topk":
            return self.small(h.flatten(2).topk(5, dim=2).values.mean(2))
        if self.variant == "sort":
            return self.small(torch.sort(h.flatten(2), dim=2).values[:, :, -3:].mean(2))
        if self.variant == "masked_select":
            return self.small(g) + 0.0 * h.masked_select(h > 0.5).sum()
        if self.variant == "nonzero":
            return self.small(g) + 0.0 * (h > 0.5).nonzero().sum()
        if self.variant == "where":
            w = torch.where(h > h.mean(), h, torch.zeros_like(h))
            return self.head(w[torch.arange(b), :, idx].flatten(1))
        raise AssertionError(self.variant)


VARIANTS = ["index", "gather", "index_select", "topk", "sort", "masked_select", "nonzero", "where"]


def _reference() -> torch.Tensor:
    ref = torch.rand(1, 3, *SIZE, generator=torch.Generator().manual_seed(1))
    ref[:, :, 7] += 1.0  # frame 7 is the brightest: the safety batch never changes it
    return ref


def _batch(ref: torch.Tensor) -> torch.Tensor:
    x = ref.expand(4, *ref.shape[1:]).clone()
    x[0, :, 6:8, 8:20, 8:20] = 0.0  # touches the frames the argmax picks
    x[1, :, 0:2, 0:8, 0:8] = 0.5
    x[2, :, 3:5, 20:28, 4:12] = 1.0
    return x  # sample 3 is the reference


def test_without_the_allow_list_the_check_passes_and_the_replay_is_wrong(monkeypatch):
    """The failure the allow-list prevents: the safety batch cannot see it."""
    monkeypatch.setattr(locality, "unsafe_operation", lambda graph, kinds: None)
    monkeypatch.setattr("removalx.incremental.engine.unsafe_operation", lambda graph, kinds: None)
    model = _Picks("index").eval()
    ref = _reference()
    engine = build(model, ref)  # passes its one safety batch
    x = _batch(ref)
    with torch.inference_mode():
        err = float((engine(x) - model(x)).abs().max())
    assert err > 1e-3


@pytest.mark.parametrize("variant", VARIANTS)
def test_reads_at_computed_positions_are_refused(variant):
    model = _Picks(variant).eval()
    with pytest.raises(TraceUnsupported, match="before the global pooling") as info:
        IncrementalModel(model, _reference())
    first = {"index": "mean", "where": "gt", "masked_select": "gt", "nonzero": "gt"}.get(variant, variant)
    assert info.value.reason.startswith(first)


@pytest.mark.parametrize("variant", ["index", "gather", "where"])
def test_explanations_of_refused_models_equal_full_passes(variant, capsys):
    clf = removalx.VideoClassifier(_Picks(variant).eval())
    video = tiny_video(frames=SIZE[0], size=SIZE[1], seed=1)
    video[7] = video[7] * 0.5 + 0.5
    over = {"segmentation.window": [2, 8, 8], "segmentation.stride": [2, 8, 8]}
    a = removalx.Explainer.from_recipe("occlusion3d", overrides=over, progress=False).explain(clf, video, 0)
    meta = a.meta["incremental"]
    assert not meta["used"] and meta["reason"].startswith("model not supported: ")
    assert "before the global pooling" in meta["reason"]
    notice = [line for line in capsys.readouterr().err.splitlines() if "incremental inference is off" in line]
    assert len(notice) == 1
    b = removalx.Explainer.from_recipe("occlusion3d", overrides=over, progress=False, incremental=False)
    assert torch.equal(a.values, b.explain(clf, video, 0).values)


class _Global(nn.Module):
    """Only allow-listed operations before the global point; indexing after it."""

    def __init__(self, head: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head_kind = head
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool3d(2)
        self.lin = nn.Linear(4 * 4 * 16 * 16, 3) if head == "flatten" else nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(torch.relu(self.conv(x))) * 2.0 + 1.0
        if self.head_kind == "flatten":
            return self.lin(h.flatten(1))
        if self.head_kind == "adaptive":
            g = nn.functional.adaptive_avg_pool3d(h, 1).flatten(1)
        elif self.head_kind == "amax":
            g = h.amax(dim=(-3, -2, -1))
        else:
            g = h.mean(dim=(2, 3, 4), keepdim=True).squeeze(-1).squeeze(-1).squeeze(-1)
        logits = self.lin(g)
        k = logits.argmax(1)  # indexing after the global point is replayed on full values
        return logits - logits[torch.arange(logits.shape[0]), k][:, None] * 0.0 + g.sort(1).values[:, :1]


@pytest.mark.parametrize("head", ["flatten", "adaptive", "amax", "mean_keepdim"])
def test_models_global_after_local_operations_stay_incremental_and_exact(head):
    model = _Global(head).eval()
    ref = _reference()
    engine = build(model, ref)
    x = _batch(ref)
    with torch.inference_mode():
        got, want = engine(x), model(x)
    assert float((got - want).abs().max()) <= 1e-4 * float(want.abs().max()) + 1e-7
    assert engine.saved_fraction > 0.0


def test_reductions_over_some_positions_are_not_global():
    class _Partial(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv3d(3, 2, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).mean(dim=(3, 4)).flatten(1)  # keeps time: still per-position

    with pytest.raises(TraceUnsupported, match="mean on a feature map"):
        IncrementalModel(_Partial().eval(), _reference())
