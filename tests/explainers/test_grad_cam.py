"""Grad-CAM (Selvaraju et al. Eq. 1-2; STEP journal Eq. 28) against hand computations."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import removalx
from removalx.core.classifier import VideoClassifier
from removalx.errors import ConfigError, ModelError
from removalx.models import load_model
from removalx.testing.data import tiny_video

# Hand-set weights: A = W (x - 0.5) (a 1x1x1 convolution, 3 -> 2 channels; centred so that A and
# the map take both signs), y = V mean(A^2) + b.
W = torch.tensor([[1.0, -0.5, 0.25], [-0.3, 0.8, 0.6]])
V = torch.tensor([[1.5, -2.0], [-1.0, 0.5]])
B = torch.tensor([0.1, -0.2])


class SquareNet(nn.Module):
    """Tiny 3D CNN: ``A = conv(x - 0.5)`` (1x1x1, weights W), ``logits = V mean_{t,h,w}(A^2) + b``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 2, kernel_size=1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(W.view(2, 3, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        a = self.conv(x - 0.5)
        return (a * a).mean(dim=(2, 3, 4)) @ V.T + B


class FrameNet(nn.Module):
    """Frame-wise 2D conv (weights W) and a head that only looks at frame 2: a CNN-RNN stand-in.

    ``loop=False`` runs the conv once on ``[B*T, C, H, W]``; ``loop=True`` once per frame.
    """

    def __init__(self, loop: bool = False) -> None:
        super().__init__()
        self.loop = loop
        self.conv = nn.Conv2d(3, 2, kernel_size=1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(W.view(2, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        x = x - 0.5
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        if self.loop:
            a = torch.stack([self.conv(x[:, :, i]) for i in range(t)], 1)
        else:
            a = self.conv(frames).view(b, t, 2, h, w)
        return (a[:, 2] ** 2).mean(dim=(2, 3)) @ V.T + B


def clip(seed: int = 0) -> Tensor:
    """``float[4, 8, 8, 3]`` uniform in [0, 1]."""
    return torch.rand(4, 8, 8, 3, generator=torch.Generator().manual_seed(seed))


def run(reg, model, video, target, **cfg):
    recipe = {"name": "g", "seed": 0, "explainer": {"name": "grad_cam", **cfg}}
    return removalx.Explainer.from_recipe(recipe, registry=reg, progress=False).explain(model, video, target)


def hand_activation(video: Tensor) -> Tensor:
    """``A[t, k, i, j] = sum_c W[k, c] (x[t, i, j, c] - 0.5)``."""
    return torch.einsum("thwc,kc->tkhw", video.double() - 0.5, W.double())


@pytest.mark.parametrize("target", [0, 1])
def test_grad_cam_logit_space_time_by_hand(reg, target):
    video = clip()
    a = hand_activation(video)  # [T, K, H, W]
    n = a.shape[0] * a.shape[2] * a.shape[3]
    # dy_c / dA_k = 2 V[c, k] A_k / N, so alpha_k = mean over t, i, j = 2 V[c, k] mean(A_k) / N
    alpha = 2 * V[target].double() * a.mean(dim=(0, 2, 3)) / n
    cam = torch.relu((alpha[None, :, None, None] * a).sum(1))
    got = run(reg, VideoClassifier(SquareNet()), video, target)  # defaults: logit, space_time
    assert (
        got.meta["layer"] == "conv" and got.meta["layer_shape"] == (4, 8, 8) and got.meta["output"] == "logit"
    )
    torch.testing.assert_close(got.values, cam.float(), rtol=1e-4, atol=1e-7)
    assert float(cam.max()) > 0 and float(cam.min()) == 0.0  # the ReLU bites on this clip


def test_grad_cam_per_frame_pooling_and_probability_by_hand(reg):
    video, target = clip(1), 1
    a = hand_activation(video)
    n = a.shape[0] * a.shape[2] * a.shape[3]
    feats = (a * a).mean(dim=(0, 2, 3))
    p = torch.softmax(feats @ V.T.double() + B.double(), 0)
    # d p_c / dA_k = p_c (dy_c/dA_k - sum_j p_j dy_j/dA_k) = p_c 2 (V[c, k] - sum_j p_j V[j, k]) A_k / N
    coef = p[target] * 2 * (V[target].double() - p @ V.double()) / n
    alpha_t = coef[None, :] * a.mean(dim=(2, 3))  # per frame: mean over H, W only
    cam = torch.relu((alpha_t[:, :, None, None] * a).sum(1))
    got = run(reg, VideoClassifier(SquareNet()), video, target, output="probability", pooling="space")
    torch.testing.assert_close(got.values, cam.float(), rtol=1e-4, atol=1e-9)
    raw = run(
        reg, VideoClassifier(SquareNet()), video, target, output="probability", pooling="space", relu=False
    )
    torch.testing.assert_close(
        raw.values, (alpha_t[:, :, None, None] * a).sum(1).float(), rtol=1e-4, atol=1e-9
    )


@pytest.mark.parametrize("loop", [False, True])
def test_frame_wise_2d_layer_keeps_the_frame_order(reg, loop):
    video, target = clip(2), 0
    a = hand_activation(video)
    model = VideoClassifier(FrameNet(loop=loop))
    # only frame 2 reaches the logits: per-frame alphas are 0 elsewhere
    got = run(reg, model, video, target, pooling="space", relu=False)
    assert got.meta["layer"] == "conv" and got.meta["layer_shape"] == (4, 8, 8)
    alpha2 = 2 * V[target].double() * a[2].mean(dim=(1, 2)) / 64
    expect = torch.zeros(4, 8, 8, dtype=torch.float64)
    expect[2] = (alpha2[:, None, None] * a[2]).sum(0)
    torch.testing.assert_close(got.values, expect.float(), rtol=1e-4, atol=1e-7)
    # space_time: alpha_k = that gradient averaged over all 4 frames, applied to every frame
    st = run(reg, model, video, target, relu=False)
    torch.testing.assert_close(
        st.values, ((alpha2 / 4)[None, :, None, None] * a).sum(1).float(), rtol=1e-4, atol=1e-7
    )


def test_upsampling_modes_by_hand():
    from removalx_plugins.explainers.grad_cam import upsample_map

    cam = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])  # [T'=2, 2, 2]
    near = upsample_map(cam, (4, 2, 2), "nearest_time")  # frames 0, 0, 1, 1 (the authors' repeat)
    torch.testing.assert_close(near, cam[[0, 0, 1, 1]])
    tri = upsample_map(cam, (4, 2, 2), "trilinear")  # half-pixel centres: t = -0.25, 0.25, 0.75, 1.25
    torch.testing.assert_close(
        tri, torch.stack([cam[0], cam[0], cam[1], cam[1]]) + torch.tensor([0, 1, -1, 0.0]).view(4, 1, 1)
    )
    big = upsample_map(cam, (2, 4, 4), "nearest_time")
    assert big.shape == (2, 4, 4) and float(big[0, 0, 0]) == 1.0 and float(big[0, 0, 1]) == 1.25  # bilinear


def test_grad_cam_on_the_zoo_cnn_gru(reg):
    from removalx.zoo.data import demo_clip

    def ring(values: Tensor) -> float:
        top = values.flatten().topk(values.numel() // 10).indices
        return float(demo.evidence.flatten()[top].float().sum() / demo.evidence.sum())

    model, demo = load_model("zoo:cnn_gru"), demo_clip()  # 16 x 112 x 112, resized to 16 x 56 x 56 inside
    # the default layer: the frame CNN's output that spatial_pool feeds to the GRU (issue 27; was
    # features.2.0, the last Conv2d in registration order, before its BatchNorm and ReLU)
    a = run(reg, model, demo.video, demo.label, relu=False)
    assert a.values.shape == (16, 112, 112) and torch.isfinite(a.values).all()
    assert a.meta["layer"] == "features" and a.meta["layer_shape"] == (16, 7, 7)  # frames stacked in time
    # on the rectified features sum_k alpha_k A_k is negative everywhere (so the ReLU map is 0) and
    # most negative on the ring: measured 0.95 of the ring in the lowest 10 % (chance 0.10)
    assert float(a.values.max()) < 0 and ring(-a.values) > 0.5
    conv = run(reg, model, demo.video, demo.label, layer="features.2.0")  # the conv before BN + ReLU
    assert (conv.values >= 0).all() and float(conv.values.max()) > 0
    assert ring(conv.values) > 0.5  # measured 1.00
    small = run(reg, model, tiny_video(frames=4, size=16), 0, layer="features.2")  # a block, 4-frame clip
    assert small.values.shape == (4, 16, 16) and small.meta["layer_shape"] == (16, 7, 7)


def test_layers_without_a_spatio_temporal_output_are_refused(reg):
    video = clip()
    with pytest.raises(ConfigError, match="expected one"):
        run(
            reg, load_model("zoo:cnn_gru"), tiny_video(frames=4, size=16), 0, layer="embed"
        )  # [16, 96]: no space
    with pytest.raises(ConfigError, match="conv"):
        run(reg, VideoClassifier(SquareNet()), video, 0, layer="nope")

    class NoConv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x: Tensor) -> Tensor:
            return self.fc(x.mean(dim=(2, 3, 4)))

    with pytest.raises(ModelError, match=r"no nn\.Conv3d or nn\.Conv2d"):
        run(reg, VideoClassifier(NoConv()), video, 0)
