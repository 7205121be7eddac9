"""``ablate --vary`` with whole stage configs and display names, and ``--variants FILE`` (issue 24 §5)."""

from __future__ import annotations

import json

import pytest

from removalx.core.recipe import load_recipe
from removalx.errors import ConfigError
from removalx.experiments.api import ablate_triples
from removalx.experiments.variants import (
    MAX_VARIANTS,
    MAX_VARY_CHARS,
    load_variants,
    parse_vary,
    split_top,
)


def test_split_top_keeps_commas_inside_braces_brackets_and_quotes():
    assert split_top("{a: 1, b: 2},[1,2], 'x,y' ,c") == ["{a: 1, b: 2}", "[1,2]", "'x,y'", "c"]
    assert split_top("a:{x: {y: 1, z: 2}},b:{w: 3}") == ["a:{x: {y: 1, z: 2}}", "b:{w: 3}"]


def test_the_dotted_form_is_unchanged():
    vs = parse_vary("removal.name=constant,blur", "lime3d")
    assert [v.label for v in vs] == ["lime3d[removal.name=constant]", "lime3d[removal.name=blur]"]
    assert [v.overrides for v in vs] == [{"removal.name": "constant"}, {"removal.name": "blur"}]
    assert all(v.display_name is None for v in vs)


def test_a_dotted_value_may_be_a_list_with_commas():
    vs = parse_vary("removal.value=[0.5, 0.5, 0.5],0", "lime3d")
    assert [v.overrides["removal.value"] for v in vs] == [[0.5, 0.5, 0.5], 0]


def test_stage_mappings_in_yaml_and_json_give_the_same_overrides():
    yaml_form = parse_vary("removal={name: blur, sigma: 5},{name: constant}", "lime3d")
    json_form = parse_vary('removal={"name": "blur", "sigma": 5},{"name": "constant"}', "lime3d")
    assert [v.overrides for v in yaml_form] == [v.overrides for v in json_form]
    assert yaml_form[0].overrides == {"removal.name": "blur", "removal.sigma": 5}
    assert [v.label for v in yaml_form] == ["lime3d[removal=blur,sigma=5]", "lime3d[removal=constant]"]


def test_display_names_become_the_labels():
    vs = parse_vary("removal=black:{name: constant},blur5:{name: blur, sigma: 5},mean:mean", "lime3d")
    assert [(v.label, v.display_name) for v in vs] == [
        ("black", "black"),
        ("blur5", "blur5"),
        ("mean", "mean"),
    ]
    assert vs[2].overrides == {"removal.name": "mean"}


def test_a_mapping_with_name_replaces_the_stage_and_one_without_changes_its_fields():
    named, fields = parse_vary("removal={name: blur, sigma: 5},{value: 0.5}", "lime3d")
    stage = load_recipe("lime3d", overrides=named.overrides).stage("removal")
    assert stage is not None and stage.model_dump() == {"name": "blur", "sigma": 5.0}
    stage = load_recipe("lime3d", overrides=fields.overrides).stage("removal")  # lime3d: constant 0
    assert stage is not None and stage.model_dump() == {"name": "constant", "value": 0.5}


@pytest.mark.parametrize(
    ("vary", "needle"),
    [
        ("removal={name: blur, sigma: 5,{name: constant}", "never closed"),
        ("removal={name: blur}},{name: constant}", "unbalanced"),
        ("removal={name: blur, sigma: 5: 3},{name: constant}", "not valid YAML"),
        ("removal={name:blur},{name: constant}", "space after"),
        ("removal={name: blur}", "1 variant"),
        ("removal.name", "expected KEY=V1,V2"),
        ("=a,b", "expected KEY=V1,V2"),
        ("removal=bad name!:{name: blur},x:{name: mean}", "expected a mapping"),
        ("removal=random:{name: blur},x:{name: mean}", "random-map baseline"),
        ("removal=a:{name: blur},a:{name: mean}", "same label"),
        ("removal=[1, 2],{name: mean}", "expected a mapping"),
    ],
)
def test_bad_syntax_is_a_config_error_naming_the_fix(vary, needle):
    with pytest.raises(ConfigError) as info:
        parse_vary(vary, "lime3d")
    assert needle in str(info.value)
    assert "Fix:" in str(info.value)


