"""Hugging Face ``transformers`` video classifiers as :class:`~removalx.core.classifier.VideoClassifier`.

VideoMAE, TimeSformer and ViViT (``*ForVideoClassification``) take ``pixel_values`` of shape
``[B, T, C, H, W]`` (layout ``BTCHW``) and return an output whose ``logits`` are ``[B, K]``.
:func:`wrap_hf_model` reads everything else the wrapper needs from the model's config and its
image processor: the input size (the processor's crop, else the config's ``image_size``), the
number of frames (``num_frames``), the normalisation (the processor's rescale factor, offset,
mean and std, turned into a mean and std on [0, 1] clips) and the class names (``id2label``).

``transformers`` is the optional extra ``removalx[hf]``; this module imports it only when a
model is loaded by name (:func:`load_hf_model`). Nothing is ever downloaded: models load from
a local folder or from the Hugging Face cache (``local_files_only=True``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from removalx.core.classifier import VideoClassifier
from removalx.errors import ModelError, require_extra, truncate

__all__ = ["CONFIG_BOUNDS", "check_config", "is_hf_model", "load_hf_model", "normalisation", "wrap_hf_model"]

#: Image processor class of each video family, used when no processor was saved with the model.
_DEFAULT_PROCESSORS = {
    "videomae": "VideoMAEImageProcessor",
    "timesformer": "VideoMAEImageProcessor",
    "vivit": "VivitImageProcessor",
}

#: Largest values a model's config may declare, checked before the model is built: a 1 KB
#: ``config.json`` can otherwise ask for a position table or weights of many GiB (random-init
#: parameters the weights file does not hold are allocated all the same). Real video
#: transformers are far below (VideoMAE-g: 16 frames of 224 x 224, 1568 tokens, ~1e9 parameters).
CONFIG_BOUNDS: dict[str, int] = {
    "num_frames": 512,
    "image_size": 1024,  # each side; also the processor's size and crop
    "patch_size": 1024,
    "tubelet_size": 512,
    "hidden_size": 8192,
    "intermediate_size": 65536,
    "num_hidden_layers": 256,
    "num_attention_heads": 256,
    "num_labels": 65536,
    "tokens": 65536,  # (frames / tubelet) x (H / patch) x (W / patch): the position table's rows
    # a lower estimate (biases, norms and extra attention left out):
    # layers x (4 h^2 + 2 h i) + tokens x h + labels x h + 3 x tubelet x patch^2 x h
    "parameters": 2 * 10**9,
}

_BOUND_FIX = (
    "Use the config.json the model was trained with; a model really this large can be built with "
    "transformers yourself and passed to removalx.models.hf.wrap_hf_model(model, processor)."
)

_WRAP_HINT = (
    "Load it with removalx.load_model('hf:<folder or name>'), wrap it with "
    "removalx.models.hf.wrap_hf_model(model, processor), or with removalx.VideoClassifier(model, "
    "layout='BTCHW', mean=..., std=..., input_size=(T, H, W))."
)


def is_hf_model(model: Any) -> bool:
    """True for a ``transformers`` model object (checked without importing ``transformers``)."""
    return type(model).__module__.startswith("transformers.") and hasattr(model, "config")


def _get(obj: Any, key: str) -> Any:
    """``obj[key]`` or ``obj.key`` (processors hold sizes as dicts or ``SizeDict`` objects)."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def normalisation(processor: Any) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """``(mean, std)`` on [0, 1] clips equivalent to ``processor``'s rescale and normalise steps.

    The processor maps 8-bit pixels ``p`` to ``(p * f - o - mean) / std`` (``f`` the rescale
    factor, ``o`` 1 when ``offset`` is set, as in ViViT, else 0). With ``p = 255 x`` for a clip
    ``x`` in [0, 1] this is ``(x - (o + mean) / (255 f)) / (std / (255 f))``.
    """
    if processor is None:
        return None, None
    factor = float(_get(processor, "rescale_factor") or 1 / 255) if _get(processor, "do_rescale") else 1.0
    offset = 1.0 if _get(processor, "offset") and _get(processor, "do_rescale") else 0.0
    if not _get(processor, "do_normalize"):
        mean_p: Sequence[float] = (0.0, 0.0, 0.0)
        std_p: Sequence[float] = (1.0, 1.0, 1.0)
    else:
        mean_p = _get(processor, "image_mean") or (0.0, 0.0, 0.0)
        std_p = _get(processor, "image_std") or (1.0, 1.0, 1.0)
    scale = 255.0 * factor
    mean = tuple((offset + float(m)) / scale for m in mean_p)
    std = tuple(float(s) / scale for s in std_p)
    if all(abs(m) < 1e-12 for m in mean) and all(abs(s - 1) < 1e-12 for s in std):
        return None, None
    return mean, std


def _spatial_size(processor: Any, config: Any) -> tuple[int, int] | None:
    """``(H, W)`` the model takes: the processor's centre crop, else its fixed size, else the config's."""
    for key, active in (("crop_size", "do_center_crop"), ("size", None)):
        size = _get(processor, key)
        if size is None or (active is not None and not _get(processor, active)):
            continue
        h, w = _get(size, "height"), _get(size, "width")
        if h is not None or w is not None:
            what, fix = f"image processor's {key}", "Pass processor= with the crop the model was trained on."
            return (
                _bounded("height", h, what, "image_size", fix),
                _bounded("width", w, what, "image_size", fix),
            )
    side = getattr(config, "image_size", None)
    if isinstance(side, int):
        return side, side
    if isinstance(side, (list, tuple)) and len(side) == 2:
        return int(side[0]), int(side[1])
    return None


def _bounded(field: str, value: Any, what: str, bound_key: str | None = None, fix: str = _BOUND_FIX) -> int:
    """``value`` as an int in ``[1, CONFIG_BOUNDS[bound_key or field]]``, else a :class:`ModelError`."""
    bound = CONFIG_BOUNDS[bound_key or field]
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or not 1 <= value <= bound:
        raise ModelError(
            f"The {what} declares {field}={truncate(repr(value), 40)}; removalx accepts a whole number "
            f"from 1 to {bound} (a larger value would build a model of many GiB while loading).",
            fix,
        )
    return int(value)


def _pair(field: str, value: Any, what: str, bound_key: str | None = None) -> tuple[int, ...]:
    """An int or a sequence of ints of a config, each checked by :func:`_bounded`."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not 1 <= len(items) <= 3:
        raise ModelError(
            f"The {what} declares {field}={truncate(repr(value), 40)}; expected a whole number or a "
            "list of 2 or 3.",
            _BOUND_FIX,
        )
    return tuple(_bounded(field, v, what, bound_key) for v in items)


