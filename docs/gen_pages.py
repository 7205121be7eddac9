"""mkdocs hook: the pages of the site that are generated from other sources.

* ``index.md`` -- README.md, its ``docs/X.md`` links made relative to docs/ (README.md stays
  the single source; a README link to a file outside docs/ fails the strict build).
* ``plugin-reference/<stage>.md`` -- one page per stage from ``removalx plugins --json`` (the
  installed plugins): every plugin with its summary, config fields (type, default) and the
  paper reference of its module docstring; ``plugin-reference/index.md`` lists the stages, and
  the nav entry "Plugin reference" is expanded into these pages.

* Sphinx roles in docstrings (``:func:`~a.b.c```, ``:class:`x```, ``:meth:``, ...) become
  mkdocs-autorefs cross-references: :class:`SphinxRoles` is a griffe extension (mkdocs.yml,
  ``extensions:`` of the python handler) that resolves each role's target in the scope of the
  documented object and writes ``<autoref identifier="a.b.c" optional>`c`</autoref>``; a
  target that is not rendered on the site stays plain code (autorefs' ``optional``), never a
  broken link. The plugin reference does the same with the live module (:func:`_rst_to_md`).
* Mermaid diagrams (a ``mermaid`` fenced block) are drawn at build time as HTML
  (:func:`mermaid_html`), so the site loads no script from a CDN; a diagram it cannot draw
  stays a plain code block (readable text).

Configured in mkdocs.yml (``hooks:``); run by ``make docs`` / ``.ci/docs.sh``.
"""

from __future__ import annotations

import html
import importlib
import importlib.metadata
import itertools
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import griffe

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
    return _rst_to_md(doc.strip(), sys.modules.get(module))


def _rst_to_md(text: str, module: Any = None) -> str:
    """The few reStructuredText idioms of module docstrings, in Markdown.

    Sphinx roles become optional cross-references when ``module`` (the live module whose
    docstring this is) resolves their target, plain code otherwise.
    """
    text = roles_to_autorefs(text, _live_resolver(module))
    text = text.replace("``", "`")
    return text


