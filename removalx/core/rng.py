"""Counter-based random numbers: the same value for the same (seed, sample, position).

Per-sample randomness (RISE shifts, noise fill, conditional sampling) must not depend on
which batch a sample lands in, nor on the device (docs/concepts.md, determinism). A stateful generator
cannot promise either; a hash of integer counters can, with plain tensor operations.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_MASK32 = 0xFFFFFFFF
_MULT = 0x45D9F3B  # < 2**27 so that products of 32-bit values stay inside int64


def _mix(x: Tensor) -> Tensor:
    """Avalanche a tensor of non-negative int64 values < 2**32 (integer hash)."""
    x = ((x >> 16) ^ x) * _MULT & _MASK32
    x = ((x >> 16) ^ x) * _MULT & _MASK32
    return (x >> 16) ^ x


def hash_uniform(seed: int, index: Tensor, shape: tuple[int, ...], stream: int = 0) -> Tensor:
    """Uniform values in ``[0, 1)`` of shape ``[len(index), *shape]``.

    Parameters
    ----------
    seed : int
        The run's seed.
    index : Tensor
        ``long[B]`` sample indices; row ``b`` depends only on ``(seed, index[b], stream)``.
    shape : tuple of int
        Per-sample shape.
    stream : int
        Separates independent uses within one run.
    """
    device = index.device
    base = torch.tensor(
        [(seed * 0x9E3779B1 + stream * 0x85EBCA77) & _MASK32], device=device, dtype=torch.long
    )
    row = _mix((index.long() & _MASK32) ^ _mix(base))  # [B]
    n = math.prod(shape)
    pos = torch.arange(n, device=device, dtype=torch.long)
    h = _mix(_mix(pos[None, :] ^ row[:, None]) ^ ((row[:, None] * 31) & _MASK32))
    return (h.to(torch.float64) / 2**32).to(torch.float32).view(index.shape[0], *shape)


def hash_normal(seed: int, index: Tensor, shape: tuple[int, ...], stream: int = 0) -> Tensor:
    """Standard normal values (Box-Muller on two hash streams), like :func:`hash_uniform`."""
    u1 = hash_uniform(seed, index, shape, stream=2 * stream + 1).clamp_min(1e-7)
    u2 = hash_uniform(seed, index, shape, stream=2 * stream + 2)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2 * math.pi * u2)
