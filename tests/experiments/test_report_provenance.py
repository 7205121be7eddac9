"""The report's Setup part, methods paragraph and references.bib (issue 24 §3)."""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
import torch

from removalx.cli.experiments import main
from removalx.experiments import bibliography as bib
from removalx.experiments import provenance
from removalx.experiments.methods_text import methods_paragraph
from removalx.experiments.provenance import ExperimentFacts, MethodFacts, MetricFacts
from removalx.experiments.recipe_diff import MISSING, Change, common_changes, format_changes, recipe_changes
from tests.experiments.conftest import GRID, TINY


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


# -- bibliography ---------------------------------------------------------------------------------
def test_every_builtin_recipe_metric_and_explainer_has_an_entry():
    from removalx.core.recipe import builtin_recipes
    from removalx.core.registry import get_registry

    reg = get_registry()
    assert set(builtin_recipes()) <= set(bib.RECIPES), set(builtin_recipes()) - set(bib.RECIPES)
    assert set(reg.names("metric")) <= set(bib.METRICS), set(reg.names("metric")) - set(bib.METRICS)
    assert set(reg.names("explainer")) <= set(bib.EXPLAINERS)
    tables = [bib.RECIPES, bib.METRICS, bib.EXPLAINERS, bib.STAGE_PLUGINS, bib.STATISTICS, bib.PRESETS]
    for table in tables:
        for name, keys in table.items():
            assert keys, name
            assert all(k in bib.ENTRIES for k in keys), (name, keys)


def test_entries_are_well_formed_bibtex():
    for key, entry in bib.ENTRIES.items():
        assert re.match(
            r"@(article|inproceedings|incollection|misc|book)\{" + re.escape(key) + ",\n", entry
        ), key
        assert entry.count("{") == entry.count("}"), key
        for fieldname in ("title", "author", "year"):
            assert re.search(rf"\n  {fieldname}\s+= \{{", entry), (key, fieldname)
    assert bib.bibtex(["nope"]) == ""
    assert bib.bibtex(["holm1979", "holm1979"]).count("@article{holm1979") == 1


def test_references_for_a_custom_pipeline_follow_its_plugins():
    custom = {"name": "mine", "feature_selection": {"name": "shapley_kernel"}, "summary": {"name": "shapley"}}
    keys = bib.references_for([custom, None], ["deletion"], ["bootstrap_ci"], presets=["step"])
    assert keys == [
        "gayamorey2024revex",
        "lundberg2017shap",
        "li2021step",
        "petsiuk2018rise",
        "efron1993bootstrap",
        "efron1987bca",
    ]


def test_new_metrics_and_recipes_cite_the_papers_their_modules_follow():
    m, r = bib.METRICS, bib.RECIPES
    assert m["mprt"] == ("adebayo2018sanity",) and "hedstrom2024sanity" in m["emprt"]
    assert m["random_logit"] == ("sixt2020lie",) and m["road"] == ("rong2022road",)
    assert m["max_sensitivity"] == m["infidelity"] == ("yeh2019infidelity",)
    assert m["ris"] == m["ros"] == ("agarwal2022stability",)
    assert m["sensitivity_n"] == ("ancona2018towards",) and m["irof"] == ("rieger2020irof",)
    assert r["score_cam"] == ("wang2020scorecam",) and r["ablation_cam"] == ("desai2020ablationcam",)
    assert r["layer_cam"] == ("jiang2021layercam",) and r["grad_cam_pp"][0] == "chattopadhay2018gradcampp"
    assert "li2020study" in r["ep3d_eccvw"] and "li2020study" in r["ep3d_eccvw_shape"]
    assert "year          = {2024}" in bib.ENTRIES["hedstrom2024sanity"]  # arXiv form, Jan. 2024


