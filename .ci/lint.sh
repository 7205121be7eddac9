#!/usr/bin/env bash
# Static checks CI fails on: ruff (lint + format), mypy over the package and the plugins, and the
# layer contracts of pyproject.toml (lint-imports; docs/architecture.md).
# Usage: .ci/lint.sh [VENV]   (default .venv, the environment `make test` creates)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.venv}/bin"
"$BIN/ruff" check removalx removalx_plugins tests benchmarks .ci docs/gen_pages.py
"$BIN/ruff" format --check removalx removalx_plugins tests benchmarks .ci docs/gen_pages.py
"$BIN/mypy" removalx removalx_plugins
"$BIN/lint-imports" --no-cache
