"""Model adapter ``hf``: Hugging Face ``transformers`` video classifiers.

``hf:path/to/folder`` (written by ``save_pretrained``) or ``hf:owner/name`` (a model already
in the Hugging Face cache) loads a ``*ForVideoClassification`` model (VideoMAE, TimeSformer,
ViViT, ...) with its image processor, never downloading anything, and wraps it with the
processor's size, mean and std, the config's frame count and the label names of ``id2label``
(see :func:`removalx.models.hf.wrap_hf_model`). Needs the extra ``removalx[hf]``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from removalx.plugin import ModelConfig, ModelError, VideoClassifier, hookimpl

from ._weights import resolve_device

#: A Hugging Face Hub model id, ``name`` or ``owner/name`` (what ``hf download`` takes).
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


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


def _shown(target: str) -> str:
    return target if len(target) <= 120 else target[:117] + "..."


def _no_folder(target: str) -> ModelError:
    """The error of ``hf:TARGET`` when TARGET is no folder (and, if it could be, no cached model)."""
    path = Path(target).expanduser()
    where = (
        f"{_shown(str(path.absolute()))} is a file, not a folder"
        if path.exists()
        else (f"no folder {_shown(str(path.absolute()))} exists")
    )
    how = (
        "Pass the folder written by model.save_pretrained(folder) (with the processor's "
        "preprocessor_config.json), e.g. --model hf:/path/to/videomae-folder"
    )
    if _HUB_ID.fullmatch(target):
        return ModelError(
            f"hf:{_shown(target)}: {where}, and {_shown(target)!r} is not a model in the local Hugging Face "
            "cache either. removalx never downloads models at run time: it loads them from disk only.",
            f"{how}; or download the Hub model {_shown(target)} once (`hf download {_shown(target)}`, from "
            "the huggingface_hub package) and pass the same hf: spec again.",
        )
    return ModelError(
        f"hf:{_shown(target)}: {where}. removalx never downloads models at run time: it loads Hugging "
        "Face models from a local folder or the local Hugging Face cache.",
        f"{how} (relative paths start from {_shown(str(Path.cwd()))}).",
    )


def make_hf_model(config: HFModelConfig) -> VideoClassifier:
    """A Hugging Face video classifier loaded from a folder or the cache (nothing is downloaded).

    A target that is no folder gets an error saying so: a path that cannot be a Hub model id
    (``./models/x``, ``/data/x``, ``a/b/c``) fails before ``transformers`` is imported; an id
    such as ``owner/name`` that is neither a folder nor in the cache names ``hf download``.
    """
    from removalx.plugin import load_hf_model

    if config.weights is not None and config.weights.strip().lower() != "none":
        raise ModelError(
            "hf: models load their weights from their folder or the Hugging Face cache; --weights "
            "is not used.",
            "Drop --weights, or save the model with these weights (model.save_pretrained(folder)) and "
            "pass hf:folder.",
        )
    target = config.target.strip()
    if target and not _HUB_ID.fullmatch(target) and not Path(target).expanduser().is_dir():
        raise _no_folder(target)
    try:
        return load_hf_model(target, device=str(resolve_device(config.device)))
    except ModelError as exc:
        if isinstance(exc.__cause__, OSError) and target and not Path(target).expanduser().is_dir():
            raise _no_folder(target) from exc.__cause__
        raise


@hookimpl
def removalx_register_models(registry: Any) -> None:
    registry.add("hf", HFModelConfig, make_hf_model)
