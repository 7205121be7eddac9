"""Testing kit for removalx and for third-party plugin authors.

* :func:`tiny_video` -- a small clip with a bright moving square (known evidence).
* :class:`ToyClassifier` -- a seeded tiny 3D-CNN (``BCTHW`` in, ``K`` logits out).
* :class:`LinearVideoModel` -- logits linear in the pixels (an additive oracle).
* :func:`check_plugin` -- the conformance check every plugin should pass.

The pytest fixtures ``rx_tiny_video``, ``rx_toy_model`` and ``rx_registry`` are available
in any test suite once removalx is installed (pytest plugin :mod:`removalx.testing.fixtures`).
"""

from __future__ import annotations

from removalx.testing.checks import PluginCheckError, check_plugin
from removalx.testing.data import LinearVideoModel, ToyClassifier, tiny_video

__all__ = ["LinearVideoModel", "PluginCheckError", "ToyClassifier", "check_plugin", "tiny_video"]
