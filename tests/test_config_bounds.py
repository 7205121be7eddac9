"""Every numeric field of a built-in plugin config is bounded at validation (issue 27 §3.8).

Values that validated but broke later -- ``segmentation.spacing=[1e308, 1, 1]`` (SLIC aborts
the process), ``n_segments=1e9`` (gigabytes), ``n_segments=true`` (taken as 1),
``kernel_width=1e308`` / ``sigma=1e308`` (overflow), ``epochs=1e9`` (trains for ever), a recipe
``batch_size=1e9`` -- are refused by pydantic when the config is built. Driven by a table of
absurd values, plus a sweep over every numeric field that checks the sweep's own findings.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from removalx.core.recipe import MAX_BATCH_SIZE, Recipe
from removalx.core.registry import get_registry

HUGE, OVERFLOW = 10**9, 1e308

#: (stage, plugin, field, absurd value)
TABLE: list[tuple[str, str, str, Any]] = [
    ("segmentation", "slic3d", "spacing", [OVERFLOW, 1, 1]),
    ("segmentation", "slic3d", "spacing", [0.0, 1, 1]),
    ("segmentation", "slic3d", "n_segments", HUGE),
    ("segmentation", "slic3d", "n_segments", True),
    ("segmentation", "slic3d", "n_segments", 1e9),
    ("segmentation", "slic3d", "compactness", OVERFLOW),
    ("segmentation", "slic3d", "sigma", OVERFLOW),
    ("segmentation", "slic3d", "max_num_iter", HUGE),
    ("segmentation", "frames2d", "n_segments", True),
    ("segmentation", "frames2d", "markers", HUGE),
    ("segmentation", "frames2d", "scale", OVERFLOW),
    ("segmentation", "grid3d", "cells", [HUGE, 7, 7]),
    ("segmentation", "grid3d", "cells", [True, 7, 7]),
    ("segmentation", "soft_grid", "cells", [4, 7, HUGE]),
    ("segmentation", "sliding_window", "window", [4, HUGE, 16]),
    ("segmentation", "sliding_window", "divisions", [4, 7, True]),
    ("segmentation", "flow_tubes", "mask_size", [HUGE, 16]),
    ("segmentation", "flow_tubes", "levels", HUGE),
    ("segmentation", "flow_tubes", "poly_sigma", OVERFLOW),
    ("sample_selection", "fixed", "n_samples", True),
    ("sample_selection", "adaptive", "top_k", HUGE),
    ("sample_selection", "adaptive", "tolerance", OVERFLOW),
    ("summary", "linear", "kernel_width", OVERFLOW),
    ("summary", "linear", "alpha", OVERFLOW),
    ("behavior", "taylor", "iqr_factor", OVERFLOW),
    ("behavior", "taylor", "chunk", HUGE),
    ("removal", "blur", "sigma", OVERFLOW),
    ("removal", "noise", "sigma", OVERFLOW),
    ("removal", "inpaint", "radius", OVERFLOW),
    ("removal", "constant", "value", OVERFLOW),
    ("removal", "constant", "value", [0.5, 0.5, 2.0]),
    ("removal", "conditional", "region", HUGE),
    ("removal", "conditional", "region", True),
    ("removal", "conditional", "patch_size", [HUGE, 16]),
    ("metric", "deletion", "steps", HUGE),
    ("metric", "deletion", "steps", True),
    ("metric", "insertion", "batch_size", HUGE),
    ("metric", "insertion", "patch", True),
    ("metric", "deletion", "blur_sigma", OVERFLOW),
    ("metric", "kar", "epochs", HUGE),
    ("metric", "roar", "repeats", HUGE),
    ("metric", "kar", "n_train", True),
    ("metric", "spatial_pointing", "tolerance", OVERFLOW),
    ("metric", "saliency_metric", "blur_sigma", OVERFLOW),
    ("metric", "min_preservation_ratio", "phi0", OVERFLOW),
    ("explainer", "integrated_gradients", "steps", HUGE),
    ("explainer", "smoothgrad", "n_samples", True),
    ("explainer", "blur_ig", "max_sigma", OVERFLOW),
    ("explainer", "xrai", "levels", [50, HUGE]),
    ("explainer", "step", "kernel_size", [8, HUGE, 11]),
    ("explainer", "step", "iterations", HUGE),
    ("explainer", "ep3d", "max_blur", OVERFLOW),
    ("explainer", "ep2d", "learning_rate", OVERFLOW),
    ("explainer", "gradient", "internal_batch_size", HUGE),
]


def _config(stage: str, name: str) -> type[BaseModel]:
    return get_registry().get(stage, name).config


@pytest.mark.parametrize(
    "stage, name, field, value", TABLE, ids=[f"{s}.{n}.{f}={v!r}"[:60] for s, n, f, v in TABLE]
)
def test_absurd_values_are_refused_at_validation(stage, name, field, value):
    cls = _config(stage, name)
    assert field in cls.model_fields  # no vacuous pass: extra keys are refused too
    cls()  # the defaults validate
    with pytest.raises(ValidationError) as info:
        cls.model_validate({field: value})
    assert all(err["loc"][0] == field for err in info.value.errors())


def test_recipe_batch_size_is_bounded():
    base = {"name": "x"}
    assert Recipe.model_validate({**base, "batch_size": MAX_BATCH_SIZE}).batch_size == MAX_BATCH_SIZE
    for bad in (10**9, 1e9, True, 0):
        with pytest.raises(ValidationError):
            Recipe.model_validate({**base, "batch_size": bad})


#: Configs left out of the sweep (none: every built-in config is bounded).
OTHERS: set[tuple[str, str]] = set()
#: Fields whose large values are meaningful (seeds) or that are not sizes (model settings).
EXEMPT = {"seed", "train_seed", "num_classes", "input_size", "mean", "std", "vmin", "vmax", "fill_value"}


def _kinds(annotation: Any) -> set[type]:
    """The scalar types a field annotation admits (int, float), through Optional/tuple/Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, tuple, list):
        out: set[type] = set()
        for a in typing.get_args(annotation):
            if a is not Ellipsis:
                out |= _kinds(a)
        return out
    return {annotation} if annotation in (int, float) else set()


