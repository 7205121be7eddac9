"""EB-R through an LSTM (Bargal et al., CVPR 2018) against a NumPy hand computation.

The oracle follows the authors' Caffe code layer by layer, with explicit loops over neurons and
Caffe's own gate order ``[i, f, o, g]`` (removalx stores PyTorch's ``[i, f, g, o]``):
``InnerProduct::Backward_eb`` on the classifier and the input projection,
``LSTMUnit::Backward_eb`` on the cell, ``Eltwise::Backward_eb`` (SUM: all to ``W_xc x_t + b``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import removalx
from removalx.core.classifier import VideoClassifier
from removalx.errors import ModelError
from removalx.zoo.recurrent import ReLULSTM
from removalx_plugins.machinery.eb_lstm import lstm_sequence_mwp


def run(reg, model, video, target, name="eb_r", **cfg):
    recipe = {"name": "t", "seed": 0, "explainer": {"name": name, **cfg}}
    return removalx.Explainer.from_recipe(recipe, registry=reg, progress=False).explain(model, video, target)


def sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def caffe_blocks(w: np.ndarray, hid: int) -> dict[str, np.ndarray]:
    """PyTorch's ``[i, f, g, o]`` row blocks by name (the oracle reassembles them in Caffe's order)."""
    return {k: w[n * hid : (n + 1) * hid] for n, k in enumerate("ifgo")}


def np_lstm_ebr(x: np.ndarray, p_out: np.ndarray, par: dict[str, np.ndarray]) -> np.ndarray:
    """MWP of every input ``x_t`` (``[T, D]``) given the signal ``p_out`` (``[T, H]``) at the outputs."""
    hid = par["weight_hh_l0"].shape[1]
    wi, wh = caffe_blocks(par["weight_ih_l0"], hid), caffe_blocks(par["weight_hh_l0"], hid)
    bi, bh = caffe_blocks(par["bias_ih_l0"], hid), caffe_blocks(par["bias_hh_l0"], hid)
    order = "ifog"  # Caffe's LSTMUnit layout
    t_len, d_in = x.shape
    hs, cs, acts = [np.zeros(hid)], [np.zeros(hid)], []
    for t in range(t_len):  # forward, neuron by neuron
        pre = {
            k: [wi[k][j] @ x[t] + bi[k][j] + wh[k][j] @ hs[-1] + bh[k][j] for j in range(hid)] for k in order
        }
        i, f, o = (np.array([sig(v) for v in pre[k]]) for k in "ifo")
        g = np.array([max(v, 0.0) for v in pre["g"]])
        c = f * cs[-1] + i * g
        acts.append((i, f, o, g, np.array(pre["g"]), c))
        cs.append(c)
        hs.append(o * np.maximum(c, 0))
    w_x = np.concatenate([np.maximum(wi[k], 0) for k in order])  # W_xc^+ in Caffe's order, [4H, D]
    p_x = np.zeros_like(x)
    c_diff = np.zeros(hid)  # signal arriving at c_t from step t + 1
    for t in range(t_len - 1, -1, -1):
        i, f, o, g, g_pre, c = acts[t]
        c_prev = cs[t]
        x_diff = np.zeros(4 * hid)
        c_prev_diff = np.zeros(hid)
        for j in range(hid):  # LSTMUnit::Backward_eb
            c_term = c_diff[j] + p_out[t, j] * o[j] * float(c[j] > 0)
            c_prev_diff[j] = c_term * f[j]
            x_diff[j] = c_term * g[j] * i[j] * (1 - i[j])
            x_diff[hid + j] = c_term * c_prev[j] * f[j] * (1 - f[j])
            x_diff[2 * hid + j] = p_out[t, j] * max(c[j], 0) * o[j] * (1 - o[j])
            x_diff[3 * hid + j] = c_term * i[j] * float(g_pre[j] > 0)
        for n in range(4 * hid):  # Eltwise SUM -> W_xc x_t; InnerProduct::Backward_eb
            z = sum(w_x[n, k] * x[t, k] for k in range(d_in))
            if z == 0:
                continue
            for k in range(d_in):
                p_x[t, k] += x[t, k] * w_x[n, k] * x_diff[n] / z
        c_diff = c_prev_diff
    return p_x


def chosen_lstm() -> ReLULSTM:
    """``D = 2``, ``H = 2`` with hand-picked weights: mixed signs, some gates off."""
    lstm = ReLULSTM(2, 2)
    w_ih = [
        [0.5, -0.3],
        [0.2, 0.4],
        [0.8, 0.1],
        [-0.6, 0.9],
        [1.0, -0.5],
        [0.3, 0.7],
        [0.6, 0.2],
        [-0.1, 0.5],
    ]
    w_hh = [
        [0.1, -0.2],
        [0.3, 0.2],
        [-0.4, 0.5],
        [0.2, 0.1],
        [0.7, -0.3],
        [-0.2, 0.6],
        [0.4, 0.4],
        [0.1, -0.5],
    ]
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(w_ih))
        lstm.weight_hh_l0.copy_(torch.tensor(w_hh))
        lstm.bias_ih_l0.copy_(torch.tensor([0.1, -0.2, 0.5, 0.0, -0.3, 0.2, 0.1, 0.3]))
        lstm.bias_hh_l0.copy_(torch.tensor([0.0, 0.1, -0.1, 0.2, 0.1, -0.6, 0.0, -0.1]))
    return lstm.double()


X3 = np.array([[1.0, 0.5], [0.2, 1.5], [0.8, 0.0]])


@pytest.mark.parametrize("where", ["last", "every"])
def test_three_lstm_steps_by_hand(where):
    lstm = chosen_lstm()
    p_out = np.zeros((3, 2))
    if where == "last":
        p_out[-1] = [0.25, 0.75]  # the signal the classifier passes to h_3 (authors' demo: last step only)
    else:
        p_out[:] = [[0.1, 0.2], [0.3, 0.1], [0.25, 0.05]]
    par = {k: v.detach().numpy() for k, v in lstm.state_dict().items()}
    expect = np_lstm_ebr(X3, p_out, par)
    z = torch.zeros(1, 2, dtype=torch.float64)
    got = lstm_sequence_mwp(torch.tensor(p_out)[None], torch.tensor(X3)[None], z, z, lstm)[0].numpy()
    np.testing.assert_allclose(got, expect, rtol=1e-10, atol=1e-14)
    assert (expect[:2] != 0).any()  # the signal reached steps 1 and 2 through the cell state


def test_forward_matches_the_numpy_cell():
    lstm = chosen_lstm()
    out, (h_n, c_n) = lstm(torch.tensor(X3)[None])
    hs = [np.zeros(2)]
    cs = [np.zeros(2)]
    par = {k: v.detach().numpy() for k, v in lstm.state_dict().items()}
    for t in range(3):
        zz = (
            par["weight_ih_l0"] @ X3[t] + par["bias_ih_l0"] + par["weight_hh_l0"] @ hs[-1] + par["bias_hh_l0"]
        )
        i, f, g, o = sig(zz[:2]), sig(zz[2:4]), np.maximum(zz[4:6], 0), sig(zz[6:])
        cs.append(f * cs[-1] + i * g)
        hs.append(o * np.maximum(cs[-1], 0))
    np.testing.assert_allclose(out[0].detach().numpy(), np.stack(hs[1:]), rtol=1e-12)
    np.testing.assert_allclose(h_n[0, 0].detach().numpy(), hs[-1], rtol=1e-12)
    np.testing.assert_allclose(c_n[0, 0].detach().numpy(), cs[-1], rtol=1e-12)


class TinyCNNLSTM(nn.Module):
    """Per-frame ``conv`` (1x1, read here) -> ReLU -> mean -> ``embed`` -> ReLU -> ReLULSTM -> ``fc`` (last)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Linear(2, 3)
        self.lstm = ReLULSTM(3, 2)
        self.fc = nn.Linear(2, 2)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
            self.conv.bias.add_(0.5)
            self.embed.bias.add_(0.5)
            self.lstm.bias_ih_l0.add_(1.0)  # open the gates: the signal goes back in time

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        f = self.pool(torch.relu(self.conv(frames))).flatten(1)
        out, _ = self.lstm(torch.relu(self.embed(f)).view(b, t, -1))
        return self.fc(out[:, -1])


