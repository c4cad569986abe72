#!/usr/bin/env bash
# The main job: install (if needed), then execute every notebook headless on a preset (default: tiny).
# Models and results go to artifacts/ (or $TUTORIAL_WORKDIR), the same work folder the notebooks and
# `python -m helpers` use by default; executed notebooks go to artifacts/notebooks/. Prints each notebook's time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TUTORIAL_PRESET=${TUTORIAL_PRESET:-tiny}
export TUTORIAL_WORKDIR=${TUTORIAL_WORKDIR:-$PWD/artifacts}
executed="$TUTORIAL_WORKDIR/notebooks"
mkdir -p "$executed"
total_start=$SECONDS
for notebook in notebooks/[0-9][0-9]_*.ipynb; do
  echo "== $notebook (preset $TUTORIAL_PRESET)"
  start=$SECONDS
  .venv/bin/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=7200 \
    --output-dir "$executed" "$notebook"
  echo "== $notebook: $((SECONDS - start)) s"
done
echo "All notebooks: $((SECONDS - total_start)) s. Executed notebooks: $executed  Models and results: $TUTORIAL_WORKDIR"
