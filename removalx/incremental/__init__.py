"""Incremental inference for local perturbations (Krypton, Nakandala et al., SIGMOD 2019).

See docs/incremental.md. :class:`IncrementalModel` replays a recorded forward pass of a
reference input and recomputes, layer by layer, only the box each perturbed input changes;
:mod:`removalx.incremental.session` attaches it to a :class:`~removalx.VideoClassifier`.
"""

from removalx.incremental.engine import IncrementalModel, build
from removalx.incremental.trace import TraceUnsupported

__all__ = ["IncrementalModel", "TraceUnsupported", "build"]
