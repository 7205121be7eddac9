"""The order in which a rater sees a study's items.

"removal-based video explanations", Sec. 4.6.2: "explanations are presented in a random
order". Each rater gets an order of their own, drawn from the study's seed and the rater id
only (a NumPy PCG64 stream seeded with both): the same rater always resumes in the same
order, two raters almost never share one, and every item appears exactly once.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["rater_order"]


def rater_order(seed: int, rater: str, n_items: int) -> list[int]:
    """A permutation of ``range(n_items)``: the canonical item positions in ``rater``'s order.

    Parameters
    ----------
    seed : int
        The study's seed (``study create --seed``).
    rater : str
        The rater id; hashed (SHA-256), so similar ids give unrelated orders.
    n_items : int
        Number of items in the study.
    """
    digest = int.from_bytes(hashlib.sha256(rater.encode("utf-8")).digest()[:16], "big")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed) % 2**63, digest])))
    return [int(i) for i in rng.permutation(int(n_items))]