def test_sizes_are_bounded():
    with pytest.raises(ConfigError, match="longer than"):
        parse_vary("seed=" + ",".join(["1"] * MAX_VARY_CHARS), "lime3d")
    with pytest.raises(ConfigError, match=f"2 to {MAX_VARIANTS}"):
        parse_vary("seed=" + ",".join(str(i) for i in range(MAX_VARIANTS + 1)), "lime3d")
    with pytest.raises(ConfigError, match="letters, digits"):
        parse_vary("removal=" + "n" * 41 + ":{name: blur},b:{name: mean}", "lime3d")
    long = parse_vary(
        "removal={name: blur, sigma: 1.00000000000000000000000000000000000001},{name: mean}", "r" * 70
    )
    assert len(long[0].label) <= 80


def test_every_variant_is_validated_before_any_work():
    with pytest.raises(ConfigError) as info:
        ablate_triples("lime3d", "removal={name: blur, sigmaa: 5},{name: constant}")
    text = str(info.value)
    assert "lime3d[removal=blur,sigmaa=5]" in text and "sigmaa" in text
    with pytest.raises(Exception, match="no_such_removal"):
        ablate_triples("lime3d", "removal=a:{name: no_such_removal},b:{name: blur}")


def test_exactly_one_of_vary_and_variants():
    with pytest.raises(ConfigError, match="exactly one"):
        ablate_triples("lime3d")
    with pytest.raises(ConfigError, match="exactly one"):
        ablate_triples("lime3d", "removal.name=constant,blur", [{"removal": "blur"}, {"removal": "mean"}])


def test_variants_file(tmp_path):
    path = tmp_path / "variants.yaml"
    path.write_text(
        "- name: black\n  removal: {name: constant}\n"
        "- name: blur5\n  removal: {name: blur, sigma: 5}\n  sample_selection.n_samples: 16\n"
        "- removal: mean\n"
    )
    triples = ablate_triples("lime3d", variants=str(path))
    assert [t[0] for t in triples] == ["black", "blur5", "lime3d[removal=mean]"]
    assert triples[1][2] == {"removal.name": "blur", "removal.sigma": 5, "sample_selection.n_samples": 16}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name: a\nremoval: blur\n", "expected a list"),
        ("- name: a\n  removal: blur\n", "1 variant"),
        ("- 3\n- name: b\n  removal: blur\n", "expected a mapping"),
        ("- name: a\n- name: b\n  removal: blur\n", "changes nothing"),
        ("- removal: {name: blur\n- removal: mean\n", "--variants"),
    ],
)
def test_bad_variants_files(tmp_path, text, needle):
    path = tmp_path / "v.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_variants(str(path), "lime3d")


def test_cli_bad_vary_is_an_error_without_traceback(capsys, tmp_path):
    from removalx.cli.main import main

    db = str(tmp_path / "r.db")
    code = main(
        ["ablate", "-r", "lime3d", "--vary", "removal={name: blur, sigma: 5,{name: constant}", "--db", db]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert "never closed" in err and "Fix:" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as info:  # argparse: neither --vary nor --variants
        main(["ablate", "-r", "lime3d", "--db", db])
    assert info.value.code == 2
    assert "--vary" in capsys.readouterr().err
    assert not (tmp_path / "r.db").exists()  # nothing was run


def test_cli_variants_file_names_reach_the_store(tmp_path, capsys):
    from removalx.cli.main import main
    from removalx.experiments.store import Store

    path = tmp_path / "variants.yaml"
    path.write_text(
        "- name: black\n  removal: {name: constant}\n- name: gray\n  removal: {name: constant, value: 0.5}\n"
    )
    db = tmp_path / "r.db"
    out = tmp_path / "x.json"
    argv = ["ablate", "-r", "lime3d", "--variants", str(path), "--db", str(db), "--no-substrate-check"]
    argv += ["--n-videos", "2", "--frames", "8", "--size", "32", "-q", "--metrics", "deletion"]
    argv += ["--metric-set", "deletion.steps=4", "--set", "segmentation.name=grid3d"]
    argv += [
        "--set",
        "segmentation.cells=[1,2,2]",
        "--set",
        "sample_selection.n_samples=8",
        "--export",
        str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "black vs gray" not in printed and "gray vs black on deletion" in printed
    assert "substrate" not in printed  # --no-substrate-check: no copies, no warning
    store = Store(db, read_only=True)
    try:
        scores = store.scores()
    finally:
        store.close()
    assert {s["method"] for s in scores} == {"black", "gray"}
    assert {s["metric"] for s in scores} == {"deletion"}
    assert {r["method"] for r in json.loads(out.read_text())["scores"]} == {"black", "gray"}
