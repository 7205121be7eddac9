"""The explainer: runs a recipe's seven stages on a model and a clip.

:class:`~removalx.pipeline.explainer.Explainer` binds the stages of a recipe and runs them
(segmentation, feature and sample selection, removal, model behavior, summary); it sits above
the engine's contracts, the models, video I/O and incremental inference, and below metrics,
experiments and the command line (docs/architecture.md).
"""

from removalx.pipeline.explainer import Explainer, default_batch_size

__all__ = ["Explainer", "default_batch_size"]
