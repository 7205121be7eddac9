"""mkdocs hook: the pages of the site that are generated from other sources.

* ``index.md`` -- README.md, its ``docs/X.md`` links made relative to docs/ (README.md stays
  the single source; a README link to a file outside docs/ fails the strict build).
* ``plugin-reference/<stage>.md`` -- one page per stage from ``removalx plugins --json`` (the
  installed plugins): every plugin with its summary, config fields (type, default) and the
  paper reference of its module docstring; ``plugin-reference/index.md`` lists the stages, and
  the nav entry "Plugin reference" is expanded into these pages.

Configured in mkdocs.yml (``hooks:``); run by ``make docs`` / ``.ci/docs.sh``.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "plugin-reference"

#: What each stage does, for the headings of the plugin reference.
STAGE_TITLES = {
    "segmentation": "Segmentation: what the features are",
    "feature_selection": "Feature selection: which features to explain",
    "sample_selection": "Sample selection: which coalitions to evaluate",
    "removal": "Feature removal: how a feature is taken out of the clip",
    "behavior": "Model behavior: what is measured on the model's output",
    "summary": "Summary: how the samples become an attribution",
    "visualization": "Visualization: how an attribution is drawn",
    "explainer": "Explainers: whole methods that are not a removal pipeline",
    "metric": "Metrics: how an attribution is scored",
    "model": "Models: model specs (`zoo:`, `torchvision:`, `python:` ...)",
}


def readme_markdown(text: str) -> str:
    """README.md as docs/index.md: links into docs/ become relative to docs/."""
    return re.sub(r"\]\(docs/", "](", text)


def plugin_rows() -> list[dict[str, Any]]:
    """``removalx plugins --json`` of the running interpreter (the installed plugins)."""
    out = subprocess.run(
        [sys.executable, "-m", "removalx.cli", "plugins", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return [r for r in json.loads(out.stdout) if r.get("status") == "ok"]


def _module_doc(module: str) -> str:
    try:
        doc = importlib.import_module(module).__doc__ or ""
    except Exception as exc:  # a plugin that imports here but fails to import again is reported
        return f"(module docstring unavailable: {type(exc).__name__})"
    return _rst_to_md(doc.strip())


def _rst_to_md(text: str) -> str:
    """The few reStructuredText idioms of module docstrings, in Markdown."""
    text = re.sub(r":(?:class|func|meth|data|mod|attr):`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    return text


def _default(v: Any) -> str:
    s = json.dumps(v) if not isinstance(v, str) else repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def stage_page(stage: str, rows: list[dict[str, Any]]) -> str:
    """The Markdown page of one stage."""
    lines = [
        f"# {STAGE_TITLES.get(stage, stage)}",
        "",
        f"Generated from `removalx plugins --stage {stage} --json` when the site was built: the "
        "plugins installed then. In a recipe: `" + stage + ": {name: NAME, FIELD: VALUE}`.",
        "",
    ]
    for r in sorted(rows, key=lambda r: r["name"]):
        lines += [f"## `{r['name']}`", "", f"*{_rst_to_md(r['summary'] or '')}*", ""]
        lines += [f"Module `{r['module']}` (from `{r['source']}`).", ""]
        if r["fields"]:
            lines += ["| field | type | default |", "|---|---|---|"]
            for k, f in r["fields"].items():
                typ = str(f["type"]).replace("|", "\\|")
                lines.append(f"| `{k}` | `{typ}` | `{_default(f['default'])}` |".replace("``", "` `"))
            lines.append("")
        else:
            lines += ["No configuration fields.", ""]
        doc = _module_doc(r["module"])
        if doc:
            lines += ['??? note "Description and paper reference (module docstring)"', ""]
            lines += [("    " + ln) if ln else "" for ln in doc.splitlines()]
            lines.append("")
    return "\n".join(lines) + "\n"


def reference_pages() -> dict[str, str]:
    """``{path: markdown}`` of the plugin reference."""
    by_stage: dict[str, list[dict[str, Any]]] = {}
    for r in plugin_rows():
        by_stage.setdefault(r["stage"], []).append(r)
    stages = [s for s in STAGE_TITLES if s in by_stage] + sorted(set(by_stage) - set(STAGE_TITLES))
    pages = {f"{REFERENCE}/{s}.md": stage_page(s, by_stage[s]) for s in stages}
    index = [
        "# Plugin reference",
        "",
        "Every installed plugin, one page per stage, generated from `removalx plugins --json` "
        "(see [Writing a plugin](../plugins.md) to add one).",
        "",
        "| stage | plugins |",
        "|---|---|",
    ]
    for s in stages:
        names = ", ".join(f"`{r['name']}`" for r in sorted(by_stage[s], key=lambda r: r["name"]))
        index.append(f"| [{s}]({s}.md) | {names} |")
    pages[f"{REFERENCE}/index.md"] = "\n".join(index) + "\n"
    return pages


# -- mkdocs hooks -------------------------------------------------------------------------------
_PAGES: dict[str, str] = {}


def on_config(config: Any) -> Any:
    """Make the pages once per build and expand the "Plugin reference" nav entry."""
    _PAGES.clear()
    _PAGES["index.md"] = readme_markdown((ROOT / "README.md").read_text(encoding="utf-8"))
    _PAGES.update(reference_pages())
    ref = sorted(p for p in _PAGES if p.startswith(f"{REFERENCE}/") and not p.endswith("/index.md"))
    order = {f"{REFERENCE}/{s}.md": i for i, s in enumerate(STAGE_TITLES)}
    ref.sort(key=lambda p: order.get(p, len(order)))
    for i, entry in enumerate(config["nav"] or []):
        if isinstance(entry, dict) and entry.get("Plugin reference") == f"{REFERENCE}/index.md":
            config["nav"][i] = {"Plugin reference": [f"{REFERENCE}/index.md", *ref]}
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the site."""
    from mkdocs.structure.files import File

    for path, content in _PAGES.items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=content))
    return files
