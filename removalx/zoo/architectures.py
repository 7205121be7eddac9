"""The zoo's architectures: R3DTiny, CNNGRU, CNNLSTM, TinyTimeSformer, and their input constants.

Split from :mod:`removalx.zoo.models` (which re-exports every name) so that the model
registries (the demo zoo and :mod:`removalx.zoo.bench`) can import the classes without an
import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from removalx.errors import ModelError
from removalx.zoo.recurrent import ReLULSTM

__all__ = [
    "CNNGRU",
    "CNNLSTM",
    "MEAN",
    "NATIVE_SIZE",
    "STD",
    "WEIGHTS_DIR",
    "R3DTiny",
    "TinyTimeSformer",
]

WEIGHTS_DIR: Path = Path(__file__).parent / "weights"

#: Native input size ``(T, H, W)`` of the zoo models (inputs are resized to it).
NATIVE_SIZE: tuple[int, int, int] = (16, 56, 56)
#: Per-channel normalisation applied inside every model.
MEAN: tuple[float, float, float] = (0.45, 0.45, 0.45)
STD: tuple[float, float, float] = (0.25, 0.25, 0.25)


class _ZooBase(nn.Module):
    """Shared input handling: check the shape, resize to ``input_size``, normalise."""

    def __init__(self, num_classes: int, input_size: tuple[int, int, int]) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.input_size = tuple(int(s) for s in input_size)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1, 1), persistent=False)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Resize ``x`` (BCTHW) to ``input_size`` and normalise it."""
        if x.dim() != 5 or x.shape[1] != 3:
            raise ModelError(
                f"{type(self).__name__} expects float[B, 3, T, H, W] (BCTHW), got shape {tuple(x.shape)}.",
                "Permute a THWC clip with video.permute(3, 0, 1, 2).unsqueeze(0).",
            )
        x = x.float()
        if tuple(x.shape[2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="trilinear", align_corners=False)
        mean, std = torch.as_tensor(self.mean), torch.as_tensor(self.std)
        return (x - mean) / std


# ----------------------------------------------------------------------------- R3D


def _conv_bn(
    cin: int,
    cout: int,
    stride: int | tuple[int, ...] = (1, 1, 1),
    conv: Callable[..., nn.Module] = nn.Conv3d,
    norm: Callable[[int], nn.Module] = nn.BatchNorm3d,
) -> nn.Sequential:
    """3x3(x3) convolution (padding 1, no bias), batch norm, ReLU; 2D with ``nn.Conv2d, nn.BatchNorm2d``."""
    return nn.Sequential(
        conv(cin, cout, 3, stride=stride, padding=1, bias=False),
        norm(cout),
        nn.ReLU(inplace=True),
    )


class _Res3d(nn.Module):
    """Residual block: two 3x3x3 convs with an optional strided 1x1x1 projection."""

    def __init__(self, cin: int, cout: int, stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, stride)
        self.conv2 = nn.Sequential(nn.Conv3d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout))
        self.shortcut: nn.Module = nn.Identity()
        if cin != cout or stride != (1, 1, 1):
            self.shortcut = nn.Sequential(
                nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class R3DTiny(_ZooBase):
    """Small R3D-style 3D CNN: ``stem -> layer1 -> layer2 -> layer3 -> pool -> fc``.

    Parameters
    ----------
    num_classes : int, default 4
        Number of output logits ``K``.
    input_size : tuple of int, default NATIVE_SIZE
        ``(T, H, W)`` the input is resized to.
    width : int, default 16
        Channels of ``stem``/``layer1``; ``layer2`` and ``layer3`` use 2x and 4x.

    Notes
    -----
    Grad-CAM style methods can target ``layer3`` (``[B, 4*width, T/8, H/8, W/8]`` of the resized input).
    """

    def __init__(
        self, num_classes: int = 4, input_size: tuple[int, int, int] = NATIVE_SIZE, width: int = 16
    ) -> None:
        super().__init__(num_classes, input_size)
        w = width
        self.stem = _conv_bn(3, w, stride=(2, 2, 2))
        self.layer1 = _Res3d(w, w, (1, 1, 1))
        self.layer2 = _Res3d(w, 2 * w, (2, 2, 2))
        self.layer3 = _Res3d(2 * w, 4 * w, (2, 2, 2))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prepare(x)
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(self.pool(x).flatten(1))


# ----------------------------------------------------------------------------- CNN + GRU


class _FrameCNN(_ZooBase):
    """Per-frame 2D CNN (with coordinate channels) and embedding, shared by the CNN-RNN models."""

    def __init__(self, num_classes: int, input_size: tuple[int, int, int], width: int, hidden: int) -> None:
        super().__init__(num_classes, input_size)
        w = width

        def block(cin: int, cout: int) -> nn.Sequential:
            return _conv_bn(cin, cout, 2, nn.Conv2d, nn.BatchNorm2d)

        self.features = nn.Sequential(block(5, w), block(w, 2 * w), block(2 * w, 2 * w))
        self.spatial_pool = nn.AdaptiveAvgPool2d(4)
        self.embed = nn.Sequential(nn.Linear(2 * w * 16, hidden), nn.ReLU(inplace=True))

    def frame_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Clip ``[B, 3, T, H, W]`` -> per-frame embeddings ``[B, T', hidden]`` (after resizing)."""
        x = self.prepare(x)
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        ys = torch.linspace(-1, 1, h, device=x.device).view(1, 1, h, 1).expand(b * t, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=x.device).view(1, 1, 1, w).expand(b * t, 1, h, w)
        feats = self.spatial_pool(self.features(torch.cat([frames, xs, ys], dim=1)))
        return self.embed(feats.flatten(1)).view(b, t, -1)


class CNNGRU(_FrameCNN):
    """Per-frame 2D CNN (with coordinate channels) followed by a GRU over time.

    Parameters
    ----------
    num_classes, input_size :
        As for :class:`R3DTiny`.
    width : int, default 16
        Channels of the first conv layer (then 2x, 2x).
    hidden : int, default 96
        GRU hidden size.

    Notes
    -----
    Two extra input channels hold the x and y pixel coordinates so that pooled per-frame
    features can encode *where* things are; the GRU turns positions into motion.
    """

    def __init__(
        self,
        num_classes: int = 4,
        input_size: tuple[int, int, int] = NATIVE_SIZE,
        width: int = 16,
        hidden: int = 96,
    ) -> None:
        super().__init__(num_classes, input_size, width, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.frame_sequence(x))
        return self.fc(out[:, -1])


class CNNLSTM(_FrameCNN):
    """Per-frame 2D CNN (as :class:`CNNGRU`) followed by a ReLU LSTM; logits of the last step.

    The tiny counterpart of the VGG16-LSTM of Bargal et al. (CVPR 2018): frame features feed a
    one-layer :class:`~removalx.zoo.recurrent.ReLULSTM` (ReLU cell activations, as in the
    authors' code), and the classifier reads the last hidden state (the time step EB-R
    propagates from in the authors' demo).

    Parameters
    ----------
    num_classes, input_size, width :
        As for :class:`CNNGRU`.
    hidden : int, default 96
        LSTM hidden size (and frame embedding size).
    """

    def __init__(
        self,
        num_classes: int = 4,
        input_size: tuple[int, int, int] = NATIVE_SIZE,
        width: int = 16,
        hidden: int = 96,
    ) -> None:
        super().__init__(num_classes, input_size, width, hidden)
        self.lstm = ReLULSTM(hidden, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.frame_sequence(x))
        return self.fc(out[:, -1])


# ----------------------------------------------------------------------------- TimeSformer


class _DividedBlock(nn.Module):
    """TimeSformer block: temporal attention, then spatial attention, then an MLP (pre-norm)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm_t = nn.LayerNorm(dim)
        self.attn_t = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_s = nn.LayerNorm(dim)
        self.attn_s = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_m = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, n, d = x.shape
        xt = x.transpose(1, 2).reshape(b * n, t, d)  # attend over time at each patch position
        h = self.norm_t(xt)
        xt = xt + self.attn_t(h, h, h, need_weights=False)[0]
        xs = xt.view(b, n, t, d).transpose(1, 2).reshape(b * t, n, d)  # attend over space per frame
        h = self.norm_s(xs)
        xs = xs + self.attn_s(h, h, h, need_weights=False)[0]
        xs = xs + self.mlp(self.norm_m(xs))
        return xs.view(b, t, n, d)


class TinyTimeSformer(_ZooBase):
    """Tiny TimeSformer with divided space-time attention and mean pooling.

    Parameters
    ----------
    num_classes, input_size :
        As for :class:`R3DTiny`; H and W of ``input_size`` must be divisible by ``patch``, T by
        ``tubelet``.
    patch : int, default 8
        Spatial patch size.
    tubelet : int, default 2
        Frames per token (patches are ``tubelet x patch x patch`` tubes).
    dim : int, default 64
        Token width.
    depth : int, default 2
        Number of divided attention blocks.
    heads : int, default 4
        Attention heads.
    """

    def __init__(
        self,
        num_classes: int = 4,
        input_size: tuple[int, int, int] = NATIVE_SIZE,
        patch: int = 8,
        tubelet: int = 2,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
    ) -> None:
        super().__init__(num_classes, input_size)
        t, h, w = self.input_size
        if h % patch or w % patch:
            raise ModelError(f"input_size {self.input_size} is not divisible by patch={patch}.", None)
        if t % tubelet:
            raise ModelError(f"input_size {self.input_size} is not divisible by tubelet={tubelet}.", None)
        self.patch_embed = nn.Conv3d(3, dim, (tubelet, patch, patch), stride=(tubelet, patch, patch))
        self.pos_space = nn.Parameter(torch.zeros(1, 1, (h // patch) * (w // patch), dim))
        self.pos_time = nn.Parameter(torch.zeros(1, t // tubelet, 1, dim))
        nn.init.trunc_normal_(self.pos_space, std=0.02)
        nn.init.trunc_normal_(self.pos_time, std=0.02)
        self.blocks = nn.ModuleList([_DividedBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(self.prepare(x))  # [B, D, T, h, w]
        tokens = x.flatten(3).permute(0, 2, 3, 1)  # [B, T, N, D]
        tokens = tokens + self.pos_space + self.pos_time
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens.mean(dim=(1, 2))))


# ----------------------------------------------------------------------------- registry

#: Zoo registry: name -> (constructor, one-line description).