def np_tiny(net: TinyCNNLSTM, video: Tensor, target: int) -> np.ndarray:
    """EB-R map of the conv output ``[T, H, W]``: classifier, LSTM (oracle above), embed, pool."""
    par = {k: v.detach().double().numpy() for k, v in net.state_dict().items()}
    x = video.double().numpy()
    a = np.maximum(
        np.einsum("thwc,kc->tkhw", x, par["conv.weight"][:, :, 0, 0]) + par["conv.bias"][None, :, None, None],
        0,
    )
    f = a.mean(axis=(2, 3))
    e = np.maximum(f @ par["embed.weight"].T + par["embed.bias"], 0)
    lstm = {k[5:]: v for k, v in par.items() if k.startswith("lstm.")}
    h = np.zeros(2)
    c = np.zeros(2)
    for t in range(e.shape[0]):
        zz = lstm["weight_ih_l0"] @ e[t] + lstm["bias_ih_l0"] + lstm["weight_hh_l0"] @ h + lstm["bias_hh_l0"]
        c = sig(zz[2:4]) * c + sig(zz[:2]) * np.maximum(zz[4:6], 0)
        h = sig(zz[6:]) * np.maximum(c, 0)
    wf = np.maximum(par["fc.weight"][target], 0)
    p_out = np.zeros((e.shape[0], 2))
    p_out[-1] = h * wf / (h * wf).sum()
    p_e = np_lstm_ebr(e, p_out, lstm)
    we = np.maximum(par["embed.weight"], 0)
    p_f = np.zeros_like(f)
    for t in range(f.shape[0]):
        for j in range(we.shape[0]):
            zsum = (f[t] * we[j]).sum()
            if zsum > 0:
                p_f[t] += p_e[t, j] * f[t] * we[j] / zsum
    p_a = p_f[:, :, None, None] * a / np.maximum(a.sum(axis=(2, 3), keepdims=True), 1e-300)
    return p_a.sum(1)