# -- Sphinx roles -> mkdocs-autorefs cross-references ---------------------------------------------
#: A Sphinx Python-domain role: ``:func:`target```, ``:py:class:`~a.b.C```, ``:meth:`title <a.b>```.
ROLE_RE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj|const):`([^`]+)`")


def role_parts(content: str) -> tuple[str, str | None]:
    """``(shown text, target)`` of a role's content; target ``None`` for ``!x`` (Sphinx: no link).

    ``~a.b.c`` shows ``c``; ``title <a.b.c>`` shows ``title``; ``a.b.c`` shows ``a.b.c``.
    Sphinx's trailing ``()`` after function names is not added (our choice: the text as written).
    """
    content = " ".join(content.split())
    explicit = re.fullmatch(r"(.+?)\s*<([^<>]+)>", content)
    title, target = (explicit.group(1), explicit.group(2)) if explicit else (None, content)
    if target.startswith("!"):
        return title or target[1:].lstrip("~"), None
    short = target.startswith("~")
    target = target.lstrip("~").strip()
    return title or (target.rsplit(".", 1)[-1] if short else target), target


def _autoref_syntax() -> str:
    """``autoref`` (mkdocs-autorefs >= 1.3: ``<autoref identifier=... optional>``) or ``span``."""
    try:
        version = importlib.metadata.version("mkdocs-autorefs")
    except importlib.metadata.PackageNotFoundError:
        return "autoref"
    major_minor = tuple(int(x) for x in re.findall(r"\d+", version)[:2])
    return "autoref" if major_minor >= (1, 3) else "span"


_SYNTAX = _autoref_syntax()


def roles_to_autorefs(text: str, resolve: Callable[[str], str | None]) -> str:
    """Replace every Sphinx role in ``text`` (Markdown) by an optional autorefs cross-reference.

    ``resolve`` maps a role's target to the identifier of the object (its canonical dotted
    path) or ``None``; an unresolved target, or one autorefs finds on no page (``optional``),
    is plain code. The shown text is a Markdown code span inside the reference.
    """

    def one(match: re.Match[str]) -> str:
        shown, target = role_parts(match.group(1))
        code = f"`{shown}`"
        ident = resolve(target) if target else None
        if not ident:
            return code
        ident = html.escape(ident, quote=True)
        if _SYNTAX == "span":
            return f'<span data-autorefs-optional="{ident}">{code}</span>'
        return f'<autoref identifier="{ident}" optional>{code}</autoref>'

    return ROLE_RE.sub(one, text)


def _live_resolver(module: Any) -> Callable[[str], str | None]:
    """Resolve a role's target against a live module's globals (the plugin reference)."""

    def resolve(target: str) -> str | None:
        head, _, rest = target.partition(".")
        if module is None or not hasattr(module, head):
            return target if head in ("removalx", "removalx_plugins") else None
        value = getattr(module, head)
        if isinstance(value, type(sys)):
            base = value.__name__
        elif hasattr(value, "__qualname__") and hasattr(value, "__module__"):
            base = f"{value.__module__}.{value.__qualname__}"
        else:
            base = f"{module.__name__}.{head}"
        return f"{base}.{rest}" if rest else base

    return resolve


def _griffe_resolver(obj: griffe.Object, collection: griffe.ModulesCollection) -> Callable[[str], str | None]:
    """Resolve a role's target in the scope of the griffe object whose docstring holds it.

    The target's first name is looked up as Python would (the object, its parents, the module's
    imports); a dotted target that is not in scope is taken as absolute. The result is the
    canonical path of what the collection holds there (aliases followed), or ``None``.
    """

    def resolve(target: str) -> str | None:
        head, _, rest = target.partition(".")
        try:
            base = obj.resolve(head)
        except Exception:  # griffe.NameResolutionError, or a broken alias on the way
            base = head
        path = f"{base}.{rest}" if rest else base
        try:
            found = collection[path]
        except Exception:  # KeyError, or an alias into a package griffe did not load
            return None
        try:
            return str(found.final_target.path) if found.is_alias else str(found.path)
        except Exception:  # an alias into an unloaded package (torch, numpy)
            return str(found.target_path)

    return resolve


def _documented(obj: griffe.Object) -> Iterator[griffe.Object]:
    """``obj`` and every object defined in it (aliases, i.e. imported names, skipped)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _documented(member)  # type: ignore[arg-type]


class SphinxRoles(griffe.Extension):
    """Griffe extension: Sphinx roles in docstrings become autorefs cross-references.

    Runs once a package is loaded (so imports and aliases are known) and rewrites every
    docstring with :func:`roles_to_autorefs`; mkdocstrings then renders the Markdown and
    mkdocs-autorefs links the references (or leaves plain code for targets not on the site).
    """

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """Rewrite the docstrings of ``pkg``."""
        for obj in _documented(pkg):
            doc = obj.docstring
            if doc is not None and ROLE_RE.search(doc.value):
                doc.value = roles_to_autorefs(doc.value, _griffe_resolver(obj, loader.modules_collection))
                doc.__dict__.pop("parsed", None)  # parsed lazily; drop a cached parse


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
        doc = _module_doc(r["module"])  # imports the module: its summary's roles resolve in it
        summary = _rst_to_md(r["summary"] or "", sys.modules.get(r["module"]))
        lines += [f"## `{r['name']}`", "", f"*{summary}*", ""]
        lines += [f"Module `{r['module']}` (from `{r['source']}`).", ""]
        if r["fields"]:
            lines += ["| field | type | default |", "|---|---|---|"]
            for k, f in r["fields"].items():
                typ = str(f["type"]).replace("|", "\\|")
                lines.append(f"| `{k}` | `{typ}` | `{_default(f['default'])}` |".replace("``", "` `"))
            lines.append("")
        else:
            lines += ["No configuration fields.", ""]
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


# -- Mermaid diagrams drawn at build time ---------------------------------------------------------
MERMAID_FENCE = re.compile(r"^```mermaid[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
_NODE = re.compile(r'^([A-Za-z_][\w]*)\[\s*"?(.*?)"?\s*\]$')
_NAME = re.compile(r"^[A-Za-z_]\w*$")


def _mermaid_graph(source: str) -> tuple[dict[str, str], set[tuple[str, str]]] | None:
    """``(labels, edges)`` of a top-down flowchart of ``id["label"]`` nodes and ``-->`` edges.

    ``a & b --> c --> d`` is the edges a-c, b-c, c-d. ``None`` for anything else (labels on
    edges, other arrows or shapes, subgraphs, styles): such a diagram is not drawn here.
    """
    lines = [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("%%")]
    if not lines or lines[0].split() not in (["flowchart", "TD"], ["flowchart", "TB"], ["graph", "TD"]):
        return None
    labels: dict[str, str] = {}
    edges: set[tuple[str, str]] = set()
    for line in lines[1:]:
        node = _NODE.match(line)
        if node and "-->" not in line:
            labels[node.group(1)] = node.group(2)
            continue
        groups = [[n.strip() for n in part.split("&")] for part in line.split("-->")]
        if len(groups) < 2 or not all(_NAME.match(n) for g in groups for n in g):
            return None
        for upper, lower in itertools.pairwise(groups):
            edges |= {(a, b) for a in upper for b in lower}
    if not edges or any(n not in labels for e in edges for n in e):
        return None
    return labels, edges


def _layers(labels: dict[str, str], edges: set[tuple[str, str]]) -> list[list[str]] | None:
    """Rows of a layered graph: every node of a row has an edge to every node of the next row
    and no other edges exist. ``None`` if the graph is not such a stack (or has a cycle)."""
    depth = {n: 0 for n in labels}
    for _ in range(len(labels)):  # longest path from the sources (Bellman-Ford style)
        for a, b in edges:
            depth[b] = max(depth[b], depth[a] + 1)
    if any(depth[b] <= depth[a] for a, b in edges):
        return None  # a cycle
    rows = [[n for n in labels if depth[n] == d] for d in range(max(depth.values()) + 1)]
    expected = {(a, b) for upper, lower in itertools.pairwise(rows) for a in upper for b in lower}
    return rows if expected == edges else None


def mermaid_html(source: str) -> str | None:
    """A Mermaid layer diagram as static HTML (rows of boxes, an arrow between rows), or ``None``.

    Only a strict stack is drawn (each row's nodes lead to every node of the next row, nothing
    else), so the arrow between two rows says exactly what the diagram's edges say. The first
    line of a node's label is shown bold.
    """
    graph = _mermaid_graph(source)
    rows = _layers(*graph) if graph else None
    if rows is None or graph is None:
        return None
    labels = graph[0]
    box = (
        "border:1px solid var(--md-default-fg-color--lighter);border-radius:.2rem;"
        "padding:.3rem .6rem;flex:1 1 0;text-align:center;font-size:.7rem;line-height:1.3"
    )
    out = ['<div class="rx-diagram" style="display:flex;flex-direction:column;gap:.15rem;margin:1em 0">']
    for i, row in enumerate(rows):
        if i:
            out.append('<div style="text-align:center;line-height:1" aria-hidden="true">&darr;</div>')
        cells = []
        for name in row:
            first, *rest = [html.escape(part) for part in re.split(r"<br\s*/?>", labels[name])]
            cells.append(
                f'<div style="{box}"><strong>{first}</strong>' + "".join(f"<br>{p}" for p in rest) + "</div>"
            )
        out.append('<div style="display:flex;gap:.4rem">' + "".join(cells) + "</div>")
    out.append("</div>")
    return "\n".join(out)


def draw_mermaid(markdown: str) -> str:
    """Every ``mermaid`` fenced block of a page as static HTML (:func:`mermaid_html`), or, when
    it cannot be drawn, as a plain ``text`` code block: no page asks the browser for Mermaid."""

    def one(match: re.Match[str]) -> str:
        drawn = mermaid_html(match.group(1))
        return f"\n{drawn}\n" if drawn else f"```text\n{match.group(1)}```"

    return MERMAID_FENCE.sub(one, markdown)


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


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Draw the page's Mermaid diagrams at build time (:func:`draw_mermaid`)."""
    return draw_mermaid(markdown)
