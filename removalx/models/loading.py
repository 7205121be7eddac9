"""Turn what a user passes into a :class:`~removalx.core.classifier.VideoClassifier`.

:func:`as_classifier` wraps a module, a Hugging Face model or a callable; :func:`load_model`
builds one from a model spec (``"torchvision:r3d_18"``) through the model-adapter plugins.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from removalx.core.classifier import VideoClassifier
from removalx.core.devices import resolve_device
from removalx.core.registry import get_registry
from removalx.errors import ModelError, RemovalxError, truncate
from removalx.models.hf import wrap_hf_model

__all__ = ["as_classifier", "load_model"]


def as_classifier(model: Any) -> VideoClassifier:
    """Wrap anything :meth:`Explainer.explain` accepts.

    A :class:`VideoClassifier` is returned as is; a Hugging Face ``transformers`` video
    classifier is wrapped by :func:`removalx.models.hf.wrap_hf_model` (layout ``BTCHW``, its
    config's frame count, size and labels, its processor's normalisation); any other
    ``nn.Module`` is assumed to take ``BCTHW`` with no normalisation; any other callable is
    assumed to take ``float[B, T, H, W, C]`` and return logits ``[B, K]``.
    """
    if isinstance(model, VideoClassifier):
        return model
    if isinstance(model, nn.Module) and type(model).__module__.startswith("transformers."):
        return wrap_hf_model(model)
    if isinstance(model, nn.Module):
        return VideoClassifier(model, layout="BCTHW")
    if callable(model):
        return VideoClassifier(model, layout="BTHWC")
    raise ModelError(
        f"Cannot explain a {type(model).__name__}: expected a VideoClassifier, an nn.Module "
        "(BCTHW input) or a callable float[B,T,H,W,C] -> logits [B,K].",
        "Wrap it: removalx.VideoClassifier(module, layout='BCTHW', mean=..., std=...).",
    )


def load_model(spec: str, weights: str | None = None, device: str | None = None) -> VideoClassifier:
    """Build a :class:`VideoClassifier` from a spec string ``"<adapter>:<target>"``.

    The adapter is a plugin of the ``model`` stage (``zoo``, ``torchvision``, ``python``,
    ``hf``, or a third party's); ``target`` is what the adapter understands (a zoo model name,
    an architecture name, ``module:factory``, a Hugging Face folder or cached model name). A
    spec without a colon names a zoo model.

    Parameters
    ----------
    spec : str
        E.g. ``"zoo:r3d_tiny"``, ``"torchvision:r3d_18"``, ``"python:my_models.py:make"``,
        ``"hf:path/to/folder"`` (written by ``save_pretrained``; nothing is downloaded).
    weights : str, optional
        Path to a weights file, or ``"none"`` for random weights (adapters that support it).
    device : str, optional
        Where to run the model.
    """
    adapter, sep, target = spec.partition(":")
    if not sep:
        adapter, target = "zoo", spec
    config: dict[str, Any] = {"target": target}
    if weights is not None:
        config["weights"] = weights
    if device is not None:
        config["device"] = str(resolve_device(device))
    reg = get_registry()
    plugin = reg.get("model", adapter)
    try:
        model = plugin.make(config)
    except RemovalxError:
        raise
    except SystemExit as exc:  # a model file that exits on import must not end removalx silently
        raise ModelError(
            f"Loading model {truncate(spec, 120)!r} called sys.exit({truncate(repr(exc.code), 40)}): "
            "the model's code tried to end the program.",
            "Remove the exit call from the model file (guard script code with `if __name__ == '__main__':`).",
        ) from None
    except Exception as exc:  # pydantic validation or adapter failure
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            raise ModelError(
                f"Invalid options for model adapter {adapter!r}: {exc.errors()[0]['msg']}.",
                f"See `removalx plugins` for the fields of model adapter {adapter!r}.",
            ) from exc
        raise ModelError(
            f"Model adapter {adapter!r} failed to load {truncate(target, 120)!r}: "
            f"{type(exc).__name__}: {truncate(str(exc), 300)}",
            "Check the model spec and weights file; `removalx plugins --stage model` lists the adapters.",
        ) from exc
    if not isinstance(model, VideoClassifier):
        raise ModelError(
            f"Model adapter {adapter!r} returned {type(model).__name__}, expected a VideoClassifier."
        )
    return model