def clip(seed: int, shape: tuple[int, ...]) -> Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("seed", "target"), [(0, 1), (3, 0), (6, 0)])
def test_eb_r_on_a_tiny_cnn_lstm_by_hand(reg, seed, target):
    net, video = TinyCNNLSTM(seed), clip(seed, (3, 4, 4, 3))
    got = run(reg, VideoClassifier(net), video, target, layer="conv")
    expect = np_tiny(net, video, target)
    assert np.isfinite(expect).all() and expect.sum() > 0
    np.testing.assert_allclose(got.values.numpy(), expect, rtol=1e-3, atol=1e-7)
    assert got.meta["layers_met"]["lstm"] == "ReLULSTM"
    assert expect[:-1].sum() > 0  # earlier frames got MWP through the cell state


def test_plain_eb_refuses_the_lstm_and_eb_r_refuses_a_tanh_lstm(reg):
    with pytest.raises(ModelError, match=r"lstm \(ReLULSTM \(recurrent layer"):
        run(reg, VideoClassifier(TinyCNNLSTM()), clip(0, (3, 4, 4, 3)), 0, layer="conv", recurrent=False)

    class Tanh(TinyCNNLSTM):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 2, batch_first=True)  # type: ignore[assignment]

    with pytest.raises(ModelError, match=r"ReLU cell activations"):
        run(reg, VideoClassifier(Tanh()), clip(0, (3, 4, 4, 3)), 0, layer="conv")
