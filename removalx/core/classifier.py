"""The model contract: :class:`VideoClassifier` (docs/models.md).

Every method sees a model as ``float[B, T, H, W, C]`` in [0, 1] -> logits ``float[B, K]``.
The wrapper owns the layout permute, resizing, normalisation, device and dtype, checks
what the model returns, and counts forward passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from removalx.core.devices import resolve_device
from removalx.errors import ModelError, RemovalxError, TargetError, truncate

__all__ = ["LAYOUTS", "VideoClassifier"]

LAYOUTS = ("BCTHW", "BTCHW", "BTHWC")


class VideoClassifier:
    """Wrap a video model so that it takes ``float[B, T, H, W, C]`` clips in [0, 1].

    Parameters
    ----------
    module : nn.Module or callable
        The model. Called with a tensor in ``layout`` and returns logits ``[B, K]``.
    layout : {"BCTHW", "BTCHW", "BTHWC"}
        Input layout the module expects (torchvision video models: ``BCTHW``).
    mean, std : sequence of float, optional
        Per-channel normalisation applied after scaling to [0, 1] (``(x - mean) / std``).
    input_size : sequence of int, optional
        ``(T, H, W)`` or ``(H, W)`` the module needs; clips are resized to it (trilinear
        in space, nearest in time) inside the wrapper, so attributions stay at the clip's
        own resolution.
    device : str or torch.device, optional
        Where to run. Default: the module's parameter device, else CPU.
    class_names : sequence of str, optional
        Names of the ``K`` classes.
    name : str, optional
        Shown in reports.
    clip_size : sequence of int, optional
        ``(T, H, W)`` or ``(H, W)`` at which to read clips for this model (``removalx explain``
        reads videos at this size unless ``--size``/``--frames`` say otherwise). Default:
        ``input_size``. Zoo and torchvision adapters set it to the model's native size.

    Attributes
    ----------
    n_forward : int
        Number of clips passed through the model since creation or :meth:`reset_count`.
    """

    def __init__(
        self,
        module: nn.Module | Callable[[Tensor], Any],
        layout: str = "BCTHW",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        input_size: Sequence[int] | None = None,
        device: str | torch.device | None = None,
        class_names: Sequence[str] | None = None,
        name: str | None = None,
        clip_size: Sequence[int] | None = None,
    ) -> None:
        if isinstance(module, VideoClassifier):
            raise ModelError("VideoClassifier got a VideoClassifier.", "Pass the inner module.")
        if not callable(module):
            raise ModelError(
                f"Expected an nn.Module or a callable returning logits [B, K], got {type(module).__name__}.",
                "Pass the model object itself.",
            )
        layout = layout.upper()
        if layout not in LAYOUTS:
            raise ModelError(
                f"Unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}.",
                "torchvision video models use 'BCTHW'.",
            )
        self.module = module
        self.layout = layout
        self.is_module = isinstance(module, nn.Module)
        if device is None:
            device = _module_device(module) if isinstance(module, nn.Module) else torch.device("cpu")
        self.device = resolve_device(device)
        if isinstance(module, nn.Module):
            module.to(self.device)
            module.eval()
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32, device=self.device)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32, device=self.device)
        if self.std is not None and bool((self.std == 0).any()):
            raise ModelError(f"std must be non-zero, got {tuple(std or ())}.")
        self.input_size = None if input_size is None else tuple(int(s) for s in input_size)
        if self.input_size is not None and len(self.input_size) not in (2, 3):
            raise ModelError(f"input_size must be (T, H, W) or (H, W), got {self.input_size}.")
        self.clip_size = tuple(int(s) for s in clip_size) if clip_size is not None else self.input_size
        if self.clip_size is not None and (len(self.clip_size) not in (2, 3) or min(self.clip_size) < 1):
            raise ModelError(f"clip_size must be (T, H, W) or (H, W) of positive ints, got {self.clip_size}.")
        self.class_names = list(class_names) if class_names is not None else None
        self.name = name or (
            type(module).__name__ if self.is_module else getattr(module, "__name__", "model")
        )
        self.n_forward = 0
        self.n_backward = 0
        #: An :class:`~removalx.incremental.IncrementalModel` that gradient-free forward passes
        #: go through while an explanation runs (docs/incremental.md); ``None``: the module.
        self.incremental_engine: Any = None
        #: Number of classes seen on the first call; every later call must return as many.
        self.n_classes: int | None = None

    # -- properties ----------------------------------------------------------------------
    @property
    def differentiable(self) -> bool:
        """True when gradients flow from logits to the input (an ``nn.Module``)."""
        return self.is_module

    def reset_count(self) -> None:
        self.n_forward = 0
        self.n_backward = 0

    # -- forward -------------------------------------------------------------------------
    def preprocess(self, x: Tensor) -> Tensor:
        """``[B, T, H, W, C]`` in [0, 1] -> the module's input (resized, normalised, permuted)."""
        x = x.to(self.device, torch.float32)
        if self.mean is not None:
            x = x - self.mean
        if self.std is not None:
            x = x / self.std
        if self.input_size is not None:
            x = _resize(x, self.input_size)
        if self.layout == "BCTHW":
            return x.permute(0, 4, 1, 2, 3)
        if self.layout == "BTCHW":
            return x.permute(0, 1, 4, 2, 3)
        return x

    def __call__(self, x: Tensor) -> Tensor:
        """Logits ``float32[B, K]`` for clips ``float[B, T, H, W, C]`` in [0, 1]."""
        if x.dim() != 5:
            raise ModelError(
                f"VideoClassifier expects a batch float[B, T, H, W, C], got shape {tuple(x.shape)}.",
                "Add a batch dimension with video[None].",
            )
        out = self._forward(self.preprocess(x))
        if isinstance(out, (tuple, list)):
            out = out[0]
        if hasattr(out, "logits") and not isinstance(out, (Tensor, np.ndarray)):
            out = out.logits
        if isinstance(out, np.ndarray):
            out = torch.from_numpy(out)
        if not isinstance(out, Tensor):
            raise ModelError(
                f"The model returned {type(out).__name__}; expected logits float[B, K] as a tensor.",
                "Make the model return a tensor (or NumPy array) of shape [batch, classes].",
            )
        b = x.shape[0]
        if out.dim() != 2 or out.shape[0] != b:
            raise ModelError(
                f"The model returned shape {tuple(out.shape)} for a batch of {b}; expected [{b}, K].",
                "Return one row of class logits per clip (flatten extra dimensions in the model).",
            )
        if not torch.isfinite(out).all():
            raise ModelError(
                "The model returned NaN or infinite logits.",
                "Check the input normalisation (mean/std/layout) and the model weights.",
            )
        k = int(out.shape[1])
        if self.n_classes is None:
            self.n_classes = k
        elif k != self.n_classes:
            raise ModelError(
                f"Model {self.name} returned {k} classes for a batch of {b}, but {self.n_classes} on its "
                "first call: the number of classes must not change between calls.",
                "Make the model return the same class dimension for every input (no data-dependent heads).",
            )
        self.n_forward += b
        return out.float()

    def _forward(self, inputs: Tensor) -> Any:
        """Call the module; an exception inside it becomes a :class:`ModelError` naming the batch."""
        try:
            engine = self.incremental_engine
            if engine is not None and not torch.is_grad_enabled() and engine.accepts(inputs):
                try:
                    return engine(inputs)
                except Exception:  # never fail where the full forward pass works: stop using it
                    self.incremental_engine = None
            return self.module(inputs)
        except RemovalxError:
            raise
        except Exception as exc:
            shape = "x".join(str(s) for s in inputs.shape)
            out_of_memory = isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()
            fix = (
                "Lower the batch size (--batch-size, or batch_size= in Python); a batch of "
                f"{inputs.shape[0]} clips did not fit."
                if out_of_memory
                else "Check that the model accepts this input (layout, size, dtype), or lower the batch "
                "size (--batch-size) if it only fails on large batches."
            )
            raise ModelError(
                f"Model {self.name} raised {type(exc).__name__} on an input batch of shape {shape} "
                f"(layout {self.layout}, device {self.device}): {truncate(str(exc), 300)}",
                fix,
            ) from exc

    def num_classes(self, video: Tensor) -> int:
        with torch.inference_mode():
            return int(self(video[None]).shape[1])

    def check_target(self, target: int | str | None, logits: Tensor) -> int:
        """Resolve ``target`` (``None`` = top class) against logits ``[1, K]``."""
        k = int(logits.shape[-1])
        if target is None:
            return int(logits[0].argmax().item())
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
            if isinstance(target, str) and self.class_names and target in self.class_names:
                return self.class_names.index(target)
            raise TargetError(
                f"target must be a class index (int) or None, got {target!r}.",
                "Pass an int in [0, K) or None for the top class.",
            )
        if not 0 <= int(target) < k:
            raise TargetError(
                f"target {target} is out of range: the model has {k} classes (0..{k - 1}).",
                "Pass a class index in range, or None for the top class.",
            )
        return int(target)

    def __repr__(self) -> str:
        return f"VideoClassifier({self.name}, layout={self.layout}, device={self.device})"


def _module_device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


def _resize(x: Tensor, size: tuple[int, ...]) -> Tensor:
    """Resize ``[B, T, H, W, C]`` to ``size`` ((T,H,W) or (H,W)); differentiable."""
    b, t, h, w, c = x.shape
    if len(size) == 3:
        tt, hh, ww = size
        if tt != t:
            idx = torch.linspace(0, t - 1, tt, device=x.device).round().long()
            x = x.index_select(1, idx)
            t = tt
    else:
        hh, ww = size
    if (hh, ww) != (h, w):
        y = x.permute(0, 1, 4, 2, 3).reshape(b * t, c, h, w)
        y = F.interpolate(y, size=(hh, ww), mode="bilinear", align_corners=False)
        x = y.reshape(b, t, c, hh, ww).permute(0, 1, 3, 4, 2)
    return x
