"""The default layer of grad_cam / EB / Saliency Tubes: in execution order, on the path into the pooling.

Issue 27 Sec. 1.1: "the last nn.Conv3d" in module registration order read the 1x1x1 projection
of the skip path on ``zoo:r3d_tiny`` and the classifier head on torchvision's S3D. The oracle of
each choice is independent of the chooser: the chosen module's output must be *the very tensor*
the model's head pooling reads (a hook on the pooling's input), the layer pytorch-grad-cam
recommends for ResNets (``layer4``), or a hand-computed Grad-CAM / Saliency Tubes map.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import removalx
from removalx.core.classifier import VideoClassifier
from removalx.models import load_model
from removalx_plugins.explainers.grad_cam import conv_layers
from removalx_plugins.machinery.target_layer import default_layer


def run(reg, model, video, target=0, name="grad_cam", **cfg):
    recipe = {"name": "t", "seed": 0, "explainer": {"name": name, **cfg}}
    return removalx.Explainer.from_recipe(recipe, registry=reg, progress=False).explain(model, video, target)


def rand_clip(t: int, h: int, w: int, seed: int = 0) -> Tensor:
    return torch.rand(t, h, w, 3, generator=torch.Generator().manual_seed(seed))


def same_tensor_as_pool_input(model: VideoClassifier, video: Tensor, layer: str, pool: str) -> bool:
    """Whether ``layer``'s (last) output is the tensor ``pool`` reads, in one plain forward pass."""
    module = model.module
    assert isinstance(module, nn.Module)
    mods = dict(module.named_modules())
    seen: dict[str, Tensor] = {}
    h1 = mods[layer].register_forward_hook(lambda _m, _i, out: seen.__setitem__("layer", out))
    h2 = mods[pool].register_forward_pre_hook(lambda _m, inputs: seen.__setitem__("pool", inputs[0]))
    try:
        with torch.no_grad():
            module(model.preprocess(video[None]))
    finally:
        h1.remove()
        h2.remove()
    return seen["layer"] is seen["pool"] or bool(torch.equal(seen["layer"], seen["pool"]))


def torchvision_model(name: str) -> nn.Module:
    video_models = pytest.importorskip("torchvision.models.video")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return getattr(video_models, name)(weights=None).eval()


# ----------------------------------------------------------------------------- real models


@pytest.mark.parametrize(
    ("arch", "size", "layer", "old"),
    [
        ("r3d_18", (8, 32, 32), "layer4", "layer4.1.conv2.0"),
        ("mc3_18", (8, 32, 32), "layer4", "layer4.1.conv2.0"),
        ("r2plus1d_18", (8, 32, 32), "layer4", "layer4.1.conv2.0.3"),
        ("s3d", (16, 224, 224), "features", "classifier.1"),  # S3D needs T >= 16, H, W >= 224
    ],
)
def test_torchvision_video_models(arch, size, layer, old):
    model = VideoClassifier(torchvision_model(arch))
    video = rand_clip(*size)
    choice = default_layer(model, video)
    assert choice.layer == layer and choice.head == "avgpool" and choice.rank == 5
    assert same_tensor_as_pool_input(model, video, layer, "avgpool")  # the maps the classifier pools
    assert conv_layers(model.module)[-1] == old  # what registration order picked (S3D: the classifier)


@pytest.mark.parametrize(
    ("name", "layer", "pool", "old"),
    [
        ("zoo:r3d_tiny", "layer3", "pool", "layer3.shortcut.0"),
        ("zoo:r3d_tiny_ls", "layer3", "pool", "layer3.shortcut.0"),
        # CNN-RNN: the frame CNN's output, which spatial_pool feeds (flattened) to the GRU
        ("zoo:cnn_gru", "features", "spatial_pool", "features.2.0"),
        ("zoo:cnn_gru_ls", "features", "spatial_pool", "features.2.0"),
    ],
)
def test_zoo_models(name, layer, pool, old):
    model, video = load_model(name), rand_clip(16, 56, 56)
    choice = default_layer(model, video)
    assert choice.layer == layer and choice.head == pool
    assert choice.rank == (4 if "gru" in name else 5)  # frame-wise [B*T', C, H', W'] for the CNN-RNN
    assert same_tensor_as_pool_input(model, video, layer, pool)
    assert conv_layers(model.module)[-1] == old


def test_timesformer_keeps_its_patch_embedding():
    # no pooling module (tokens are averaged with .mean) and no later 5-D output: unchanged
    choice = default_layer(load_model("zoo:timesformer_tiny"), rand_clip(16, 56, 56))
    assert choice.layer == "patch_embed" and choice.head is None and choice.linear == "head"


