"""What a visualization's colours mean: the :class:`Legend` a visualizer returns.

:meth:`~removalx.core.stages.Visualizer.legend` describes the colours of an overlay with a
:class:`Legend`; :mod:`removalx.display.colorbar` draws it as a colour bar under the frames.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

__all__ = ["N_COLOURS", "Legend"]

#: Number of colours sampled along a colour bar.
N_COLOURS = 256


@dataclass(frozen=True)
class Legend:
    """What the colours of an overlay mean.

    Attributes
    ----------
    colors : Tensor
        ``float[N, 3]`` RGB in [0, 1] of ``N`` values spaced evenly from ``low`` to ``high``.
    alpha : Tensor
        ``float[N]`` opacity of each colour over the clip.
    low, high : float
        Attribution values at the left and right ends of the bar (``low < high``).
    label : str
        What the values are (e.g. ``"attribution (lime3d)"``).
    signed : bool
        True for a diverging map centred at 0 (a tick is drawn at 0).
    note : str
        A short remark drawn after the label (e.g. ``"top 30 % shown"``).
    """

    colors: Tensor
    alpha: Tensor
    low: float
    high: float
    label: str = "attribution"
    signed: bool = False
    note: str = ""
