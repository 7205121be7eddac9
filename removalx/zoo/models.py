"""Tiny video classifiers trained on :mod:`removalx.zoo.data`, with bundled weights.

Three architectures (3D CNN, CNN + GRU, TimeSformer), each trained twice: with plain
cross-entropy (``r3d_tiny``, ``cnn_gru``, ``timesformer_tiny``: top-1 probability ~1 on
synthetic clips) and with label smoothing 0.3 (``*_ls``: top-1 probability ~0.77, like a
real-world video classifier, so probability-based rewards and Taylor expansions do not
degenerate).

All models take ``float[B, C, T, H, W]`` (BCTHW) in [0, 1] and return logits ``[B, K]``. They
normalise their input themselves and resize it (trilinear) to their native ``input_size``
(``(T, H, W)``, recorded in the metadata), so they accept clips of any size, e.g. the
16x112x112 demo clip, while being trained cheaply at a smaller size.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from removalx.errors import ModelError
from removalx.files.torchfile import load_plain

__all__ = [
    "CNNGRU",
    "CNNLSTM",
    "MEAN",
    "NATIVE_SIZE",
    "STD",
    "WEIGHTS_DIR",
    "ZOO",
    "R3DTiny",
    "TinyTimeSformer",
    "build_model",
    "count_params",
    "list_zoo",
    "load_zoo_model",
]

from removalx.zoo.architectures import (
    CNNGRU,
    CNNLSTM,
    MEAN,
    NATIVE_SIZE,
    STD,
    WEIGHTS_DIR,
    R3DTiny,
    TinyTimeSformer,
)

ZOO: dict[str, tuple[Callable[..., nn.Module], str]] = {
    "r3d_tiny": (R3DTiny, "R3D-style 3D CNN, 3 residual stages (Grad-CAM layer: layer3)"),
    "cnn_gru": (CNNGRU, "per-frame 2D CNN with coordinate channels + GRU over time"),
    "timesformer_tiny": (TinyTimeSformer, "TimeSformer with 2 divided space-time attention blocks"),
    "r3d_tiny_ls": (R3DTiny, "r3d_tiny trained with label smoothing 0.3: top-1 p ~0.77, not saturated"),
    "cnn_gru_ls": (CNNGRU, "cnn_gru trained with label smoothing 0.3: top-1 p ~0.77, not saturated"),
    "cnn_lstm_ls": (
        CNNLSTM,
        "per-frame 2D CNN + ReLU LSTM (EB-R's cell), label smoothing 0.3: top-1 p ~0.77, not saturated",
    ),
    "timesformer_tiny_ls": (
        TinyTimeSformer,
        "timesformer_tiny trained with label smoothing 0.3: top-1 p ~0.77, not saturated",
    ),
}


def _registry() -> dict[str, tuple[Callable[..., nn.Module], str]]:
    """:data:`ZOO` plus the benchmark-task models of :mod:`removalx.zoo.bench` (``bench_*``)."""
    from removalx.zoo.bench.registry import BENCH_ZOO

    return {**ZOO, **BENCH_ZOO}


def _default_dir(name: str) -> Path:
    """Bundled weights folder of ``name`` (``weights/bench`` for the benchmark-task models)."""
    return WEIGHTS_DIR / "bench" if name.startswith("bench_") else WEIGHTS_DIR


def _check_name(name: str) -> None:
    if name not in _registry():
        raise ModelError(f"unknown zoo model {name!r}.", f"Use one of: {', '.join(sorted(_registry()))}.")


def build_model(name: str, num_classes: int = 4, input_size: tuple[int, int, int] = NATIVE_SIZE) -> nn.Module:
    """Build an untrained zoo architecture.

    Parameters
    ----------
    name : str
        A key of :data:`ZOO`.
    num_classes : int, default 4
        Number of classes.
    input_size : tuple of int, default NATIVE_SIZE
        Native ``(T, H, W)``.

    Returns
    -------
    torch.nn.Module
        The freshly initialised model.

    Raises
    ------
    ModelError
        If ``name`` is not in the zoo.
    """
    _check_name(name)
    return _registry()[name][0](num_classes=num_classes, input_size=tuple(input_size))


def _metadata(name: str, weights_dir: Path) -> dict[str, Any]:
    """Read and check ``<name>.json``: ``class_names`` (strings) and ``input_size`` (3 positive ints)."""
    path = weights_dir / f"{name}.json"
    fix = f"Restore the file, or retrain with `python -m removalx.zoo.train {name}`."
    if not path.is_file():
        raise ModelError(
            f"no metadata for zoo model {name!r} at {path}.", f"Run `python -m removalx.zoo.train {name}`."
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"metadata {path} of zoo model {name!r} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}.",
            fix,
        ) from exc
    except (OSError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelError(
            f"cannot read metadata {path} of zoo model {name!r}: {str(exc)[:200]}.", fix
        ) from exc
    if not isinstance(meta, dict):
        raise ModelError(
            f"metadata {path} of zoo model {name!r} holds a JSON {type(meta).__name__}, expected an "
            "object with class_names and input_size.",
            fix,
        )
    names = meta.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ModelError(
            f"metadata {path} of zoo model {name!r}: class_names must be a non-empty list of "
            f"strings, got {str(names)[:80]}.",
            fix,
        )
    size = meta.get("input_size")
    if (
        not isinstance(size, list)
        or len(size) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise ModelError(
            f"metadata {path} of zoo model {name!r}: input_size must be [T, H, W] of positive "
            f"integers, got {str(size)[:80]}.",
            fix,
        )
    return meta


def load_zoo_model(
    name: str, device: str | torch.device | None = None, *, weights_dir: str | Path | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a trained zoo model from package data, in eval mode.

    Parameters
    ----------
    name : str
        A key of :data:`ZOO` (``"r3d_tiny"``, ``"cnn_gru"``, ``"timesformer_tiny"`` and their
        label-smoothed twins ``"r3d_tiny_ls"``, ``"cnn_gru_ls"``, ``"timesformer_tiny_ls"``).
    device : str or torch.device, optional
        Where to put the model (default: CPU).
    weights_dir : str or Path, optional
        Directory with ``<name>.pt`` and ``<name>.json`` (default: the bundled weights).

    Returns
    -------
    model : torch.nn.Module
        Takes ``float[B, 3, T, H, W]`` in [0, 1], returns logits ``[B, K]``.
    meta : dict
        class_names, mean, std, layout, input_size, seed, n_train, n_val, val_accuracy, ...

    Raises
    ------
    ModelError
        If ``name`` is unknown or its weights are missing or do not fit the architecture.
    """
    _check_name(name)
    wdir = Path(weights_dir) if weights_dir is not None else _default_dir(name)
    weights = wdir / f"{name}.pt"
    if not weights.is_file():
        raise ModelError(
            f"weights for zoo model {name!r} not found at {weights}.",
            f"Run `python -m removalx.zoo.train {name}`.",
        )
    meta = _metadata(name, wdir)
    model = build_model(name, len(meta["class_names"]), tuple(meta["input_size"]))
    state = load_plain(
        weights,
        ModelError,
        f"weights {weights} of zoo model {name!r}",
        f"Restore the file, or retrain with `python -m removalx.zoo.train {name}`.",
    )
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(
            f"weights {weights} of zoo model {name!r} hold a {type(state).__name__}"
            f"{' with non-tensor values' if isinstance(state, dict) else ''}, expected a state_dict "
            "(a dict of tensors).",
            f"Retrain with `python -m removalx.zoo.train {name}` (it saves model.state_dict()).",
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(
            f"weights {weights} do not fit the {name!r} architecture: {str(exc)[:500]}",
            f"Retrain with `python -m removalx.zoo.train {name}`.",
        ) from exc
    model.eval()
    if device is not None:
        model.to(device)
    return model, meta


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def list_zoo(bench: bool = False) -> list[dict[str, Any]]:
    """Describe the zoo models.

    Parameters
    ----------
    bench : bool, default False
        Also list the benchmark-task models (``bench_*``, :mod:`removalx.zoo.bench`).

    Returns
    -------
    list of dict
        One dict per model with ``name``, ``description``, ``params``, ``val_accuracy``
        (``None`` if the model has not been trained yet), ``label_smoothing``,
        ``top1_prob_median`` (median top-1 probability on the validation clips; ``None`` when
        the metadata does not record it) and ``trained``.
    """
    rows = []
    for name, (ctor, description) in (_registry() if bench else ZOO).items():
        try:
            meta = _metadata(name, _default_dir(name))
        except ModelError:  # missing or damaged: listed as untrained, loading it says why
            meta = {}
        conf = meta.get("val_confidence")
        top1 = conf.get("top1_prob") if isinstance(conf, dict) else None
        rows.append(
            {
                "name": name,
                "description": description,
                "params": count_params(ctor()),
                "val_accuracy": meta.get("val_accuracy"),
                "label_smoothing": meta.get("label_smoothing"),
                "top1_prob_median": top1.get("median") if isinstance(top1, dict) else None,
                "trained": bool(meta) and (_default_dir(name) / f"{name}.pt").is_file(),
            }
        )
    return rows