def test_explainer_and_stage_options_and_models_add_their_papers():
    layercam = {"name": "mine", "explainer": {"name": "grad_cam", "variant": "layercam"}}
    assert bib.references_for([layercam]) == ["selvaraju2017gradcam", "jiang2021layercam"]
    plain = {"name": "grad_cam", "explainer": {"name": "grad_cam", "variant": "gradcam"}}
    assert bib.references_for([plain]) == ["selvaraju2017gradcam", "li2021step"]
    eccvw = {"name": "x", "explainer": {"name": "ep3d", "eccvw_weight": 300.0}}
    assert "li2020study" in bib.references_for([eccvw])
    assert "li2020study" not in bib.references_for(
        [{"name": "x", "explainer": {"name": "ep3d", "eccvw_weight": 0.0}}]
    )
    score = {
        "name": "c",
        "segmentation": {"name": "activation_maps"},
        "summary": {"name": "cam_weights", "weights": "score"},
    }
    assert bib.references_for([score]) == ["gayamorey2024revex", "wang2020scorecam"]
    ablation = {
        "name": "c",
        "removal": {"name": "layer_ablation"},
        "summary": {"name": "cam_weights", "weights": "relative_drop"},
    }
    assert bib.references_for([ablation]) == ["gayamorey2024revex", "desai2020ablationcam"]
    assert bib.references_for([], models=["cnn_lstm:vgg16", "zoo:cnn_lstm_ls"]) == ["bargal2018ebr"]
    assert bib.references_for([], models=["zoo:r3d_tiny", "torchvision:r3d_18"]) == []


# -- recipe differences ----------------------------------------------------------------------------
def test_swapped_removal_is_one_phrase_with_defaults_marked():
    base = {
        "name": "lime3d",
        "seed": 0,
        "removal": {"name": "constant", "value": 0.0},
        "summary": {"alpha": 1.0},
    }
    blur = {
        "name": "lime3d",
        "seed": 7,
        "removal": {"name": "blur", "sigma": 10.0},
        "summary": {"alpha": 2.0},
    }
    changes = recipe_changes(base, blur)
    assert Change("removal.value", 0.0, MISSING) in changes
    assert Change("summary.alpha", 1.0, 2.0) in changes
    assert not any(c.key == "seed" for c in changes)  # seeds are reported apart
    assert format_changes(changes, {"removal.sigma"}, base) == [
        "removal: blur with sigma=10 (default) instead of constant with value=0",
        "summary.alpha=2",
    ]
    assert recipe_changes(base, base) == []
    assert format_changes([Change("summary.alpha", 1.0, MISSING)]) == ["summary.alpha unset (was 1)"]


def test_common_changes_are_those_of_every_method():
    a, b, c = (
        Change("x.n", 1, 8),
        Change("y.cells", [4], [1, 2, 2]),
        Change("removal.name", "constant", "blur"),
    )
    assert common_changes([[a, b], [a, b, c]]) == [a, b]
    assert common_changes([[a, b]]) == []


def test_stage_defaults_read_the_plugin_config():
    assert provenance.stage_defaults({"removal": {"name": "blur", "sigma": 10.0}}) == ["removal.sigma"]
    assert provenance.stage_defaults({"removal": {"name": "blur", "sigma": 3.0}}) == []


# -- weights and software -----------------------------------------------------------------------------
def test_sha256_is_streamed(tmp_path, monkeypatch):
    f = tmp_path / "w.bin"
    f.write_bytes(bytes(range(256)) * 40)
    monkeypatch.setattr(provenance, "CHUNK", 1000)  # several reads
    assert provenance.sha256_file(f) == _sha(f)


def test_weights_fingerprint_kinds(tmp_path):
    from removalx.zoo.models import WEIGHTS_DIR

    zoo = provenance.weights_fingerprint("zoo:r3d_tiny", None)
    assert zoo["kind"] == "zoo (bundled)" and zoo["sha256"] == _sha(Path(WEIGHTS_DIR) / "r3d_tiny.pt")
    assert provenance.weights_fingerprint("r3d_tiny_ls", None)["sha256"] == _sha(
        Path(WEIGHTS_DIR) / "r3d_tiny_ls.pt"
    )
    f = tmp_path / "w.pt"
    f.write_bytes(b"weights")
    assert provenance.weights_fingerprint("torchvision:r3d_18", str(f))["sha256"] == _sha(f)
    assert provenance.weights_fingerprint("torchvision:r3d_18", "none")["kind"] == "random init"
    assert provenance.weights_fingerprint("torchvision:r3d_18", None)["kind"] == "random init"
    missing = provenance.weights_fingerprint("torchvision:r3d_18", str(tmp_path / "gone.pt"))
    assert missing["sha256"] is None and missing["note"] == "file not found"
    versions = provenance.software_versions()
    assert versions["torch"] == torch.__version__


