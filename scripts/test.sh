#!/usr/bin/env bash
# The test command: install (if needed), lint, then unit tests and every notebook top to bottom on the tiny preset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest --nbmake --nbmake-timeout=1200 notebooks tests "$@"
