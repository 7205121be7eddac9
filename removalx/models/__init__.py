"""Models: turn a module, a Hugging Face model or a model spec into a video classifier.

The contract every method sees, :class:`~removalx.core.classifier.VideoClassifier`, lives
in the engine (:mod:`removalx.core`); this wing builds one from what a user has:
:func:`as_classifier` wraps a module or callable, :func:`load_model` resolves a spec such as
``"torchvision:r3d_18"`` through the model-adapter plugins, :mod:`removalx.models.hf` adapts
Hugging Face ``transformers`` video classifiers (docs/models.md).
"""

from removalx.core.classifier import LAYOUTS, VideoClassifier
from removalx.models.loading import as_classifier, load_model

__all__ = ["LAYOUTS", "VideoClassifier", "as_classifier", "load_model"]
