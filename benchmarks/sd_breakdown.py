"""Where speculative decoding's time goes: the same as ``python -m helpers breakdown`` (see
`helpers.sd_breakdown.measure_breakdown`): OpenVINO GenAI's pipeline against a from-scratch loop on the same IRs,
interleaved, with the per-step breakdown, the formula with measured parts, and the raw t(n)/t(1) control.

Example:
  python benchmarks/sd_breakdown.py --target models/qwen2.5-coder-1.5b-instruct-int4 \\
      --draft models/qwen2.5-coder-0.5b-instruct-int4 -k 2 3 4 --prompts 4 --max-new-tokens 128 --repeats 2 \\
      --json benchmarks/results/sd_breakdown.json
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without `pip install -e .`

from helpers.commands import main

if __name__ == "__main__":
    raise SystemExit(main(["breakdown", *sys.argv[1:]]))
