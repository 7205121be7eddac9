"""Model adapter ``hf``: Hugging Face ``transformers`` video classifiers.

``hf:path/to/folder`` (written by ``save_pretrained``) or ``hf:owner/name`` (a model already
in the Hugging Face cache) loads a ``*ForVideoClassification`` model (VideoMAE, TimeSformer,
ViViT, ...) with its image processor, never downloading anything, and wraps it with the
processor's size, mean and std, the config's frame count and the label names of ``id2label``
(see :func:`removalx.models.hf.wrap_hf_model`). Needs the extra ``removalx[hf]``.
"""

from __future__ import annotations

from typing import Any

from removalx.plugin import ModelConfig, ModelError, VideoClassifier, hookimpl

from ._weights import resolve_device


class HFModelConfig(ModelConfig):
    """Options of the ``hf`` model adapter.

    Attributes
    ----------
    target : str
        A folder written by ``model.save_pretrained`` (with the processor's
        ``preprocessor_config.json``) or a model name in the Hugging Face cache.
    weights : None
        Not used: the weights are those of the folder or cache entry.
    device : str or None
        Where to run (default: CUDA when available, else CPU).
    """


def make_hf_model(config: HFModelConfig) -> VideoClassifier:
    """A Hugging Face video classifier loaded from a folder or the cache (nothing is downloaded)."""
    from removalx.plugin import load_hf_model

    if config.weights is not None and config.weights.strip().lower() != "none":
        raise ModelError(
            "hf: models load their weights from their folder or the Hugging Face cache; --weights "
            "is not used.",
            "Drop --weights, or save the model with these weights (model.save_pretrained(folder)) and "
            "pass hf:folder.",
        )
    return load_hf_model(config.target, device=str(resolve_device(config.device)))


@hookimpl
def removalx_register_models(registry: Any) -> None:
    registry.add("hf", HFModelConfig, make_hf_model)
