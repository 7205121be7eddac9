"""STEP's second step (journal Sec. III-A, Eq. 4; WACV Eq. 3; ECCV-W Eq. 3).

Extremal perturbation first finds, for each preservation ratio ``v``, the mask ``M_v`` that
maximises ``Phi_c(M_v (x) X)`` (Eq. 3); the second step takes a lower bound ``Phi_0`` and
returns the smallest ratio whose mask reaches it::

    v* = min { v : Phi_c(M_v (x) X) >= Phi_0 }.

The ECCV-W study does this "after enumerating several constraining sizes of masks": the
search runs over the ratios already optimised (their masks and rewards are reused, nothing is
optimised again). When none reaches ``Phi_0`` removalx returns ``v* = 1``: the mask of ones
keeps the clip unchanged, so it reaches any bound up to ``Phi_c(X)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from removalx.plugin import ConfigError

__all__ = ["MinRatio", "min_preservation_ratio", "phi0_bound"]


@dataclass(frozen=True)
class MinRatio:
    """The result of Eq. 4.

    Attributes
    ----------
    v_star : float
        The smallest ratio reaching ``phi0`` (1.0 when none does).
    index : int or None
        Its position in the ``areas`` given (None when none does).
    phi0 : float
        The bound used.
    reached : bool
        Whether one of the optimised ratios reached the bound.
    """

    v_star: float
    index: int | None
    phi0: float
    reached: bool


def phi0_bound(phi0: float, relative: bool, clean_reward: float | None) -> float:
    """``Phi_0``: ``phi0`` itself, or ``phi0 x Phi_c(X)`` when ``relative``."""
    if not relative:
        return float(phi0)
    if clean_reward is None or not math.isfinite(clean_reward):
        raise ConfigError(
            "A relative Phi_0 needs the reward of the clean clip, which this attribution does not record.",
            "Re-run the extremal explainer (it stores meta['clean_reward']) or set relative=false.",
        )
    return float(phi0) * float(clean_reward)


def min_preservation_ratio(areas: Sequence[float], rewards: Sequence[float], phi0: float) -> MinRatio:
    """Eq. 4 over the optimised ratios: the smallest ``v`` with ``reward(v) >= phi0``.

    Parameters
    ----------
    areas : sequence of float
        The ratios ``v`` that were optimised (any order).
    rewards : sequence of float
        ``Phi_c(M_v (x) X)`` of each, in the same order.
    phi0 : float
        The bound ``Phi_0``.

    Returns
    -------
    MinRatio
    """
    if len(areas) != len(rewards) or not areas:
        raise ConfigError(
            f"Eq. 4 needs one reward per optimised ratio; got {len(areas)} ratios and {len(rewards)} rewards.",
            "Pass the explainer's meta['areas'] and meta['area_rewards'].",
        )
    best: int | None = None
    for i, (v, r) in enumerate(zip(areas, rewards)):
        if r >= phi0 and (best is None or v < areas[best]):
            best = i
    if best is None:
        return MinRatio(1.0, None, float(phi0), False)
    return MinRatio(float(areas[best]), best, float(phi0), True)
