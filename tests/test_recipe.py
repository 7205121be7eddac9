"""Recipes: loading, overrides, validation errors, schema."""

from __future__ import annotations

import pytest

import removalx
from removalx.core.recipe import builtin_recipes, load_recipe, parse_overrides, recipe_model
from removalx.errors import PluginNotFoundError, RecipeError, RemovalxError

SIX = ["kernelshap3d", "lime3d", "loco_lv", "occlusion3d", "rise3d", "univariate_lv"]


def test_builtin_recipes_present_and_valid():
    names = builtin_recipes()
    for n in SIX:
        assert n in names
        r = load_recipe(n)
        assert r.name == n
        assert "Table 2" in r.reference


def test_table2_choices():
    lime = load_recipe("lime3d")
    assert lime.segmentation.name == "slic3d" and lime.segmentation.n_segments == 200
    assert lime.sample_selection.n_samples == 1000
    assert lime.removal.name == "constant" and lime.removal.value == 0.0
    assert load_recipe("kernelshap3d").summary.name == "shapley"
    assert load_recipe("rise3d").summary.name == "mask_mean"
    assert load_recipe("loco_lv").summary.base == "full"
    assert load_recipe("univariate_lv").summary.base == "empty"
    assert load_recipe("occlusion3d").summary.name == "value"


def test_overrides_leaf_and_seed():
    r = load_recipe("lime3d", overrides=["sample_selection.n_samples=200", "removal.value=0.5"], seed=7)
    assert r.sample_selection.n_samples == 200
    assert r.removal.value == 0.5
    assert r.seed == 7


def test_override_name_replaces_stage_config():
    r = load_recipe("lime3d", overrides={"removal.name": "blur", "removal.sigma": 3.0})
    assert r.removal.name == "blur" and r.removal.sigma == 3.0
    # switching segmentation drops slic3d's keys and takes the new plugin's defaults
    r = load_recipe("lime3d", overrides={"segmentation.name": "grid3d"})
    assert r.segmentation.name == "grid3d" and tuple(r.segmentation.cells) == (4, 7, 7)


def test_unknown_plugin_lists_valid_names():
    with pytest.raises(PluginNotFoundError) as e:
        load_recipe("lime3d", overrides={"removal.name": "blurr"})
    msg = str(e.value)
    assert "removal.name" in msg and "'blurr'" in msg
    for valid in ("blur", "constant", "mean"):
        assert valid in msg


def test_unknown_key_names_dotted_path_and_valid_keys(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(
        "segmentation: {name: slic3d, n_segmentz: 10}\nfeature_selection: {name: bernoulli}\n"
        "sample_selection: {name: fixed}\nsummary: {name: linear}\n"
    )
    with pytest.raises(RecipeError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert str(p) in msg
    assert "segmentation.n_segmentz" in msg and "unknown key" in msg
    assert "n_segments" in msg  # the valid keys are listed


def test_bad_value_and_missing_stage(tmp_path):
    with pytest.raises(RecipeError, match=r"sample_selection\.n_samples"):
        load_recipe("lime3d", overrides={"sample_selection.n_samples": -3})
    p = tmp_path / "r.yaml"
    p.write_text("segmentation: {name: grid3d}\n")
    with pytest.raises(RecipeError, match="feature_selection"):
        load_recipe(p)


def test_python_tag_is_refused(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(RecipeError, match="python"):
        load_recipe(p)


def test_missing_file_and_unknown_builtin(tmp_path):
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(RecipeError, match="lime3d"):
        load_recipe("no_such_recipe")


def test_override_syntax_error():
    with pytest.raises(RecipeError, match="key=value"):
        parse_overrides(["sample_selection.n_samples"])
    assert parse_overrides(["a.b=[1, 2]", "c=blur"]) == {"a.b": [1, 2], "c": "blur"}


def test_recipe_errors_are_removalx_errors():
    with pytest.raises(RemovalxError):
        load_recipe("lime3d", overrides={"summary.nope": 1})


def test_schema_has_every_stage_and_plugin():
    schema = recipe_model().model_json_schema()
    text = str(schema)
    for stage in ("segmentation", "feature_selection", "summary", "explainer"):
        assert stage in schema["properties"]
    for plugin in ("slic3d", "shapley_kernel", "mask_mean", "posneg"):
        assert plugin in text


def test_roundtrip_yaml(tmp_path):
    r = load_recipe("rise3d", overrides={"sample_selection.n_samples": 10})
    p = tmp_path / "r.yaml"
    p.write_text(r.to_yaml())
    assert load_recipe(p) == r


def test_public_api_load_recipe():
    assert removalx.load_recipe("loco_lv").feature_selection.name == "leave_one_out"
