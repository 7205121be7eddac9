"""Shared helpers of the model adapters: devices, weights files, the random-weights warning."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from removalx.plugin import ModelError, finetuned_meta, load_plain, prepare_module

__all__ = ["RANDOM_WEIGHTS_WARNING", "load_weights", "resolve_device", "warn_random_weights"]

RANDOM_WEIGHTS_WARNING = "random weights: explanations are of an untrained model"

#: Keys under which checkpoints commonly nest the state dict.
_NESTED_KEYS = ("state_dict", "model", "model_state_dict", "model_state", "net")


def warn_random_weights(name: str, why: str) -> None:
    """Emit the loud warning that ``name`` runs with untrained weights."""
    warnings.warn(
        f"\n{'!' * 78}\n!! {name}: {RANDOM_WEIGHTS_WARNING}.\n!! ({why})\n"
        "!! Pass weights=<path to a state_dict or checkpoint> to explain a trained model.\n"
        f"{'!' * 78}",
        UserWarning,
        stacklevel=3,
    )


def resolve_device(device: str | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; otherwise validate the device string."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ModelError(
            f"Invalid device {device!r}: {exc}.", "Pass device='cpu', 'cuda', 'cuda:0' or 'mps'."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device={device!r} but CUDA is not available here.", "Pass device='cpu'.")
    return dev


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in _NESTED_KEYS:
            inner = obj.get(key)
            if isinstance(inner, nn.Module):
                return inner.state_dict()
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors and len(tensors) == len(obj):
            return tensors
        raise ModelError(
            f"Weights file {path} holds a dict with keys {[str(k)[:40] for k in sorted(map(str, obj))[:8]]} but no "
            "state_dict "
            f"(expected a state_dict of tensors, or a checkpoint with one under {', '.join(_NESTED_KEYS)}).",
            "Save the weights with torch.save(model.state_dict(), path).",
        )
    raise ModelError(
        f"Weights file {path} holds a {type(obj).__name__}, expected a state_dict (dict of tensors).",
        "Save the weights with torch.save(model.state_dict(), path).",
    )


def _fmt_keys(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_weights(module: nn.Module, weights: str, name: str) -> dict[str, Any]:
    """Load a weights file (state_dict or checkpoint) into ``module`` strictly.

    A ``"module."`` prefix (``DataParallel``) is stripped. A file written by ``removalx
    finetune`` first gets the module's head swapped to the file's class count. Raises
    :class:`ModelError` for a missing or unreadable file and names missing/unexpected keys or
    mismatched shapes. Returns the file's fine-tuning metadata (``class_names``, ...) or ``{}``.
    """
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelError(
            f"Weights file {path} for {name} does not exist.",
            "Pass the path of a saved state_dict (torch.save(model.state_dict(), path)), or "
            "weights='none' for random weights.",
        )
    obj = load_plain(
        path,
        ModelError,
        f"weights file {path} for {name}",
        "Pass a file written by torch.save(model.state_dict(), path) (pickled whole models are "
        "not loaded, for safety).",
    )
    meta = finetuned_meta(obj, f"weights file {path} for {name}")
    if meta is not None:
        prepare_module(module, meta)
    state = _extract_state_dict(obj, path)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_fmt_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_fmt_keys(unexpected)}")
        raise ModelError(
            f"Weights file {path} does not match {name}: {'; '.join(parts)}.",
            "Check that the file was saved from the same architecture (and model.state_dict(), not a "
            "wrapper); rename the keys if the checkpoint uses a prefix.",
        )
    bad = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if tuple(state[k].shape) != tuple(v.shape)
    ]
    if bad:
        raise ModelError(
            f"Weights file {path} does not match {name}: shape mismatch (file vs model) for "
            f"{_fmt_keys(bad, 4)}.",
            "Check the architecture and the number of classes the weights were trained with.",
        )
    module.load_state_dict(state, strict=True)
    return meta or {}