def _numeric_fields() -> list[tuple[str, str, str, type]]:
    reg = get_registry()
    rows = []
    for stage in ("segmentation", "sample_selection", "feature_selection", "removal", "behavior", "summary"):
        rows += [(stage, n) for n in reg.names(stage)]
    rows += [(s, n) for s in ("explainer", "metric", "visualization") for n in reg.names(s)]
    out = []
    for stage, name in rows:
        if (stage, name) in OTHERS or not str(reg.get(stage, name).config.__module__).startswith(
            "removalx_plugins"
        ):
            continue
        for field, info in reg.get(stage, name).config.model_fields.items():
            kinds = _kinds(info.annotation)
            if kinds and field not in EXEMPT:
                out.append((stage, name, field, int if kinds == {int} else float))
    return out


def _shaped(cls: type[BaseModel], field: str, value: Any) -> Any:
    """``value`` in the field's shape: a tuple field gets it in every position."""
    default = cls.model_fields[field].default
    if isinstance(default, (tuple, list)):
        return [value] * max(1, len(default))
    return value


def test_every_numeric_field_of_the_built_in_configs_is_bounded():
    fields = _numeric_fields()
    assert len(fields) > 60  # the sweep sees the configs
    unbounded = []
    for stage, name, field, kind in fields:
        cls = _config(stage, name)
        for value in (OVERFLOW, -OVERFLOW) + ((True, HUGE * 10**9) if kind is int else ()):
            try:
                cls.model_validate({field: _shaped(cls, field, value)})
            except ValidationError:
                continue
            if value == -OVERFLOW and kind is float:
                continue  # the sign is checked by the positive-value bounds where it matters
            unbounded.append(f"{stage}.{name}.{field}={value!r}")
    assert unbounded == []
