#!/usr/bin/env bash
# The main job: install (if needed), then execute every notebook headless on a preset (default: tiny).
# Executed notebooks go to outputs/notebooks/, models and results to outputs/work/ (or $TUTORIAL_WORKDIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TUTORIAL_PRESET=${TUTORIAL_PRESET:-tiny}
export TUTORIAL_WORKDIR=${TUTORIAL_WORKDIR:-$PWD/outputs/work}
mkdir -p outputs/notebooks "$TUTORIAL_WORKDIR"
for notebook in notebooks/[0-9][0-9]_*.ipynb; do
  echo "== $notebook (preset $TUTORIAL_PRESET)"
  .venv/bin/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=7200 \
    --output-dir outputs/notebooks "$notebook"
done
echo "Executed notebooks: outputs/notebooks/  Models and results: $TUTORIAL_WORKDIR"