def grad_cam_by_hand(act: Tensor, grad: Tensor) -> Tensor:
    """Selvaraju et al. Eq. 1-2 on ``[1, C, T', H', W']``: ``ReLU(sum_k mean(dy/dA_k) A_k)``."""
    alpha = grad[0].mean(dim=(1, 2, 3))
    return torch.relu(torch.einsum("k,kthw->thw", alpha, act[0]))


def test_grad_cam_on_r3d_18_reads_what_avgpool_pools(reg):
    model, video, target = VideoClassifier(torchvision_model("r3d_18")), rand_clip(8, 32, 32), 5
    got = run(reg, model, video, target)
    assert got.meta["layer"] == "layer4" and got.meta["layer_shape"] == (1, 2, 2)
    acts: list[Tensor] = []
    module = model.module
    assert isinstance(module, nn.Module)
    handle = module.avgpool.register_forward_pre_hook(lambda _m, inputs: acts.append(inputs[0]))
    try:
        logits = module(model.preprocess(video[None]))
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(logits[0, target], acts)
    cam = grad_cam_by_hand(acts[0].detach(), grad)
    expect = F.interpolate(cam[None, None], size=(8, 32, 32), mode="trilinear", align_corners=False)[0, 0]
    torch.testing.assert_close(got.values, expect, rtol=1e-4, atol=1e-6)


def test_excitation_backprop_at_the_block_conserves_the_mwp(reg):
    # Zhang et al. Eq. 5-7 conserve the total MWP through a full layer; the skip path's projection
    # (the old default) got only its share of the residual sum (0.40 on the demo clip)
    from removalx.zoo.data import demo_clip

    model, demo = load_model("zoo:r3d_tiny"), demo_clip()
    got = run(reg, model, demo.video, demo.label, "excitation_backprop")
    assert got.meta["layer"] == "layer3"
    assert abs(got.meta["mwp_total"] - 1.0) < 1e-4
    old = run(reg, model, demo.video, demo.label, "excitation_backprop", layer="layer3.shortcut.0")
    assert old.meta["mwp_total"] < 0.6


# ----------------------------------------------------------------------------- registration order != execution order


class OutOfOrder(nn.Module):
    """Registered: fc, pool, top, body, down, mix. Run: body -> down -> mix -> top -> pool -> fc.

    Registration order's "last Conv3d" is ``body.0``, its "last AvgPool3d" the trunk's ``down``
    and its "last Linear" the trunk's channel mixer ``mix``; the network's last conv is ``top``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.top = nn.Conv3d(4, 4, 3, padding=1)
        self.body = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU())
        self.down = nn.AvgPool3d((1, 2, 2))
        self.mix = nn.Linear(4, 4)
        gen = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        self.eval()

    def trunk(self, x: Tensor) -> Tensor:
        x = self.down(self.body(x))
        return self.mix(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(torch.relu(self.top(self.trunk(x)))).flatten(1))


def test_out_of_order_registration_grad_cam_by_hand(reg):
    net, video, target = OutOfOrder(), rand_clip(4, 8, 8, seed=1), 2
    assert conv_layers(net)[-1] == "body.0"  # the old default
    got = run(reg, VideoClassifier(net), video, target)
    assert got.meta["layer"] == "top" and got.meta["layer_shape"] == (4, 4, 4)
    # by hand: y_c = sum_k fc[c, k] mean(relu(A_k)) + b_c, so dy/dA_k = fc[c, k] 1[A_k > 0] / N
    with torch.no_grad():
        a = net.top(net.trunk(video.permute(3, 0, 1, 2)[None]))  # [1, 4, 4, 4, 4]
    grad = net.fc.weight.detach()[target].view(1, 4, 1, 1, 1) * (a > 0) / a[0, 0].numel()
    cam = grad_cam_by_hand(a, grad)
    expect = F.interpolate(cam[None, None], size=(4, 8, 8), mode="trilinear", align_corners=False)[0, 0]
    torch.testing.assert_close(got.values, expect, rtol=1e-4, atol=1e-6)
    assert float(cam.max()) > 0
    old = run(reg, VideoClassifier(net), video, target, layer="body.0")
    assert not torch.allclose(old.values, got.values)


def test_out_of_order_registration_saliency_tubes_and_eb(reg):
    net, video, target = OutOfOrder(), rand_clip(4, 8, 8, seed=2), 1
    got = run(reg, VideoClassifier(net), video, target, "saliency_tubes")
    assert got.meta["layer"] == "pool (input)" and got.meta["classifier"] == "fc"  # not down / mix
    with torch.no_grad():
        a = torch.relu(net.top(net.trunk(video.permute(3, 0, 1, 2)[None])))[0]
    cam = torch.einsum("k,kthw->thw", net.fc.weight.detach()[target], a)
    expect = F.interpolate(cam[None, None], size=(4, 8, 8), mode="trilinear", align_corners=False)[0, 0]
    torch.testing.assert_close(got.values, expect, rtol=1e-4, atol=1e-6)
    for name in ("excitation_backprop", "contrastive_eb", "eb_r"):
        default = run(reg, VideoClassifier(net), video, target, name)
        explicit = run(reg, VideoClassifier(net), video, target, name, layer="top")
        assert default.meta["layer"] == "top"
        torch.testing.assert_close(default.values, explicit.values)


# ----------------------------------------------------------------------------- pools that are not the head


class SqueezeExcite(nn.Module):
    """``x * sigmoid(conv(avgpool(x)))``: a global pooling *inside* a block, not the head."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.squeeze = nn.AdaptiveAvgPool3d(1)
        self.excite = nn.Conv3d(c, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.excite(self.squeeze(x)))


