"""``--only-correct-by``: keep the clips every listed model classifies correctly.

The selection of *removal-based video explanations* (Sec. 4.5, "Explanation process"): methods are
compared on the clips that all the studied models get right, so no explanation is of a wrong
prediction. Each listed model is loaded once on the driver and run on every clip (top-1 class
against the dataset label); clips without a label are an error.

:func:`check_label_names` compares the class names of a Kinetics or UCF101 data set with the
model's (our check, issue 27 §2.7): a data-set class that is one of the model's classes but at
another index is an error (the labels would be silently wrong), a class the model does not name
is a warning, and the mapping is printed.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from removalx.core.progress import tqdm
from removalx.data.datasets import ItemRef, load_item
from removalx.errors import DatasetError, truncate

__all__ = ["check_label_names", "check_run_labels", "label_mapping", "only_correct"]

#: Class names that carry no meaning (``LABEL_3``, the Hugging Face default; ``class_3``; ``3``).
_GENERIC = re.compile(r"(label|class)?[_ ]?\d+", re.IGNORECASE)


def _norm(name: str) -> str:
    """A class name compared loosely: case, spaces, underscores and hyphens do not matter."""
    return re.sub(r"[\s_\-]+", " ", name).strip().casefold()


def label_mapping(refs: Sequence[ItemRef]) -> dict[int, str]:
    """``{class index: data-set class name}`` of the clips whose source names their class."""
    out: dict[int, str] = {}
    for r in refs:
        name = r.source.get("label_name")
        if r.label is not None and isinstance(name, str):
            out[int(r.label)] = name
    return out


def check_label_names(
    refs: Sequence[ItemRef],
    class_names: Sequence[str] | None,
    *,
    model: str = "the model",
    progress: bool = False,
) -> dict[int, str]:
    """Check the data set's class names against the model's; print the mapping.

    Parameters
    ----------
    refs : sequence of ItemRef
        The clips; those of a Kinetics CSV or a UCF101 split carry their class name
        (``source["label_name"]``), the others are not checked.
    class_names : sequence of str or None
        The model's class names (``VideoClassifier.class_names``); ``None`` or generic names
        (``LABEL_0``, ...) only print the mapping.
    model : str
        The model spec, for messages.
    progress : bool
        Print the mapping (one line, to stderr).

    Returns
    -------
    dict
        ``{class index: data-set class name}``.

    Raises
    ------
    DatasetError
        A data-set class is one of the model's classes at another index, or an index is beyond
        the model's classes.
    """
    mapping = label_mapping(refs)
    if not mapping:
        return mapping
    names = list(class_names or [])
    meaningful = bool(names) and not all(_GENERIC.fullmatch(str(n).strip()) for n in names)
    where = {_norm(str(n)): i for i, n in reversed(list(enumerate(names)))}
    shown = ", ".join(
        f"{truncate(n, 30)!r} -> {i}"
        + (f" ({truncate(str(names[i]), 30)!r})" if meaningful and i < len(names) else "")
        for i, n in sorted(mapping.items())[:8]
    ) + (f", ... ({len(mapping)} classes)" if len(mapping) > 8 else "")
    if progress:
        from removalx.core.progress import write_line

        write_line(f"Labels of the data set -> classes of {truncate(model, 60)}: {shown}")
    if not names:
        return mapping
    beyond = sorted(i for i in mapping if i >= len(names))
    if beyond:
        raise DatasetError(
            f"The data set has class index {beyond[-1]} ({truncate(mapping[beyond[-1]], 40)!r}) but "
            f"{truncate(model, 60)} has {len(names)} classes.",
            "Use the model trained on these classes, or pass --classes with the model's class names in its order.",
        )
    if not meaningful:
        return mapping
    moved = [(i, n, where[_norm(n)]) for i, n in sorted(mapping.items()) if where.get(_norm(n), i) != i]
    if moved:
        listed = "; ".join(
            f"{truncate(n, 30)!r} is class {i} of the data set but class {j} of the model"
            for i, n, j in moved[:4]
        )
        raise DatasetError(
            f"The data set's labels do not match the classes of {truncate(model, 60)}: {listed}"
            f"{' ...' if len(moved) > 4 else ''} (mapping: {shown}).",
            "Pass --classes FILE with the model's class names, one per line in the model's order "
            "(Kinetics), or the classInd.txt the model was trained with (UCF101).",
        )
    unknown = [n for _, n in sorted(mapping.items()) if _norm(n) not in where]
    if unknown:
        warnings.warn(
            f"{len(unknown)} of the data set's {len(mapping)} classes are not classes of {truncate(model, 60)} "
            f"(first: {truncate(unknown[0], 40)!r}; mapping: {shown}); their labels are class indices the "
            "model may mean otherwise, so correctness and label targets may be wrong.",
            UserWarning,
            stacklevel=2,
        )
    return mapping


def check_run_labels(
    refs: Sequence[ItemRef],
    executor: Any,
    spec: str,
    *,
    weights: str | None = None,
    device: str | None = None,
    progress: bool = False,
) -> dict[int, str]:
    """:func:`check_label_names` with the run's model: the local executor's, else loaded here.

    The model is loaded on the driver (a Ray run) only when the data set names its classes.
    """
    if not label_mapping(refs):
        return {}
    model = getattr(getattr(executor, "context", None), "model", None)
    if model is None:
        from removalx.models import load_model

        model = load_model(spec, weights=weights, device=device)
    names = getattr(model, "class_names", None)
    return check_label_names(refs, [str(n) for n in names] if names else None, model=spec, progress=progress)


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
