"""Remove-and-retrain metrics: KAR and ROAR (Hooker et al., NeurIPS 2019).

"A benchmark for interpretability methods in deep neural networks" (Hooker, Erhan,
Kindermans, Kim), Sec. 3: for a fraction ``k`` of the pixels, replace the pixels an
attribution method ranks highest (ROAR, *remove and retrain*) or all the others (KAR, *keep
and retrain*) by an uninformative value -- the per-channel mean of the training set -- in
every training and test image, train the model again from scratch on the modified training
set and report its accuracy on the modified test set. A better ranking removes more of the
evidence (ROAR: accuracy falls faster with ``k``) or keeps more of it (KAR: accuracy stays
higher at small ``k``). The STEP journal paper (Sec. IV-C, Fig. 8) uses KAR on clips at
``k in {0.05, 0.1, 0.3, 0.5, 0.7, 0.9}``; a pixel here is a position ``(t, y, x)`` of the
clip (all channels together).

This module holds the tensor operations (ranking, modifying clips) and the retraining of a
zoo architecture; :mod:`removalx.experiments.retrain` runs them over methods and fractions.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

__all__ = ["keep_mask", "modify_clips", "retrain_accuracy"]


def keep_mask(maps: Tensor, fraction: float, mode: Literal["kar", "roar"]) -> Tensor:
    """Which pixels stay as they are: ``bool[N, T, H, W]``.

    Parameters
    ----------
    maps : Tensor
        ``float[N, T, H, W]`` attribution values (higher = more important).
    fraction : float
        ``k`` in [0, 1]: the share of pixels ranked highest, ``round(k * T * H * W)`` per clip.
    mode : {"kar", "roar"}
        ``kar`` keeps the top ``k`` and replaces the rest; ``roar`` replaces the top ``k``.

    Notes
    -----
    Pixels of equal value are ranked by their position (earlier frame, row, column first),
    so the result is deterministic; non-finite values rank lowest.
    """
    n = maps.shape[0]
    flat = maps.reshape(n, -1).float()
    flat = torch.where(torch.isfinite(flat), flat, torch.full_like(flat, -torch.inf))
    count = round(float(fraction) * flat.shape[1])
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    top = torch.zeros_like(flat, dtype=torch.bool)
    top.scatter_(1, order[:, :count], True)
    keep = top if mode == "kar" else ~top
    return keep.view(maps.shape)


def modify_clips(videos: Tensor, keep: Tensor, fill: Tensor) -> Tensor:
    """Clips with the pixels not kept replaced by ``fill``.

    Parameters
    ----------
    videos : Tensor
        ``[N, T, H, W, C]`` clips (any dtype).
    keep : Tensor
        ``bool[N, T, H, W]`` from :func:`keep_mask`.
    fill : Tensor
        ``[C]`` the replacement value per channel (Hooker et al.: the training set's mean).
    """
    return torch.where(keep[..., None], videos, fill.to(videos.dtype).view(1, 1, 1, 1, -1))


def retrain_accuracy(
    architecture: str,
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    seed: int,
    epochs: int | None = None,
    progress: bool = False,
) -> float:
    """Train zoo architecture ``architecture`` from scratch and return its test accuracy.

    Parameters
    ----------
    architecture : str
        A key of :data:`removalx.zoo.models.ZOO`; trained with that model's defaults
        (:data:`removalx.zoo.train.DEFAULTS`).
    train_x, test_x : Tensor
        ``uint8[N, 3, T, H, W]`` clips at the zoo's native size (:func:`removalx.zoo.train.native_clips`).
    train_y, test_y : Tensor
        ``int64[N]`` class indices.
    seed : int
        Seed of the initialisation and of the data order.
    epochs : int, optional
        Override the architecture's number of epochs.
    progress : bool
        Show the training progress bar.
    """
    from removalx.zoo.data import CLASS_NAMES
    from removalx.zoo.models import NATIVE_SIZE, build_model
    from removalx.zoo.train import DEFAULTS, evaluate, fit_model

    cfg = dict(DEFAULTS[architecture])
    if epochs is not None:
        cfg["epochs"] = epochs
    torch.manual_seed(seed)
    model = build_model(architecture, len(CLASS_NAMES), NATIVE_SIZE)
    fit_model(model, train_x, train_y, seed=seed, progress=progress, **cfg)
    model.eval()
    return evaluate(model, test_x, test_y)
