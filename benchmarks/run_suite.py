"""Run the benchmark suite of a preset (resumable): ``python benchmarks/run_suite.py --preset NAME [options]``.

The same as ``python -m helpers suite``; see `helpers.suite` for what is measured and where results go
(``benchmarks/results/<preset>/``: one JSON per step, summary.md, summary.json and plots).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without `pip install -e .`

from helpers.commands import main

if __name__ == "__main__":
    raise SystemExit(main(["suite", *sys.argv[1:]]))
