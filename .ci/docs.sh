#!/usr/bin/env bash
# The documentation site, built strictly (any warning fails): what tests/test_docs_build.py runs.
# Usage: .ci/docs.sh [VENV] [SITE_DIR]   (defaults .venv and site/)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.venv}/bin"
NO_MKDOCS_2_WARNING=1 "$BIN/python" -m mkdocs build --strict --site-dir "${2:-site}"