# -- the journey: ablate, then report ------------------------------------------------------------------
@pytest.fixture(scope="module")
def ablate_report(tmp_path_factory, model_spec) -> tuple[Path, str, str]:
    d = tmp_path_factory.mktemp("prov")
    db = d / "abl.db"
    argv = ["ablate", "--recipe", "lime3d", "--vary", "removal.name=constant,blur", "--model", model_spec]
    argv += ["--db", str(db), *TINY, "--metrics", "deletion", "--metric-set", "deletion.steps=4", *GRID]
    argv += ["--no-substrate-check"]  # only the metrics asked for (the check: test_substrate_confound.py)
    assert main(argv) == 0
    out = d / "report" / "r.html"
    assert main(["report", str(db), "--out", str(out), "--max-videos", "0"]) == 0
    return db, out.read_text(encoding="utf-8"), (out.parent / "references.bib").read_text(encoding="utf-8")


def test_report_states_model_data_recipes_protocol_software(ablate_report, model_spec):
    db, page, _ = ablate_report
    text = _text(page)
    source = Path(model_spec.split(":")[1])
    assert model_spec in text and _sha(source) in text  # the model and its source's sha256, whole
    assert "2 clips, T×H×W = 4×16×16" in text
    assert "removal: blur with sigma=10 (default) instead of constant with value=0" in text
    assert "sample_selection.n_samples=8" in text  # the --set override, common to both variants
    assert "as the base recipe" in text  # the constant variant is lime3d's own removal
    assert "fill=black" in text and "steps=4" in text  # the metric's resolved protocol
    assert f"torch {torch.__version__}" in text
    args = json.loads(sqlite3.connect(db).execute("SELECT args FROM experiments").fetchone()[0])
    assert args["provenance"]["methods"]["lime3d[removal.name=blur]"]["recipe"]["removal"] == {
        "sigma": 10.0,
        "name": "blur",
    }


def test_methods_paragraph_and_bibliography(ablate_report):
    _, page, bibfile = ablate_report
    para = html.unescape(re.search(r"<blockquote class='methods'>(.*?)</blockquote>", page, re.S).group(1))
    assert para.startswith("We explained the model python:")
    assert "on 2 clips of zoo:synthetic (T×H×W = 4×16×16, data seed 0)" in para
    assert (
        "lime3d[removal.name=blur] (removal: blur with sigma=10 (default) instead of constant with value=0)"
        in para
    )
    assert "paired t-test and a Wilcoxon signed-rank test" in para
    assert "adjusted as one family over every variant × metric test" in para
    assert "with Holm's step-down procedure (family-wise error rate)" in para  # the report's default
    assert "Cohen's d_z" in para and "BCa bootstrap confidence interval" in para
    keys = re.findall(r"^@\w+\{([^,]+),", bibfile, re.M)
    assert keys == [
        "gayamorey2024revex",
        "ribeiro2016lime",
        "petsiuk2018rise",
        "efron1993bootstrap",
        "efron1987bca",
        "wilcoxon1945",
        "cohen1988power",
        "lakens2013effect",
        "holm1979",
    ]


@pytest.mark.parametrize(
    ("correction", "cited", "phrase"),
    [
        ("bh", ["benjamini1995fdr"], "with the Benjamini-Hochberg step-up procedure (false discovery rate)"),
        ("none", [], "their p-values are reported without a multiple-comparison correction"),
    ],
)
def test_report_correction_reaches_paragraph_and_bibliography(
    ablate_report, tmp_path, correction, cited, phrase
):
    db, _, _ = ablate_report
    out = tmp_path / "r.html"
    assert main(["report", str(db), "--out", str(out), "--max-videos", "0", "--correction", correction]) == 0
    page = out.read_text(encoding="utf-8")
    para = html.unescape(re.search(r"<blockquote class='methods'>(.*?)</blockquote>", page, re.S).group(1))
    assert phrase in para and "Holm" not in para
    keys = re.findall(r"^@\w+\{([^,]+),", (tmp_path / "references.bib").read_text(encoding="utf-8"), re.M)
    assert "holm1979" not in keys and [k for k in keys if k in ("benjamini1995fdr", "holm1979")] == cited


