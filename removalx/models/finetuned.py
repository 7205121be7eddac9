"""The fine-tuned weights file: a state_dict plus what ``--weights`` needs to load it.

``removalx finetune`` writes ``torch.save`` of a plain dict (tensors, strings, numbers only,
so :func:`removalx.files.torchfile.load_plain` reads it without unpickling any object)::

    {"state_dict": {name: tensor, ...},
     "removalx_finetuned": {"format": 1, "head": "fc", "num_classes": 3,
                            "class_names": [...], "spec": "torchvision:r3d_18", ...}}

A model adapter that loads such a file first swaps the model's head (at ``head``) for one with
``num_classes`` outputs (:func:`prepare_module`), then loads the state dict strictly, and takes
the class names from the file.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from removalx.errors import ModelError, truncate
from removalx.models.heads import find_head, head_classes, swap_head

__all__ = ["FORMAT", "META_KEY", "finetuned_meta", "prepare_module", "weights_payload"]

#: Key of the metadata in the weights file.
META_KEY = "removalx_finetuned"
#: Version of the metadata layout.
FORMAT = 1


def weights_payload(state_dict: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The dict ``torch.save`` writes: ``{"state_dict": ..., META_KEY: {"format": FORMAT, **meta}}``."""
    return {"state_dict": state_dict, META_KEY: {"format": FORMAT, **meta}}


def finetuned_meta(obj: Any, where: str) -> dict[str, Any] | None:
    """The checked fine-tuning metadata of a loaded weights file, or ``None`` if it has none.

    Raises
    ------
    ModelError
        The metadata is there but malformed (no head path, a bad class count or names).
    """
    if not isinstance(obj, dict) or META_KEY not in obj:
        return None
    meta = obj[META_KEY]
    fix = "Write the file again with `removalx finetune`, or save a plain state_dict."
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(
            f"{truncate(where, 200)}: unknown fine-tuning metadata format "
            f"{truncate(repr(meta.get('format') if isinstance(meta, dict) else meta), 40)} (expected {FORMAT}).",
            fix,
        )
    k, head, names = meta.get("num_classes"), meta.get("head"), meta.get("class_names")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or not isinstance(head, str) or not head:
        raise ModelError(
            f"{truncate(where, 200)}: fine-tuning metadata needs num_classes (int >= 1) and head "
            f"(a dotted layer path), got {truncate(repr(k), 20)} and {truncate(repr(head), 60)}.",
            fix,
        )
    if names is not None and (
        not isinstance(names, list) or len(names) != k or not all(isinstance(n, str) for n in names)
    ):
        raise ModelError(
            f"{truncate(where, 200)}: class_names must be {k} strings, got {truncate(repr(names), 80)}.", fix
        )
    return meta


def prepare_module(module: nn.Module, meta: dict[str, Any]) -> None:
    """Give ``module`` the head the fine-tuned weights were trained with (in place).

    Nothing changes when the head at ``meta["head"]`` already has ``meta["num_classes"]``
    outputs (e.g. a factory that builds the fine-tuned size itself).
    """
    _, layer = find_head(module, meta["head"])
    if head_classes(layer) != meta["num_classes"]:
        swap_head(module, meta["num_classes"], path=meta["head"])
