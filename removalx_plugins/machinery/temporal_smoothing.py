"""Temporal Gaussian smoothing of perturbation masks (STEP WACV Eq. 12; ECCV-W study Eq. 7).

The ECCV-W video attribution study (Sec. 4.3, Eq. 7) and the STEP WACV paper (Sec. 4.4,
Eq. 12) smooth each mask value with its neighbours in time::

    m'_{i,j,t} = Z^-1 sum_{t' = t - dt}^{t + dt} k(t' - t) m_{i,j,t'},   k(u) = exp(-u^2 / (0.6 sigma)),

with ``sigma = dt`` and ``Z`` normalising the kernel to sum to one; ``dt = 0`` is the identity.
Near the first and last frames part of the window falls outside the clip; the papers do not
say what happens there. removalx sums over the frames inside the clip and divides by the sum
of their weights (``Z`` per frame), so a mask constant in time stays constant.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["temporal_kernel", "temporal_smooth"]


def temporal_kernel(dt: int) -> Tensor:
    """The unnormalised weights ``k(u) = exp(-u^2 / (0.6 dt))`` for ``u = -dt .. dt``.

    Parameters
    ----------
    dt : int
        Half-width ``Delta t >= 0`` (``sigma = Delta t``); ``0`` gives ``[1.0]``.

    Returns
    -------
    Tensor
        ``float64[2 dt + 1]``.
    """
    if dt <= 0:
        return torch.ones(1, dtype=torch.float64)
    u = torch.arange(-dt, dt + 1, dtype=torch.float64)
    return torch.exp(-(u**2) / (0.6 * dt))


def temporal_smooth(x: Tensor, dt: int, dim: int = 1) -> Tensor:
    """Smooth ``x`` along ``dim`` with Eq. 7 / Eq. 12 (weights renormalised at the clip ends).

    Parameters
    ----------
    x : Tensor
        Masks or seed masks, e.g. ``float[A, T, h, w]`` with time on ``dim``.
    dt : int
        ``Delta t``; ``0`` returns ``x`` unchanged.
    dim : int
        The time axis.

    Returns
    -------
    Tensor
        Same shape as ``x``, differentiable in ``x`` (a fixed ``T x T`` linear map).
    """
    if dt <= 0:
        return x
    t = x.shape[dim]
    k = temporal_kernel(dt)
    idx = torch.arange(t)
    off = idx[None, :] - idx[:, None]  # off[t, t'] = t' - t
    w = torch.where(off.abs() <= dt, k[(off + dt).clamp(0, 2 * dt)], torch.zeros((), dtype=torch.float64))
    w = (w / w.sum(1, keepdim=True)).to(x.dtype).to(x.device)  # Z per frame
    moved = x.movedim(dim, -1)
    return (moved @ w.T).movedim(-1, dim)
