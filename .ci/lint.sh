#!/usr/bin/env bash
# Static checks CI fails on: ruff (lint + format) and mypy over the package and the plugins.
# Usage: .ci/lint.sh [VENV]   (default .venv, the environment `make test` creates)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-.venv}/bin"
"$BIN/ruff" check removalx plugins tests benchmarks .ci docs/gen_pages.py
"$BIN/ruff" format --check removalx plugins tests benchmarks .ci docs/gen_pages.py
"$BIN/mypy" removalx plugins
