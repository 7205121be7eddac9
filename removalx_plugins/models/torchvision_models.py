"""Model adapter ``torchvision``: the Kinetics-400 video classifiers of ``torchvision.models.video``.

``torchvision:r3d_18`` builds the architecture with ``weights=None`` (nothing is ever
downloaded) and loads a local weights file if given. The wrapper gets each architecture's
Kinetics-400 normalisation, input size and class names from torchvision's weights metadata,
so clips of any size can be explained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import field_validator
from torch import nn

from removalx.plugin import ModelConfig, ModelError, VideoClassifier, hookimpl

from ._weights import load_weights, resolve_device, warn_random_weights

__all__ = ["ARCHS", "TorchvisionArch", "TorchvisionConfig", "make_torchvision_model"]

#: Kinetics-400 normalisation of the ResNet-style models and S3D (torchvision weights meta).
_KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
_KINETICS_STD = (0.22803, 0.22145, 0.216989)


@dataclass(frozen=True)
class TorchvisionArch:
    """One torchvision video architecture.

    Attributes
    ----------
    builder, weights_enum : str
        Names in ``torchvision.models.video``.
    input_size : tuple of int
        ``(T, H, W)`` the Kinetics-400 weights expect (crop size of the weights' transforms).
    mean, std : tuple of float
        Normalisation of the weights' transforms.
    """

    builder: str
    weights_enum: str
    input_size: tuple[int, int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


#: Supported architectures. Spatial sizes are the ``crop_size`` of the weights' transforms;
#: T is 16 for all (the clip length torchvision evaluates r3d/mc3/r2plus1d/MViT with; S3D
#: needs >= 14 frames and was evaluated on 128, Swin3D on 32 -- override with ``input_size``).
ARCHS: dict[str, TorchvisionArch] = {
    "r3d_18": TorchvisionArch("r3d_18", "R3D_18_Weights", (16, 112, 112), _KINETICS_MEAN, _KINETICS_STD),
    "mc3_18": TorchvisionArch("mc3_18", "MC3_18_Weights", (16, 112, 112), _KINETICS_MEAN, _KINETICS_STD),
    "r2plus1d_18": TorchvisionArch(
        "r2plus1d_18", "R2Plus1D_18_Weights", (16, 112, 112), _KINETICS_MEAN, _KINETICS_STD
    ),
    "s3d": TorchvisionArch("s3d", "S3D_Weights", (16, 224, 224), _KINETICS_MEAN, _KINETICS_STD),
    "mvit_v1_b": TorchvisionArch(
        "mvit_v1_b", "MViT_V1_B_Weights", (16, 224, 224), (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
    ),
    "mvit_v2_s": TorchvisionArch(
        "mvit_v2_s", "MViT_V2_S_Weights", (16, 224, 224), (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)
    ),
    "swin3d_t": TorchvisionArch(
        "swin3d_t", "Swin3D_T_Weights", (16, 224, 224), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ),
}

#: MViT uses absolute positional embeddings: it only runs at its native (T, H, W).
_FIXED_SIZE = ("mvit_v1_b", "mvit_v2_s")


class TorchvisionConfig(ModelConfig):
    """Options of the ``torchvision`` model adapter.

    Attributes
    ----------
    target : str
        Architecture: one of ``r3d_18``, ``mc3_18``, ``r2plus1d_18``, ``s3d``, ``mvit_v1_b``,
        ``mvit_v2_s``, ``swin3d_t``.
    weights : str or None
        Path to a state_dict (or a checkpoint dict with a ``state_dict``/``model`` key) for
        the architecture with 400 classes (or ``num_classes``); ``"none"`` or ``None``
        (default) for random weights, with a loud warning.
    device : str or None
        Where to run (default: CUDA when available, else CPU).
    input_size : list of int or None
        ``[T, H, W]`` clips are resized to inside the wrapper (default: the architecture's
        native size, see :data:`ARCHS`).
    num_classes : int
        Number of output classes of the head (400 for Kinetics-400 weights).
    """

    input_size: list[int] | None = None
    num_classes: int = 400

    @field_validator("input_size")
    @classmethod
    def _check_input_size(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) != 3 or any(int(s) < 1 for s in v)):
            raise ValueError(f"input_size must be [T, H, W] of positive ints, got {v}")
        return v

    @field_validator("num_classes")
    @classmethod
    def _check_num_classes(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"num_classes must be >= 1, got {v}")
        return v


def _builder(arch: TorchvisionArch) -> tuple[Callable[..., nn.Module], Any]:
    from torchvision.models import video as tv_video

    builder = getattr(tv_video, arch.builder, None)
    weights_enum = getattr(tv_video, arch.weights_enum, None)
    if builder is None:
        import torchvision

        raise ModelError(
            f"torchvision {torchvision.__version__} has no video model {arch.builder!r}.",
            "Upgrade torchvision (>= 0.15 has all of r3d_18, mc3_18, r2plus1d_18, s3d, mvit_*, swin3d_t).",
        )
    return builder, weights_enum


def _categories(weights_enum: Any, num_classes: int) -> list[str] | None:
    """Kinetics-400 class names from the weights' metadata (shipped with torchvision, no download)."""
    if weights_enum is None or num_classes != 400:
        return None
    try:
        cats = list(weights_enum.KINETICS400_V1.meta["categories"])
    except (AttributeError, KeyError):
        return None
    return cats if len(cats) == 400 else None


def make_torchvision_model(config: TorchvisionConfig) -> VideoClassifier:
    """A torchvision Kinetics-400 video model (r3d_18, s3d, mvit_v2_s, swin3d_t, ...)."""
    target = config.target.strip().lower()
    if target not in ARCHS:
        raise ModelError(
            f"Unknown torchvision video architecture {config.target!r}. Valid: {', '.join(ARCHS)}.",
            "Use e.g. 'torchvision:r3d_18'; for other models use the 'python' adapter "
            "('python:my_models.py:make_model').",
        )
    arch = ARCHS[target]
    input_size = tuple(config.input_size) if config.input_size is not None else arch.input_size
    if target in _FIXED_SIZE and input_size != arch.input_size:
        raise ModelError(
            f"{target} only runs at its native input size {list(arch.input_size)} (absolute positional "
            f"embeddings), got input_size={list(input_size)}.",
            "Drop input_size: clips of any size are resized to the native size inside the wrapper.",
        )
    device = resolve_device(config.device)
    builder, weights_enum = _builder(arch)
    module = builder(weights=None, num_classes=config.num_classes)
    weights = config.weights
    meta: dict[str, Any] = {}
    if weights is None:
        warn_random_weights(
            f"torchvision:{target}", "no weights given; torchvision weights are never downloaded"
        )
    elif weights.strip().lower() == "none":
        warn_random_weights(f"torchvision:{target}", "weights='none'")
    else:
        meta = load_weights(module, weights, f"torchvision:{target}")
    return VideoClassifier(
        module,
        layout="BCTHW",
        mean=arch.mean,
        std=arch.std,
        input_size=input_size,
        device=device,
        class_names=meta.get("class_names") or _categories(weights_enum, config.num_classes),
        name=f"torchvision:{target}",
    )


@hookimpl
def removalx_register_models(registry: Any) -> None:
    registry.add("torchvision", TorchvisionConfig, make_torchvision_model)
