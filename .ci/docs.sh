#!/usr/bin/env bash
# The documentation site, built strictly (any warning fails): what tests/test_docs_build.py runs.
# Then the two checks of the built HTML that a strict build does not make (the test makes them
# too): no Sphinx role shown as text, and no font, script or style sheet from another host.
# Usage: .ci/docs.sh [VENV] [SITE_DIR]   (defaults .venv and site/)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.venv}/bin"
SITE="${2:-site}"
NO_MKDOCS_2_WARNING=1 "$BIN/python" -m mkdocs build --strict --site-dir "$SITE"
if grep -rlE ':(py:)?(func|class|meth|mod|data|attr|exc|obj|const):(`|<code>)' --include='*.html' "$SITE"; then
  echo "docs: Sphinx roles shown as text in the pages above (docs/gen_pages.py, SphinxRoles)" >&2
  exit 1
fi
if grep -rlE '//[a-z0-9.-]*(googleapis|gstatic|unpkg|jsdelivr|cdnjs)|class="mermaid"' --include='*.html' "$SITE"; then
  echo "docs: the pages above load something from another host (the site must work offline)" >&2
  exit 1
fi
