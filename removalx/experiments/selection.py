"""``--only-correct-by``: keep the clips every listed model classifies correctly.

The selection of *removal-based video explanations* (Sec. 4.5, "Explanation process"): methods are
compared on the clips that all the studied models get right, so no explanation is of a wrong
prediction. Each listed model is loaded once on the driver and run on every clip (top-1 class
against the dataset label); clips without a label are an error.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from removalx.data.datasets import ItemRef, load_item
from removalx.errors import DatasetError, truncate

__all__ = ["only_correct"]


def only_correct(
    refs: Sequence[ItemRef], specs: Sequence[str], *, device: str | None = None, progress: bool = False
) -> list[ItemRef]:
    """The clips of ``refs`` whose label is the top-1 class of every model spec in ``specs``."""
    from removalx.models import load_model

    unlabeled = [r.item for r in refs if r.label is None]
    if unlabeled:
        raise DatasetError(
            f"--only-correct-by needs a label for every clip; {len(unlabeled)} have none "
            f"(first: {truncate(unlabeled[0], 80)!r}).",
            "Give the dataset labels (labels.csv, a Kinetics CSV, a UCF101 split file).",
        )
    models = [load_model(s, device=device) for s in specs]
    keep = []
    for ref in tqdm(refs, desc="--only-correct-by", unit="clip", disable=not progress):
        video = load_item(ref).video
        with torch.inference_mode():
            ok = all(int(m(video.to(m.device)[None]).argmax(1)[0]) == ref.label for m in models)
        if ok:
            keep.append(ref)
    if not keep:
        raise DatasetError(
            f"No clip is classified correctly by all of {', '.join(truncate(s, 40) for s in specs)}.",
            "Check the labels (class indices of the models) or list fewer models.",
        )
    return keep
