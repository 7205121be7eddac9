"""Model adapter ``python``: any model built by a Python factory function.

``python:my_models.py:make_model`` loads the file ``my_models.py`` (or, without ``.py`` and
``/``, imports the module ``my_models``), calls ``make_model()`` with no arguments and wraps
the returned ``nn.Module`` as a :class:`~removalx.core.classifier.VideoClassifier`. A factory that
already returns a ``VideoClassifier`` is used as is.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import field_validator
from torch import nn

from removalx.plugin import LAYOUTS, ModelConfig, ModelError, VideoClassifier, hookimpl, truncate

from ._weights import load_weights, resolve_device

__all__ = ["PythonModelConfig", "make_python_model"]

_FORMAT_HINT = "Write the target as '<module or path/to/file.py>:<factory>', e.g. 'my_models.py:make_model'."


class PythonModelConfig(ModelConfig):
    """Options of the ``python`` model adapter.

    Attributes
    ----------
    target : str
        ``"<module or path/to/file.py>:<factory>"``; ``factory()`` returns an ``nn.Module``
        (logits ``[B, K]``), a :class:`~removalx.core.classifier.VideoClassifier`, or a callable.
    weights : str or None
        Optional state_dict / checkpoint file loaded into the module (strict).
    device : str or None
        Where to run (default: CUDA when available, else CPU).
    layout : {"BCTHW", "BTCHW", "BTHWC"}
        Input layout of the module.
    mean, std : list of float or None
        Per-channel normalisation applied to [0, 1] clips.
    input_size : list of int or None
        ``[T, H, W]`` or ``[H, W]`` the module needs; clips are resized inside the wrapper.
    """

    layout: str = "BCTHW"
    mean: list[float] | None = None
    std: list[float] | None = None
    input_size: list[int] | None = None

    @field_validator("layout")
    @classmethod
    def _check_layout(cls, v: str) -> str:
        if v.upper() not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {v!r}")
        return v.upper()

    @field_validator("mean", "std")
    @classmethod
    def _check_stats(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and len(v) not in (1, 3):
            raise ValueError(f"mean/std need 3 values (one per RGB channel) or 1, got {len(v)}")
        return v

    @field_validator("input_size")
    @classmethod
    def _check_input_size(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) not in (2, 3) or any(s < 1 for s in v)):
            raise ValueError(f"input_size must be [T, H, W] or [H, W] of positive ints, got {v}")
        return v


def _split_target(target: str) -> tuple[str, str]:
    source, sep, attr = target.strip().rpartition(":")
    if not sep or not source or not attr:
        raise ModelError(f"Invalid python model target {target!r}: no ':<factory>' part.", _FORMAT_HINT)
    return source, attr


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ModelError(
            f"Model file {path} does not exist (resolved from {Path.cwd()}).",
            "Check the path; relative paths start from the current directory.",
        )
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    mod_name = f"removalx_user_model_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"Cannot load {path} as a Python module.", "Pass a .py file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    folder = str(path.parent)
    added = folder not in sys.path
    if added:  # let the file import its siblings
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        sys.modules.pop(mod_name, None)
        raise ModelError(
            f"Importing model file {path} called sys.exit({truncate(repr(exc.code), 40)}): the file ends the program when "
            "it is imported.",
            "Guard the file's script code with `if __name__ == '__main__':`.",
        ) from None
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise ModelError(
            f"Importing model file {path} failed: {type(exc).__name__}: {exc}.",
            f"Fix the error in the file (run `python {path}` to see the traceback).",
        ) from exc
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    return module


def _import(source: str) -> ModuleType:
    is_file = source.endswith(".py") or "/" in source or "\\" in source
    if is_file:
        return _load_file(Path(source).expanduser().resolve())
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if exc.name and source.startswith(exc.name):
            raise ModelError(
                f"Cannot import model module {source!r}: module {exc.name!r} not found.",
                "Install it or add its folder to PYTHONPATH, or pass a file path ('path/to/file.py:factory').",
            ) from exc
        raise ModelError(
            f"Importing model module {source!r} failed: {exc}.", "Install the missing dependency."
        ) from exc
    except Exception as exc:
        raise ModelError(
            f"Importing model module {source!r} failed: {type(exc).__name__}: {exc}.",
            "Fix the error in the module.",
        ) from exc


def make_python_model(config: PythonModelConfig) -> VideoClassifier:
    """A model built by your own factory function (``python:file.py:make_model``)."""
    source, attr = _split_target(config.target)
    module = _import(source)
    factory = getattr(module, attr, None)
    if factory is None:
        names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ModelError(
            f"{source} has no attribute {attr!r}. Callables defined there: {', '.join(names[:20]) or '(none)'}.",
            _FORMAT_HINT,
        )
    if not callable(factory):
        raise ModelError(
            f"{source}:{attr} is a {type(factory).__name__}, not a callable factory.", _FORMAT_HINT
        )
    try:
        model = factory()
    except SystemExit as exc:
        raise ModelError(
            f"The model factory {source}:{attr}() called sys.exit({truncate(repr(exc.code), 40)}).",
            "Return the model from the factory instead of exiting.",
        ) from None
    except Exception as exc:
        raise ModelError(
            f"The model factory {source}:{attr}() raised {type(exc).__name__}: {exc}.",
            "The factory is called with no arguments; fix it or wrap it in a function that takes none.",
        ) from exc
    name = f"python:{Path(source).name}:{attr}"
    weights = config.weights
    if weights is not None and weights.strip().lower() == "none":
        weights = None  # the factory's own (possibly random) weights
    if isinstance(model, VideoClassifier):
        if weights is not None:
            if not isinstance(model.module, nn.Module):
                raise ModelError(
                    f"{name} returned a VideoClassifier around a {type(model.module).__name__}; cannot load "
                    f"weights {weights} into it.",
                    "Load the weights in the factory, or return an nn.Module.",
                )
            load_weights(model.module, weights, name)
        return model
    if not callable(model):
        raise ModelError(
            f"The model factory {source}:{attr}() returned a {type(model).__name__}; expected an nn.Module "
            "(or a VideoClassifier, or a callable clips -> logits [B, K]).",
            "Return the model object from the factory.",
        )
    meta: dict[str, Any] = {}
    if weights is not None:
        if not isinstance(model, nn.Module):
            raise ModelError(
                f"{name} returned a {type(model).__name__}, not an nn.Module; cannot load weights "
                f"{weights} into it.",
                "Drop weights, or return an nn.Module.",
            )
        meta = load_weights(model, weights, name)
    return VideoClassifier(
        model,
        layout=config.layout,
        mean=config.mean,
        std=config.std,
        input_size=config.input_size,
        device=resolve_device(config.device),
        class_names=meta.get("class_names"),
        name=name,
    )


@hookimpl
def removalx_register_models(registry: Any) -> None:
    registry.add("python", PythonModelConfig, make_python_model)