def check_config(config: Any, what: str = "model's config") -> None:
    """Refuse a config whose sizes exceed :data:`CONFIG_BOUNDS`, before any model is built.

    Checks the fields a video transformer's config declares (absent fields are not checked):
    ``num_frames``, ``image_size``, ``patch_size``, ``tubelet_size``, ``hidden_size``,
    ``intermediate_size``, ``num_hidden_layers``, ``num_attention_heads``, ``num_labels``, and
    two derived sizes: the number of tokens (the rows of the position table) and an estimate
    of the parameter count.

    Raises
    ------
    ModelError
        Naming the field, its value and the bound.
    """
    tokens, params = _config_sizes(config, what)
    _bounded("tokens", tokens, f"{what} (num_frames / tubelet_size x image_size / patch_size, squared)")
    _bounded("parameters", params, f"{what} (estimated parameter count)")


def _config_sizes(config: Any, what: str) -> tuple[int, int]:
    """``(tokens, estimated parameters)`` of a config, after checking each field it declares."""
    got: dict[str, tuple[int, ...]] = {}
    for field in CONFIG_BOUNDS:
        value = getattr(config, field, None)
        if value is None or field in ("tokens", "parameters"):
            continue
        got[field] = _pair(field, value, what)
    frames = got.get("num_frames", (1,))[0]
    side = got.get("image_size", (1,))
    hw = (side[0], side[-1])
    patch = got.get("patch_size", (16,))
    tube = got.get("tubelet_size", (1,))
    if len(tube) == 3:  # ViViT: [t, ph, pw]
        tube, patch = tube[:1], tube[1:]
    ph, pw = patch[0], patch[-1]
    tokens = -(-frames // tube[0]) * -(-hw[0] // ph) * -(-hw[1] // pw)
    h = got.get("hidden_size", (1,))[0]
    inter = got.get("intermediate_size", (4 * h,))[0]
    layers = got.get("num_hidden_layers", (1,))[0]
    labels = got.get("num_labels", (1,))[0]
    embed = 3 * tube[0] * ph * pw * h  # the patch (tubelet) embedding of RGB input
    return tokens, layers * (4 * h * h + 2 * h * inter) + tokens * h + labels * h + embed


def _class_names(config: Any) -> list[str] | None:
    id2label = getattr(config, "id2label", None) or {}
    k = int(getattr(config, "num_labels", len(id2label)) or 0)
    try:
        names = [str(id2label[i]) for i in range(k)]
    except KeyError:
        names = [str(id2label.get(str(i), f"LABEL_{i}")) for i in range(k)]
    return names or None


def _default_processor(model_type: str) -> Any:
    name = _DEFAULT_PROCESSORS.get(model_type)
    if name is None:
        return None
    tf = require_extra("transformers", "hf", "Hugging Face video models")
    cls = getattr(tf, name, None)
    return cls() if cls is not None else None


def wrap_hf_model(
    model: Any,
    processor: Any = None,
    *,
    device: str | None = None,
    name: str | None = None,
) -> VideoClassifier:
    """Wrap a ``transformers`` video classifier (VideoMAE, TimeSformer, ViViT, ...).

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A ``*ForVideoClassification`` model: ``pixel_values [B, T, C, H, W]`` -> ``logits [B, K]``;
        its config gives ``num_frames``, ``image_size`` and ``id2label``.
    processor : image processor, optional
        The model's image processor (``AutoImageProcessor.from_pretrained(folder)``): its size,
        crop, rescale factor, mean and std. Default: the processor saved with the model
        (``config._name_or_path``, read from disk or the cache, never downloaded), else the
        family's default processor (with a warning), else no normalisation (with a warning).
    device : str, optional
        Where to run (default: where the model's parameters are).
    name : str, optional
        Shown in reports (default: ``hf:<name_or_path>``).

    Returns
    -------
    VideoClassifier
        Layout ``BTCHW``, ``input_size = (num_frames, H, W)`` (clips of any size are resized
        inside the wrapper; attributions stay at the clip's size), the processor's
        normalisation, and the class names of ``id2label``.
    """
    if not is_hf_model(model):
        raise ModelError(
            f"wrap_hf_model expects a transformers model, got {type(model).__name__}.",
            "Wrap other models with removalx.VideoClassifier(module, layout=...).",
        )
    config = model.config
    model_type = str(getattr(config, "model_type", "") or "")
    source = str(getattr(config, "_name_or_path", "") or getattr(model, "name_or_path", "") or "")
    if processor is None and source:
        processor = _saved_processor(source)
    sized_by = processor  # a default processor's size is not the model's: use the config's
    if processor is None:
        processor = _default_processor(model_type)
        if processor is not None:
            warnings.warn(
                f"No image processor saved with the {model_type} model; using the defaults of "
                f"{type(processor).__name__} (mean {tuple(_get(processor, 'image_mean') or ())}). Pass "
                "processor= to wrap_hf_model if the model was trained with another normalisation.",
                UserWarning,
                stacklevel=2,
            )
        else:
            warnings.warn(
                f"No image processor known for model type {model_type or '(unknown)'!r}: clips go to the "
                "model in [0, 1] without normalisation. Pass processor= to wrap_hf_model.",
                UserWarning,
                stacklevel=2,
            )
    frames = getattr(config, "num_frames", None) or _get(processor, "num_frames")
    spatial = _spatial_size(sized_by, config)
    if not isinstance(frames, int) or frames < 1 or spatial is None:
        raise ModelError(
            f"Cannot tell the input size of the {type(model).__name__}: its config has num_frames="
            f"{truncate(repr(frames), 40)} and no usable image_size or processor size.",
            _WRAP_HINT,
        )
    if int(getattr(config, "num_channels", 3) or 3) != 3:
        raise ModelError(
            f"The {type(model).__name__} takes {config.num_channels} channels; removalx explains RGB clips.",
            "Use a model with num_channels=3.",
        )
    mean, std = normalisation(processor)
    size = (int(frames), *spatial)
    return VideoClassifier(
        model,
        layout="BTCHW",
        mean=mean,
        std=std,
        input_size=size,
        device=device,
        class_names=_class_names(config),
        name=name or f"hf:{truncate(source or type(model).__name__, 80)}",
        clip_size=size,
    )


def _saved_processor(source: str) -> Any:
    """The image processor saved with the model at ``source`` (folder or cached name), or ``None``."""
    tf = require_extra("transformers", "hf", "Hugging Face video models")
    try:
        return tf.AutoImageProcessor.from_pretrained(source, local_files_only=True)
    except Exception:  # no preprocessor_config.json: the caller falls back to the family default
        return None


def load_hf_model(target: str, device: str | None = None) -> VideoClassifier:
    """Load ``target`` (a local folder or a model name in the Hugging Face cache) and wrap it.

    Uses ``AutoModelForVideoClassification.from_pretrained(target, local_files_only=True)`` and
    ``AutoImageProcessor.from_pretrained(target, local_files_only=True)``: nothing is
    downloaded. Raises :class:`~removalx.errors.ModelError` when the folder or cache entry is
    missing or holds no video classifier, and
    :class:`~removalx.errors.MissingExtraError` without ``transformers``.
    """
    tf = require_extra("transformers", "hf", "The hf: model spec")
    target = target.strip()
    if not target:
        raise ModelError(
            "The hf: model spec names no model.", "Write hf:path/to/folder or hf:owner/name (a cached model)."
        )
    local = Path(target).expanduser()
    where = str(local) if local.is_dir() else target
    try:
        config = tf.AutoConfig.from_pretrained(where, local_files_only=True)
        check_config(config, f"config of {truncate(target, 80)!r}")  # before anything is allocated
        model = tf.AutoModelForVideoClassification.from_pretrained(
            where, config=config, local_files_only=True
        )
    except ModelError:
        raise
    except OSError as exc:
        raise ModelError(
            f"Cannot load Hugging Face model {truncate(target, 120)!r}: it is neither a folder with "
            f"config.json and weights nor a model in the Hugging Face cache ({truncate(str(exc), 200)}).",
            "Pass a folder written by model.save_pretrained(folder), or download the model once "
            f"(`hf download {truncate(target, 80)}`); removalx never downloads models itself.",
        ) from exc
    except ValueError as exc:
        raise ModelError(
            f"{truncate(target, 120)!r} is not a video classification model: {truncate(str(exc), 200)}",
            "Use a *ForVideoClassification checkpoint (VideoMAE, TimeSformer, ViViT, ...).",
        ) from exc
    processor = _saved_processor(where)
    return wrap_hf_model(model, processor, device=device, name=f"hf:{truncate(target, 80)}")