def test_database_without_provenance_still_reports(ablate_report, tmp_path):
    db, _, _ = ablate_report
    old = tmp_path / "old.db"
    shutil.copy(db, old)
    con = sqlite3.connect(old)
    (args,) = con.execute("SELECT args FROM experiments").fetchone()
    stripped = {k: v for k, v in json.loads(args).items() if k != "provenance"}
    con.execute("UPDATE experiments SET args = ?", (json.dumps(stripped),))
    con.commit()
    con.close()
    out = tmp_path / "r.html"
    assert main(["report", str(old), "--out", str(out), "--max-videos", "0"]) == 0
    text = _text(out.read_text(encoding="utf-8"))
    assert "Software versions: not recorded." in text
    assert "hashed when the report was written" in text
    assert (
        "removal: blur with sigma=10 (default) instead of constant with value=0" in text
    )  # base: built-in lime3d


def test_compare_paragraph_names_the_random_baseline_and_alpha():
    facts = ExperimentFacts(
        name="c",
        kind="compare",
        args={"target": "label"},
        model="zoo:r3d_tiny_ls",
        weights=None,
        weights_info={"kind": "zoo (bundled)", "sha256": "ab" * 32},
        dataset="ucf101:x.csv",
        clip_shape=(8, 32, 32),
        n_clips=5,
        methods=[
            MethodFacts("rise3d", {"name": "rise3d"}, "rise3d", seeds=[0]),
            MethodFacts("random", None, None),
        ],
        common=[],
        metrics=[MetricFacts("del", "deletion", {}, "del: preset step")],
        software=None,
        recorded=False,
    )
    para = methods_paragraph(facts)
    assert "(zoo (bundled), weights sha256 abababababab…)" in para
    assert "5 clips of ucf101:x.csv (T×H×W = 8×32×32)" in para and "data seed" not in para
    assert "explaining the dataset label" in para
    assert "random (random N(0, 1) maps" in para and "α" in para
    assert "Software versions: not recorded." in para
    assert "Cohen" not in para and "Holm" not in para  # compare has no paired tests to correct


def test_statistics_sentence_names_the_correction_and_rejects_unknown_ones():
    from removalx.errors import ConfigError
    from removalx.experiments.methods_text import statistics_sentence
    from removalx.experiments.provenance_report import _statistics

    facts = ExperimentFacts(
        name="a",
        kind="ablate",
        args={},
        model="zoo:r3d_tiny",
        weights=None,
        weights_info=None,
        dataset="zoo:synthetic",
        clip_shape=None,
        n_clips=3,
        methods=[
            MethodFacts("v0", {"name": "lime3d"}, "lime3d"),
            MethodFacts("v1", {"name": "lime3d"}, "lime3d"),
        ],
        common=[],
        metrics=[],
        software=None,
        recorded=False,
    )
    assert "Holm's step-down" in statistics_sentence(facts)
    assert "Benjamini-Hochberg" in statistics_sentence(facts, "bh")
    assert "without a multiple-comparison correction" in statistics_sentence(facts, "none")
    assert _statistics(facts, "bh") == ["bootstrap_ci", "wilcoxon", "cohen_dz", "bh"]
    assert _statistics(facts, "none") == ["bootstrap_ci", "wilcoxon", "cohen_dz"]
    with pytest.raises(ConfigError):
        statistics_sentence(facts, "bonferroni")
    one = ExperimentFacts(**{**facts.__dict__, "methods": facts.methods[:1]})
    assert "t-test" not in statistics_sentence(one) and _statistics(one) == ["bootstrap_ci"]
