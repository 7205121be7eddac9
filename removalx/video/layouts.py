"""Captum-style inputs of :meth:`removalx.Explainer.explain`: clip layouts, batches and targets.

A Captum user holds the model's input, ``[1, C, T, H, W]`` for torchvision video models, and a
target tensor. :func:`split_clips` turns any supported layout into the video contract
(``[T, H, W, C]`` clips) and :func:`split_targets` turns an int, a tensor, a list or ``None``
into one target per clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from removalx.errors import TargetError, VideoError, short_repr

__all__ = ["BATCH_LAYOUTS", "CLIP_LAYOUTS", "split_clips", "split_targets"]

#: Layouts of one clip and their permutation to ``T, H, W, C``.
CLIP_LAYOUTS = {"THWC": (0, 1, 2, 3), "CTHW": (1, 2, 3, 0), "TCHW": (0, 2, 3, 1)}
#: Layouts of a batch of clips and their permutation to ``B, T, H, W, C``.
BATCH_LAYOUTS = {"BTHWC": (0, 1, 2, 3, 4), "BCTHW": (0, 2, 3, 4, 1), "BTCHW": (0, 1, 3, 4, 2)}
#: Where each batch layout keeps the channels.
_CHANNEL_AXIS = {"BTHWC": 4, "BCTHW": 1, "BTCHW": 2}


def _as_tensor(video: Any) -> Any:
    if isinstance(video, np.ndarray) and video.dtype != object:
        return torch.from_numpy(np.ascontiguousarray(video))
    return video


def _infer_batch_layout(shape: tuple[int, ...]) -> str:
    found = [name for name, axis in _CHANNEL_AXIS.items() if shape[axis] in (1, 3)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1 and "BTHWC" in found and shape[4] == 3:
        return "BTHWC"  # removalx's own layout wins a tie (e.g. T = 3)
    what = "no axis of 3 (or 1) colour channels" if not found else f"several candidates ({', '.join(found)})"
    raise VideoError(
        f"Cannot tell the layout of a 5-dimensional input of shape {shape}: {what}.",
        "Pass layout='BCTHW' (torchvision, Captum), 'BTCHW' (Hugging Face) or 'BTHWC' (removalx).",
    )


def split_clips(video: Any, layout: str | None = None) -> tuple[list[Any], bool]:
    """Clips ``[T, H, W, C]`` of ``video`` and whether it was a batch.

    Parameters
    ----------
    video : Tensor or ndarray
        One clip (``THWC``, ``CTHW``, ``TCHW``) or a batch (``BTHWC``, ``BCTHW``, ``BTCHW``).
    layout : str, optional
        The layout; default ``THWC`` for 4 dimensions and inferred from the channel axis
        (3 or 1 values) for 5.

    Returns
    -------
    (list, bool)
        The clips (views, not yet validated: :func:`removalx.video.io.validate_video` checks each)
        and ``True`` for a batch.
    """
    video = _as_tensor(video)
    valid = ", ".join([*CLIP_LAYOUTS, *BATCH_LAYOUTS])
    if layout is not None:
        key = str(layout).upper()
        if key not in CLIP_LAYOUTS and key not in BATCH_LAYOUTS:
            raise VideoError(f"Unknown layout {short_repr(layout, 40)}; expected one of {valid}.")
        layout = key
    if not isinstance(video, Tensor):
        return [video], False  # validate_video explains what a clip must be
    if layout is None:
        if video.dim() != 5:
            return [video], False
        layout = _infer_batch_layout(tuple(video.shape))
    want = 4 if layout in CLIP_LAYOUTS else 5
    if video.dim() != want:
        raise VideoError(
            f"layout={layout!r} needs a {want}-dimensional input, got shape {tuple(video.shape)}.",
            f"Pass the layout of the input (one of {valid}).",
        )
    if layout in CLIP_LAYOUTS:
        return [video.permute(*CLIP_LAYOUTS[layout])], False
    if video.shape[0] == 0:
        raise VideoError(f"The batch is empty (shape {tuple(video.shape)}).", "Pass at least one clip.")
    batch = video.permute(*BATCH_LAYOUTS[layout])
    return list(batch.unbind(0)), True


def _one_target(value: Any, where: str) -> int | str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Tensor):
        if value.numel() != 1 or value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise TargetError(
                f"{where} must be one integer class index, got a {str(value.dtype).replace('torch.', '')} "
                f"tensor of shape {tuple(value.shape)}.",
                "Pass e.g. torch.tensor(3), or one index per clip for a batch.",
            )
        return int(value.reshape(()).item())
    if isinstance(value, np.ndarray) and value.size == 1 and np.issubdtype(value.dtype, np.integer):
        return int(value.reshape(()))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise TargetError(
        f"{where} must be a class index (int, integer tensor), a class name or None, got {short_repr(value, 60)}.",
        "Pass an int in [0, K), or None for the top class.",
    )


def split_targets(target: Any, n: int) -> list[int | str | None]:
    """One target per clip: a single target repeats, a sequence or tensor of ``n`` values splits.

    Raises :class:`~removalx.errors.TargetError` for a sequence of another length or a value
    that is not a class index, a class name or ``None``.
    """
    if isinstance(target, np.ndarray):
        target = torch.from_numpy(target) if target.dtype != object else list(target)
    many = (isinstance(target, Tensor) and target.numel() != 1) or (
        isinstance(target, Sequence) and not isinstance(target, str)
    )
    if isinstance(target, Tensor) and target.numel() == 1 and target.dim() == 1 and n > 1:
        many = False
    if not many:
        return [_one_target(target, "target")] * n
    values = list(target.reshape(-1).unbind(0)) if isinstance(target, Tensor) else list(target)
    if isinstance(target, Tensor) and target.dim() > 1:
        raise TargetError(
            f"target must be one index or one per clip, got a tensor of shape {tuple(target.shape)}.",
            f"Pass a tensor of shape [{n}] (one class per clip) or one index.",
        )
    if len(values) != n:
        raise TargetError(
            f"Got {len(values)} targets for {n} clip{'s' if n != 1 else ''}.",
            f"Pass one target for every clip ({n}) or a single target for all.",
        )
    return [_one_target(v, f"target[{i}]") for i, v in enumerate(values)]
