"""Hostile recipes: every one ends in a short RecipeError (CLI exit 3), with bounded work."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import removalx
import removalx.core.recipe as recipe_mod
from removalx.cli import EXIT_INPUT, main
from removalx.core.recipe import MAX_RECIPE_BYTES, MAX_RECIPE_DEPTH, MAX_SEED, builtin_recipes, load_recipe
from removalx.core.registry import get_registry
from removalx.core.rng import hash_uniform
from removalx.errors import PluginNotFoundError, RecipeError, short_repr, truncate

#: The four stages a pipeline recipe must name (grid3d: no slic import needed).
BASE = (
    "segmentation: {name: grid3d}\n"
    "feature_selection: {name: bernoulli}\n"
    "sample_selection: {name: fixed}\n"
    "summary: {name: linear}\n"
)
#: Longest error message a hostile recipe may produce (the fix line lists the built-ins).
MAX_MESSAGE = 2000


def _alias_bomb(levels: int = 9, indent: str = "") -> str:
    """Billion laughs: level k repeats level k - 1 nine times (9**levels leaves, ~350 bytes)."""
    lines = [f"{indent}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for k in range(1, levels):
        lines.append(f"{indent}l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _merge_bomb(levels: int = 12) -> str:
    """The same with YAML merge keys: level k merges level k - 1 nine times."""
    lines = ["  m0: &m0 {x: 1, y: 2, z: 3}"]
    for k in range(1, levels):
        lines.append(f"  m{k}: &m{k} {{<<: [" + ", ".join([f"*m{k - 1}"] * 9) + "]}")
    return BASE + "description:\n" + "\n".join(lines) + "\n"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


#: name -> (file content, fragment the message must contain)
HOSTILE_FILES: dict[str, tuple[bytes, str]] = {
    "alias bomb": (_alias_bomb().encode(), "more than 100000 values"),
    "alias bomb in a field": (
        (BASE + "description:\n" + _alias_bomb(indent="  ")).encode(),
        "more than 100000 values",
    ),
    "merge-key bomb": (_merge_bomb().encode(), "more than 100000 values"),
    "recursive alias": (
        (BASE + "description: &a [1, *a]\n").encode(),
        "refers to a list or mapping that contains it",
    ),
    "500-level nesting": ((BASE + f"description: {_nested(500)}\n").encode(), "nested more than 50 levels"),
    "deep through aliases": (
        (BASE + f"reference: &d {_nested(30)}\ndescription: {'[' * 30}*d{']' * 30}\n").encode(),
        "nested more than 50 levels deep (aliases included)",
    ),
    "larger than 1 MiB": (
        (BASE + "description: " + "x" * MAX_RECIPE_BYTES + "\n").encode(),
        "larger than 1024 KiB",
    ),
    "random bytes": (
        np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "not a text YAML file",
    ),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "not a text YAML file"),
    "NUL bytes": (BASE.encode() + b"description: a\x00b\n", "not a text YAML file"),
    "base-60 integer of 200k digits": (
        (BASE + "seed: " + ":".join(["1"] * 100_000) + "\n").encode(),
        "integer literal is longer than 100 characters",
    ),
    "python tag": (
        (BASE + "description: !!python/object/apply:os.system ['echo hi']\n").encode(),
        "not valid YAML",
    ),
    "infinite float": (
        (BASE.replace("{name: linear}", "{name: linear, alpha: .inf}")).encode(),
        "summary.alpha = inf",
    ),
    "NaN in a list": (
        (BASE.replace("{name: grid3d}", "{name: grid3d, cells: [2, .nan, 2]}")).encode(),
        "segmentation.cells.1 = nan",
    ),
    "integer beyond 64 bits": (
        (BASE.replace("{name: fixed}", "{name: fixed, n_samples: 100000000000000000000}")).encode(),
        "sample_selection.n_samples = 100000000000000000000 (outside the 64-bit integer range)",
    ),
    "float seed": ((BASE + "seed: 1.0e+23\n").encode(), "seed: Value error, a seed is an integer"),
    "string seed": ((BASE + "seed: 1e23\n").encode(), "a seed is an integer in [0, 2**63 - 1], not a str"),
    "negative seed": ((BASE + "seed: -1\n").encode(), "seed: Input should be greater than or equal to 0"),
    "plugin name is a huge list": (
        (BASE.replace("{name: linear}", "{name: [" + ", ".join(["x"] * 50_000) + "]}")).encode(),
        "'summary' must be a mapping with a 'name' key naming a plugin",
    ),
    "huge unknown key": (  # an explicit key (?) may be longer than 1024 characters
        (
            BASE.replace(
                "sample_selection: {name: fixed}\n",
                "sample_selection:\n  name: fixed\n  ? " + "k" * 200_000 + "\n  : 1\n",
            )
        ).encode(),
        "unknown key",
    ),
    "huge wrong value": (
        (
            BASE.replace("{name: fixed}", "{name: fixed, n_samples: [" + ", ".join(["1"] * 50_000) + "]}")
        ).encode(),
        "list of 50000 items",
    ),
}


def _check_cli(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == EXIT_INPUT
    err = capsys.readouterr().err
    assert fragment in err
    assert "Traceback" not in err
    assert len(err) < MAX_MESSAGE
    return err


@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_hostile_recipe_file(case, tmp_path, capsys):
    content, fragment = HOSTILE_FILES[case]
    path = tmp_path / "recipe.yaml"
    path.write_bytes(content)
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    assert fragment in str(e.value)
    assert len(str(e.value)) < MAX_MESSAGE
    _check_cli(["recipes", "validate", str(path)], fragment, capsys)


def test_binary_program_as_recipe(capsys):
    """`removalx recipes validate /bin/ls` (any existing binary; no .yaml suffix)."""
    binary = next((p for p in ("/bin/ls", "/usr/bin/env", "/bin/sh") if Path(p).is_file()), None)
    if binary is None:
        pytest.skip("no binary program to read")
    with pytest.raises(RecipeError, match="not a text YAML file"):
        load_recipe(binary)
    _check_cli(["recipes", "validate", binary], "not a text YAML file", capsys)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("summary.alpha={" + _alias_bomb().replace("\n", ", ").rstrip(", ") + "}", "more than 100000 values"),
        (f"summary.alpha={_nested(500)}", "nested more than 50 levels"),
        ("summary.alpha=.inf", "summary.alpha = inf"),
        ("removal.value=.nan", "removal.value = nan"),
        ("removal.value=-.inf", "removal.value = -inf"),
        ("seed=1e23", "a seed is an integer"),
        ("seed=3.0", "a seed is an integer"),
        ("seed=-1", "greater than or equal to 0"),
        (f"seed={2**63}", "outside the 64-bit integer range"),
        ("summary.alpha=" + "x" * (MAX_RECIPE_BYTES + 1), "recipes are limited to 1048576 bytes"),
        ("a" + ".a" * MAX_RECIPE_DEPTH + "=1", f"more than {MAX_RECIPE_DEPTH} dotted parts"),
        ("summary.alpha=" + "9" * 5000, "integer literal is longer than 100 characters"),
    ],
    ids=lambda v: v[:30],
)
def test_hostile_override(override, fragment, capsys):
    with pytest.raises(RecipeError) as e:
        load_recipe("lime3d", overrides=[override])
    assert fragment in str(e.value)
    assert len(str(e.value)) < MAX_MESSAGE
    _check_cli(["recipes", "validate", "lime3d", "--set", override], fragment, capsys)


def test_alias_bomb_is_refused_without_expanding_it(tmp_path):
    """9**9 (387 million) strings if expanded: the loader must refuse it in a few MB."""
    path = tmp_path / "bomb.yaml"
    path.write_text(BASE + "description:\n" + _alias_bomb(indent="  "))
    tracemalloc.start()
    try:
        with pytest.raises(RecipeError, match="more than 100000 values"):
            load_recipe(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6


def test_node_limit_counts_alias_expansions(monkeypatch):
    # Hand count: top mapping 1 + key a 1 + [1, 2, 3] 4 + key b 1 + [*a, *a] (1 + 4 + 4) = 16.
    text = "{a: &a [1, 2, 3], b: [*a, *a]}"
    monkeypatch.setattr(recipe_mod, "MAX_RECIPE_NODES", 16)
    assert recipe_mod._safe_load(text, "t") == {"a": [1, 2, 3], "b": [[1, 2, 3], [1, 2, 3]]}
    monkeypatch.setattr(recipe_mod, "MAX_RECIPE_NODES", 15)
    with pytest.raises(RecipeError, match="more than 15 values"):
        recipe_mod._safe_load(text, "t")


def test_depth_limit_boundary(tmp_path):
    """The top-level mapping is level 1: 49 nested lists inside it are allowed, 50 are not."""
    ok = tmp_path / "ok.yaml"
    ok.write_text(BASE + f"description: {_nested(MAX_RECIPE_DEPTH - 1)}\n")
    with pytest.raises(RecipeError) as e:  # passes the limits, then is not a string
        load_recipe(ok)
    assert "description: Input should be a valid string" in str(e.value)
    assert "levels" not in str(e.value)
    deep = tmp_path / "deep.yaml"
    deep.write_text(BASE + f"description: {_nested(MAX_RECIPE_DEPTH)}\n")
    with pytest.raises(RecipeError, match=f"nested more than {MAX_RECIPE_DEPTH} levels"):
        load_recipe(deep)


def test_small_aliases_and_builtins_still_load(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "segmentation: {name: grid3d, cells: &c [2, 3, 4]}\nfeature_selection: {name: bernoulli}\n"
        "sample_selection: {name: fixed, n_samples: 8}\nsummary: {name: linear}\n"
        "description: &d shared\nreference: *d\n"
    )
    r = load_recipe(path)
    assert tuple(r.segmentation.cells) == (2, 3, 4) and r.reference == "shared"
    for name, p in builtin_recipes().items():  # the bounded loader reads what yaml.safe_load reads
        assert recipe_mod._safe_load(p.read_text(), name) == yaml.safe_load(p.read_text())


# -- recipes given as Python data --------------------------------------------------------
def _base_mapping(**extra):
    return {
        "segmentation": {"name": "grid3d"},
        "feature_selection": {"name": "bernoulli"},
        "sample_selection": {"name": "fixed"},
        "summary": {"name": "linear"},
        **extra,
    }


def _shared_bomb():
    value: list = ["lol"] * 9
    for _ in range(8):
        value = [value] * 9  # 9**9 leaves, 9 list objects
    return value


def _self_referencing():
    value: list = [1]
    value.append(value)
    return value


def _deep_list(depth):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"description": _shared_bomb()}, "more than 100000 values"),
        ({"description": _self_referencing()}, "contains itself (at description.1)"),
        ({"description": _deep_list(1000)}, "more than 50 levels deep"),
        ({"seed": float("inf")}, "seed = inf"),
        ({"seed": 1e23}, "a seed is an integer"),
        ({"seed": True}, "a seed is an integer"),
        ({"seed": 2**63}, "outside the 64-bit integer range"),
        ({"removal": {"name": "constant", "value": float("nan")}}, "removal.value = nan"),
        ({"removal": {"name": "constant", "value": np.float32("inf")}}, "removal.value = inf"),
    ],
    ids=[
        "shared-bomb",
        "self-reference",
        "deep-1000",
        "seed-inf",
        "seed-1e23",
        "seed-bool",
        "seed-2**63",
        "nan",
        "numpy-inf",
    ],
)
def test_hostile_mapping(extra, fragment):
    with pytest.raises(RecipeError) as e:
        load_recipe(_base_mapping(**extra))
    assert fragment in str(e.value)
    assert len(str(e.value)) < MAX_MESSAGE


def test_many_errors_are_capped():
    keys = {f"unknown_{i}": i for i in range(500)}
    with pytest.raises(RecipeError) as e:
        load_recipe(_base_mapping(**keys))
    msg = str(e.value)
    assert "... and 490 more errors" in msg
    assert msg.count("unknown key") == 10


def test_long_names_and_paths_are_truncated(tmp_path, capsys):
    with pytest.raises(PluginNotFoundError) as e:
        load_recipe("lime3d", overrides={"removal.name": "b" * 100_000})
    assert "removal.name" in str(e.value) and len(str(e.value)) < MAX_MESSAGE
    cases = [
        ("n" * 100_000, "No recipe file or built-in recipe named 'nnnn"),
        (str(tmp_path / ("p" * 5000 + ".yaml")), "does not exist"),  # too long for the file system
    ]
    for source, fragment in cases:
        with pytest.raises(RecipeError, match=fragment) as e:
            load_recipe(source)
        assert len(str(e.value)) < MAX_MESSAGE
        _check_cli(["recipes", "validate", source], fragment, capsys)
    with pytest.raises(RecipeError, match="is not a 'key=value' string") as e:
        load_recipe("lime3d", overrides=[list(range(10**6))])
    assert len(str(e.value)) < MAX_MESSAGE


# -- seeds -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 7, MAX_SEED, np.int64(5)])
def test_valid_seeds(seed):
    assert load_recipe("lime3d", seed=seed).seed == int(seed)
    # the whole range works where seeds are used
    torch.Generator().manual_seed(int(seed))
    assert hash_uniform(int(seed), torch.arange(2), (3,)).shape == (2, 3)


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 10**30, 3.0, 1e23, float("nan"), "3"])
def test_invalid_seeds(seed):
    with pytest.raises(RecipeError, match="seed"):
        load_recipe("lime3d", seed=seed)
    with pytest.raises(RecipeError, match="seed"):
        removalx.Explainer.from_recipe("lime3d", seed=seed, progress=False)


def test_plugin_configs_refuse_non_finite_floats():
    """Second line of defence: plugin configs built without a recipe refuse NaN/inf too."""
    config = get_registry().get("removal", "constant").config
    assert config(value=0.5).value == 0.5
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite number"):
            config(value=bad)


# -- short_repr / truncate -----------------------------------------------------------------
def test_short_repr_is_bounded_and_cheap():
    assert short_repr(list(range(10**6))) == "list of 1000000 items [0, 1, 2, ...]"
    assert short_repr({"name": "x"}) == "{'name': 'x'}"
    assert short_repr(2**100_000) == "<int of 100001 bits>"  # repr() would raise on 3.11+
    assert short_repr("x" * 1000, limit=12) == "'xxxxxxxx..."
    assert short_repr(_shared_bomb()).startswith("list of 9 items [list of 9 items")
    assert short_repr(_self_referencing()) == "[1, [1, list of 2 items]]"
    for value in (_shared_bomb(), _deep_list(10_000), "y" * 10**6, {i: i for i in range(10**5)}):
        assert len(short_repr(value)) <= 80
    assert truncate("abcdef", 4) == "a..." and truncate("abc", 4) == "abc"
