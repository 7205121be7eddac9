"""Display: overlays and colour bars drawn from an attribution and its visualization plugin.

:mod:`~removalx.display.visualize` renders overlays and shared colour scales,
:mod:`~removalx.display.colorbar` draws a :class:`~removalx.core.legend.Legend` under frames,
:mod:`~removalx.display.notebook` shows an attribution in Jupyter.
"""
