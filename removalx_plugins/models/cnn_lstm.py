"""Model adapter ``cnn_lstm``: the VGG16-LSTM that EB-R and STEP explain (``cnn_lstm:vgg16``).

Bargal et al., "Excitation Backprop for RNNs" (CVPR 2018), define the CNN-RNN the STEP papers
explain ("VGG16LSTM ... as it is defined in [1]", STEP WACV Sec. 4.1): the authors' released
model (``models/VGG16_LSTM/deploy.prototxt``) runs VGG16 on every frame up to ``fc7`` (4096
features, ReLU, dropout 0.5), feeds ``fc7`` to a one-layer LSTM with 256 hidden units and ReLU
cell activations (:class:`removalx.plugin.ReLULSTM`), then dropout 0.5 and a per-step classifier
``fc8-final`` (101 UCF101 classes). Frames are 224x224; STEP samples 16 frames per clip.

Nothing is downloaded: ``weights`` is a local torchvision VGG16 ImageNet state dict (the file
``torchvision.models.vgg16(weights="IMAGENET1K_V1")`` caches, keys ``features.*`` and
``classifier.*``); its ``features`` and ``fc6``/``fc7`` are loaded into the frame CNN, and the
LSTM and classifier start at random (they are trained per dataset). Without ``weights`` every
layer is random, with a loud warning.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from removalx.plugin import ModelConfig, ModelError, ReLULSTM, VideoClassifier, hookimpl, load_plain

from ._weights import resolve_device, warn_random_weights

__all__ = ["VGG16LSTM", "CNNLSTMConfig", "make_cnn_lstm_model"]

#: ImageNet normalisation of torchvision's VGG16 weights.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG16LSTM(nn.Module):
    """VGG16 (to ``fc7``) on every frame, a 256-unit ReLU LSTM over time, a per-step classifier.

    Parameters
    ----------
    num_classes : int, default 101
        Output classes (UCF101 in Bargal et al.).
    hidden : int, default 256
        LSTM hidden units (``lstm1`` of the authors' model).
    readout : {"last", "mean_prob"}, default "last"
        ``"last"``: the logits of the last step (where the authors' EB-R demo puts its top
        signal); ``"mean_prob"``: ``log`` of the softmax probabilities averaged over the steps
        (how the authors' demo and STEP score a clip; EB-R has no rule for it).

    Notes
    -----
    Takes normalised frames ``[B, 3, T, H, W]`` (H, W >= 32) and returns ``[B, num_classes]``.
    Module names follow torchvision's ``vgg16`` (``features``, ``avgpool``, ``classifier``) so its
    state dict loads; ``classifier`` holds fc6, ReLU, dropout, fc7, ReLU, dropout.
    """

    def __init__(self, num_classes: int = 101, hidden: int = 256, readout: str = "last") -> None:
        super().__init__()
        from torchvision.models import vgg16

        vgg = vgg16(weights=None)
        self.features = vgg.features
        self.avgpool = vgg.avgpool
        self.classifier = nn.Sequential(*list(vgg.classifier.children())[:6])
        self.lstm = ReLULSTM(4096, hidden, batch_first=True)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(hidden, num_classes)
        self.readout = readout

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        f = self.classifier(torch.flatten(self.avgpool(self.features(frames)), 1))
        out, _ = self.lstm(f.view(b, t, -1))
        logits = self.fc(self.dropout(out))  # [B, T, K]: one prediction per step
        if self.readout == "mean_prob":
            return torch.log(torch.softmax(logits, dim=-1).mean(dim=1))
        return logits[:, -1]


class CNNLSTMConfig(ModelConfig):
    """Options of the ``cnn_lstm`` adapter (``target``: ``vgg16``).

    ``weights`` is a local torchvision VGG16 ImageNet state dict (``features.*``,
    ``classifier.0/3.*`` are used) or ``None``/``"none"`` for random weights.
    """

    target: str = "vgg16"
    num_classes: int = Field(101, strict=True, ge=1, le=100_000, description="output classes (UCF101: 101)")
    frames: int = Field(
        16, strict=True, ge=1, le=1024, description="frames T the clip is resized to (STEP: 16)"
    )
    size: int = Field(224, strict=True, ge=32, le=1024, description="frame side H = W the clip is resized to")
    readout: Literal["last", "mean_prob"] = Field(
        "last", description="logits of the last step, or log of the step-averaged softmax probabilities"
    )


def _load_vgg(module: VGG16LSTM, weights: str) -> None:
    """Load the ``features`` and fc6/fc7 of a torchvision VGG16 state dict."""
    from pathlib import Path

    path = Path(weights).expanduser()
    fix = "Pass the state dict of torchvision.models.vgg16 (torch.save(vgg16(...).state_dict(), path))."
    if not path.is_file():
        raise ModelError(f"VGG16 weights file {str(path)[:200]} does not exist.", fix)
    state = load_plain(path, ModelError, f"VGG16 weights {str(path)[:200]}", fix)
    if not isinstance(state, dict):
        raise ModelError(
            f"VGG16 weights {str(path)[:200]} hold a {type(state).__name__}, not a state dict.", fix
        )
    own = {k: v for k, v in module.state_dict().items() if k.startswith(("features.", "classifier."))}
    missing = sorted(k for k in own if k not in state)
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or bad:
        raise ModelError(
            f"VGG16 weights {str(path)[:200]} do not fit VGG16: missing {missing[:4]}, shape mismatch {bad[:4]}.",
            fix,
        )
    module.load_state_dict({k: state[k] for k in own}, strict=False)


def make_cnn_lstm_model(config: CNNLSTMConfig) -> VideoClassifier:
    """The VGG16-LSTM of Bargal et al. (CVPR 2018) with the paper's sizes."""
    target = config.target.strip().lower() or "vgg16"
    if target != "vgg16":
        raise ModelError(
            f"Unknown cnn_lstm architecture {config.target[:80]!r}.", "Use 'cnn_lstm:vgg16' (VGG16-LSTM)."
        )
    module = VGG16LSTM(config.num_classes, readout=config.readout)
    if config.weights is None or config.weights.strip().lower() == "none":
        warn_random_weights("cnn_lstm:vgg16", "no VGG16 weights given; nothing is downloaded")
    else:
        _load_vgg(module, config.weights)
        warn_random_weights("cnn_lstm:vgg16 LSTM and classifier", "only the VGG16 frame CNN was loaded")
    return VideoClassifier(
        module.eval(),
        layout="BCTHW",
        mean=_IMAGENET_MEAN,
        std=_IMAGENET_STD,
        input_size=(config.frames, config.size, config.size),
        device=resolve_device(config.device),
        name="cnn_lstm:vgg16",
    )


@hookimpl
def removalx_register_models(registry: Any) -> None:
    registry.add("cnn_lstm", CNNLSTMConfig, make_cnn_lstm_model)
