"""Excitation Backprop, contrastive EB, EB-R and Saliency Tubes against independent NumPy oracles.

The oracles recompute every forward activation and every MWP with explicit NumPy loops over
neurons and connections (Zhang et al., IJCV 2018, Eq. 5-7: ``P(a_i) = sum_j a_i w_ij^+ /
(sum_i' a_i' w_i'j^+) P(a_j)``), without torch hooks or autograd.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import removalx
from removalx.cli import EXIT_OK, main
from removalx.core.classifier import VideoClassifier
from removalx.errors import ModelError


def run(reg, model, video, target, name="excitation_backprop", **cfg):
    recipe = {"name": "t", "seed": 0, "explainer": {"name": name, **cfg}}
    return removalx.Explainer.from_recipe(recipe, registry=reg, progress=False).explain(model, video, target)


def _set(module: nn.Module, gen: torch.Generator, scale: float = 1.0) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen))


class TwoLayer(nn.Module):
    """``conv1`` (1x1x1, read here) -> ReLU -> ``conv2`` (3x3x3, pad 1) -> ReLU -> global mean -> ``fc``."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 2, 1)
        self.conv2 = nn.Conv3d(2, 3, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(3, 2)
        gen = torch.Generator().manual_seed(seed)
        _set(self, gen)
        with torch.no_grad():
            self.conv1.bias.add_(0.5)  # most units on, some off

    def forward(self, x: Tensor) -> Tensor:
        a = torch.relu(self.conv1(x))
        a = torch.relu(self.conv2(a))
        return self.fc(self.pool(a).flatten(1))


def np_two_layer_mwp(net: TwoLayer, video: Tensor, target: int, dual: bool = False) -> np.ndarray:
    """MWP of conv1's output neurons summed over channels, ``[T, H, W]``, by explicit loops."""
    x = video.double().numpy()  # [T, H, W, 3]
    w1 = net.conv1.weight.detach().double().numpy()[:, :, 0, 0, 0]
    b1 = net.conv1.bias.detach().double().numpy()
    w2 = net.conv2.weight.detach().double().numpy()  # [3, 2, 3, 3, 3]
    b2 = net.conv2.bias.detach().double().numpy()
    wf = net.fc.weight.detach().double().numpy()
    t_len, h, w, _ = x.shape
    a1 = np.maximum(np.einsum("thwc,kc->kthw", x, w1) + b1[:, None, None, None], 0)  # [2, T, H, W]
    a2 = np.zeros((3, t_len, h, w))
    for k in range(3):
        for t in range(t_len):
            for i in range(h):
                for j in range(w):
                    s = b2[k]
                    for c in range(2):
                        for dt in range(3):
                            for di in range(3):
                                for dj in range(3):
                                    tt, ii, jj = t + dt - 1, i + di - 1, j + dj - 1
                                    if 0 <= tt < t_len and 0 <= ii < h and 0 <= jj < w:
                                        s += w2[k, c, dt, di, dj] * a1[c, tt, ii, jj]
                    a2[k, t, i, j] = max(s, 0.0)
    g = a2.mean(axis=(1, 2, 3))
    wc = -wf[target] if dual else wf[target]
    wcp = np.maximum(wc, 0)
    p_g = g * wcp / (g * wcp).sum()  # fc rule, one-hot P at the target (or its dual)
    # average pooling: equal positive weights, so P(a2[k, pos]) = P(g_k) a2[k, pos] / sum_pos a2[k]
    p_a2 = np.zeros_like(a2)
    for k in range(3):
        if a2[k].sum() > 0:
            p_a2[k] = p_g[k] * a2[k] / a2[k].sum()
    # conv2: each output neuron (k, t, i, j) shares its MWP among its inputs a1 w2^+
    w2p = np.maximum(w2, 0)
    p_a1 = np.zeros_like(a1)
    for k in range(3):
        for t in range(t_len):
            for i in range(h):
                for j in range(w):
                    if p_a2[k, t, i, j] == 0:
                        continue
                    contrib = {}
                    for c in range(2):
                        for dt in range(3):
                            for di in range(3):
                                for dj in range(3):
                                    tt, ii, jj = t + dt - 1, i + di - 1, j + dj - 1
                                    if 0 <= tt < t_len and 0 <= ii < h and 0 <= jj < w:
                                        contrib[(c, tt, ii, jj)] = a1[c, tt, ii, jj] * w2p[k, c, dt, di, dj]
                    z = sum(contrib.values())
                    for key, v in contrib.items():
                        p_a1[key] += p_a2[k, t, i, j] * v / z
    return p_a1.sum(0)


def clip(seed: int = 0, shape=(2, 4, 4, 3)) -> Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("target", [0, 1])
def test_eb_equals_the_mwp_by_hand(reg, target):
    net, video = TwoLayer(), clip()
    got = run(reg, VideoClassifier(net), video, target, layer="conv1")
    expect = np_two_layer_mwp(net, video, target)
    assert got.meta["layer_shape"] == (2, 4, 4)
    np.testing.assert_allclose(got.values.numpy(), expect, rtol=1e-4, atol=1e-7)
    assert abs(expect.sum() - 1) < 1e-9 and abs(got.meta["mwp_total"] - 1) < 1e-5  # MWP is conserved
    assert got.meta["n_forward_method"] == 1 and got.meta["n_backward_method"] == 1
    assert set(got.meta["layers_met"]) == {"conv2", "pool", "fc"}


def test_contrastive_eb_is_eb_minus_the_dual_by_hand(reg):
    net, video, target = TwoLayer(seed=3), clip(1), 1
    eb = np_two_layer_mwp(net, video, target)
    dual = np_two_layer_mwp(net, video, target, dual=True)
    raw = run(reg, VideoClassifier(net), video, target, "contrastive_eb", layer="conv1", relu=False)
    np.testing.assert_allclose(raw.values.numpy(), eb - dual, rtol=1e-4, atol=1e-7)
    assert (eb - dual).min() < 0 < (eb - dual).max()  # the dual takes part of the clip
    pos = run(reg, VideoClassifier(net), video, target, "contrastive_eb", layer="conv1")
    np.testing.assert_allclose(pos.values.numpy(), np.maximum(eb - dual, 0), rtol=1e-4, atol=1e-7)
    assert raw.meta["n_forward_method"] == 1 and raw.meta["n_backward_method"] == 2


class TinyCNNGRU(nn.Module):
    """Per-frame ``conv`` (1x1, read here) -> ReLU -> global mean -> ``embed`` -> ReLU -> GRU -> ``fc``."""

    def __init__(self, seed: int = 0, hidden: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Linear(2, 4)
        self.gru = nn.GRU(4, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 2)
        _set(self, torch.Generator().manual_seed(seed))
        with torch.no_grad():
            self.conv.bias.add_(0.5)
            self.embed.bias.add_(0.5)

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        f = self.pool(torch.relu(self.conv(frames))).flatten(1)
        seq = torch.relu(self.embed(f)).view(b, t, -1)
        out, _ = self.gru(seq)
        return self.fc(out[:, -1])


def np_ebr(net: TinyCNNGRU, video: Tensor, target: int) -> np.ndarray:
    """EB-R MWP of the conv output per frame ``[T, H, W]``: GRU recursion written out in NumPy."""

    def sig(v):
        return 1 / (1 + np.exp(-v))

    par = {k: v.detach().double().numpy() for k, v in net.state_dict().items()}
    x = video.double().numpy()
    t_len = x.shape[0]
    a = np.maximum(
        np.einsum("thwc,kc->tkhw", x, par["conv.weight"][:, :, 0, 0]) + par["conv.bias"][None, :, None, None],
        0,
    )
    f = a.mean(axis=(2, 3))  # [T, 2]
    e = np.maximum(f @ par["embed.weight"].T + par["embed.bias"], 0)  # [T, 4]
    hid = par["gru.weight_hh_l0"].shape[1]
    wi, wh, bi, bh = (
        par["gru.weight_ih_l0"],
        par["gru.weight_hh_l0"],
        par["gru.bias_ih_l0"],
        par["gru.bias_hh_l0"],
    )
    hs, gates = [np.zeros(hid)], []
    for t in range(t_len):
        hp = hs[-1]
        r = sig(wi[:hid] @ e[t] + bi[:hid] + wh[:hid] @ hp + bh[:hid])
        z = sig(wi[hid : 2 * hid] @ e[t] + bi[hid : 2 * hid] + wh[hid : 2 * hid] @ hp + bh[hid : 2 * hid])
        n = np.tanh(wi[2 * hid :] @ e[t] + bi[2 * hid :] + r * (wh[2 * hid :] @ hp + bh[2 * hid :]))
        gates.append((r, z, n))
        hs.append((1 - z) * n + z * hp)
    wf = np.maximum(par["fc.weight"][target], 0)
    hT = np.maximum(hs[-1], 0)
    p_h = hT * wf / (hT * wf).sum()
    p_e = np.zeros_like(e)
    for t in range(t_len - 1, -1, -1):
        r, z, n = gates[t]
        hp = hs[t]
        p_prev = np.zeros(hid)
        for j in range(hid):  # neuron j of h_t: candidate vs carried state
            cand, carry = max((1 - z[j]) * n[j], 0), max(z[j] * hp[j], 0)
            if cand + carry == 0:
                continue
            p_n = p_h[j] * cand / (cand + carry)
            p_prev[j] += p_h[j] * carry / (cand + carry)
            ins = [max(e[t, i], 0) * max(wi[2 * hid + j, i], 0) for i in range(e.shape[1])]
            rec = [r[j] * max(hp[k], 0) * max(wh[2 * hid + j, k], 0) for k in range(hid)]
            zsum = sum(ins) + sum(rec)
            if zsum == 0:
                continue
            for i, v in enumerate(ins):
                p_e[t, i] += p_n * v / zsum
            for k, v in enumerate(rec):
                p_prev[k] += p_n * v / zsum
        p_h = p_prev
    we = np.maximum(par["embed.weight"], 0)  # embed: [4, 2]
    p_f = np.zeros_like(f)
    for t in range(t_len):
        for j in range(we.shape[0]):
            zsum = (f[t] * we[j]).sum()
            if zsum > 0:
                p_f[t] += p_e[t, j] * f[t] * we[j] / zsum
    p_a = p_f[:, :, None, None] * a / np.maximum(a.sum(axis=(2, 3), keepdims=True), 1e-300)
    return p_a.sum(1)


@pytest.mark.parametrize(("seed", "target"), [(1, 1), (3, 0), (5, 1)])
def test_eb_r_on_a_tiny_gru_by_hand(reg, seed, target):
    net, video = TinyCNNGRU(seed), clip(seed, (3, 4, 4, 3))
    got = run(reg, VideoClassifier(net), video, target, "eb_r", layer="conv")
    expect = np_ebr(net, video, target)
    assert np.isfinite(expect).all()
    assert got.meta["layer_shape"] == (3, 4, 4)
    np.testing.assert_allclose(got.values.numpy(), expect, rtol=1e-3, atol=1e-7)  # float32 through 3 steps
    assert expect[:-1].sum() > 0  # the MWP reached earlier frames through the recurrence


def test_plain_eb_refuses_the_gru_when_asked(reg):
    with pytest.raises(ModelError, match=r"gru \(GRU \(recurrent layer"):
        run(reg, VideoClassifier(TinyCNNGRU()), clip(0, (3, 4, 4, 3)), 0, layer="conv", recurrent=False)


class Unsupported(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 2, 1)
        self.norm = nn.LayerNorm(2)
        self.fc = nn.Linear(2, 2)

    def forward(self, x: Tensor) -> Tensor:
        a = torch.sigmoid(self.conv(x)).mean(dim=(2, 3, 4))
        return self.fc(self.norm(a))


def test_unsupported_layer_is_a_model_error_listing_the_layers(reg):
    with pytest.raises(ModelError) as info:
        run(reg, VideoClassifier(Unsupported()), clip(), 0, layer="conv")
    msg = str(info.value)
    assert "<model>: sigmoid" in msg and "norm: layer_norm" in msg and "fc (Linear)" in msg


class TinyC3D(nn.Module):
    """``conv`` (3x3x3) -> ReLU -> global average pool -> ``fc``: Saliency Tubes' setting."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(4, 3)
        _set(self, torch.Generator().manual_seed(5))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


@pytest.mark.parametrize("target", [0, 2])
def test_saliency_tubes_by_hand(reg, target):
    net, video = TinyC3D(), clip(2)
    x = video.permute(3, 0, 1, 2)[None]
    a = torch.relu(
        torch.nn.functional.conv3d(x.double(), net.conv.weight.double(), net.conv.bias.double(), padding=1)
    )[0]  # [4, T, H, W]
    w = net.fc.weight.detach().double()[target]
    expect = (w[:, None, None, None] * a).sum(0).detach()
    got = run(reg, VideoClassifier(net), video, target, "saliency_tubes")
    assert got.meta["layer"] == "pool (input)" and got.meta["classifier"] == "fc"
    np.testing.assert_allclose(got.values.numpy(), expect.numpy(), rtol=1e-4, atol=1e-6)
    # the class activation identity: mean of the map + bias = the logit
    logit = float(net(x)[0, target].detach())
    assert abs(float(expect.mean()) + float(net.fc.bias[target].detach()) - logit) < 1e-5
    assert got.meta["n_forward_method"] == 1 and got.meta["n_backward_method"] == 0


@pytest.mark.parametrize("model", ["zoo:r3d_tiny", "zoo:cnn_gru"])
@pytest.mark.parametrize("recipe", ["excitation_backprop", "contrastive_eb", "eb_r"])
def test_explain_command_end_to_end(tmp_path: Path, model: str, recipe: str) -> None:
    out = tmp_path / "o"
    rc = main(
        ["explain", "--recipe", recipe, "--model", model, "--format", "png", "--out", str(out), "--quiet"]
    )
    assert rc == EXIT_OK
    assert json.loads((out / "summary.json").read_text())["recipe"]["name"] == recipe
    attr = removalx.Attribution.load(out / "attribution.npz")
    assert attr.meta["method"] == recipe and attr.meta["n_forward_method"] == 1
    assert attr.meta["n_backward_method"] == (2 if recipe == "contrastive_eb" else 1)
    assert attr.values.shape == (16, 112, 112) and float(attr.values.abs().sum()) > 0