class Inception(nn.Module):
    """Two branches concatenated; the second starts with a stride-1 max pooling (S3D's branch3)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.branch0 = nn.Conv3d(c, 2, 1)
        self.branch1 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), nn.Conv3d(c, 2, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x)], dim=1)


class PoolsInside(nn.Module):
    def __init__(self, head: bool) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.MaxPool3d((1, 2, 2)))
        self.block = nn.Sequential(nn.Conv3d(4, 4, 3, padding=1), SqueezeExcite(4), Inception(4))
        self.pool = nn.AdaptiveAvgPool3d(1) if head else None
        self.fc = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.block(self.stem(x))
        pooled = self.pool(x).flatten(1) if self.pool is not None else x.mean(dim=(2, 3, 4))
        return self.fc(pooled)


@pytest.mark.parametrize("head", [True, False])
def test_pools_inside_blocks_are_not_the_head(head):
    model, video = VideoClassifier(PoolsInside(head)), rand_clip(4, 8, 8)
    choice = default_layer(model, video)
    assert choice.layer == "block" and choice.head == ("pool" if head else None)


class LoopedCNNRNN(nn.Module):
    """A frame CNN called once per frame, a per-frame global pooling, a GRU over the frames."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.gru = nn.GRU(4, 5, batch_first=True)
        self.fc = nn.Linear(5, 2)

    def forward(self, x: Tensor) -> Tensor:
        feats = [self.pool(torch.relu(self.encoder(x[:, :, t]))).flatten(1) for t in range(x.shape[2])]
        out, _ = self.gru(torch.stack(feats, 1))
        return self.fc(out[:, -1])


def test_frame_loop_cnn_rnn_reads_every_frame(reg):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = VideoClassifier(LoopedCNNRNN().eval())
    video = rand_clip(5, 8, 8)
    choice = default_layer(model, video)
    assert choice.layer == "encoder" and choice.head == "pool" and choice.rank == 4
    got = run(reg, model, video, 1, relu=False)
    explicit = run(reg, model, video, 1, layer="encoder", relu=False)
    assert got.meta["layer"] == "encoder" and got.meta["layer_shape"] == (5, 8, 8)  # all 5 frame calls
    torch.testing.assert_close(got.values, explicit.values)


# ----------------------------------------------------------------------------- one recorded pass per model


class Counting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.conv = nn.Conv3d(3, 2, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(2, 2)

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


@pytest.mark.parametrize("name", ["grad_cam", "excitation_backprop", "saliency_tubes"])
def test_the_choice_is_recorded_once_per_model_and_clip_shape(reg, name):
    net, video = Counting(), rand_clip(3, 6, 6)
    model = VideoClassifier(net)
    extra = {"classifier": "fc"} if name == "saliency_tubes" else {}
    run(reg, model, video, 0, name, layer="conv", **extra)
    plain = net.calls  # an explicit layer: the pipeline's and the method's passes, no recorded pass
    first = run(reg, model, video, 0, name)
    assert net.calls == 2 * plain + 1  # + the recorded pass
    assert first.meta["n_forward_method"] == 1  # the set-up pass is not the method's cost
    run(reg, model, video, 1, name)
    assert net.calls == 3 * plain + 1  # cached
    run(reg, model, rand_clip(4, 6, 6), 0, name)
    assert net.calls == 4 * plain + 2  # another clip shape: recorded again
