"""The real-pair figures that the benchmark suite recorded (``benchmarks/results/<preset>/summary.json``), for notebooks
to show beside their tiny-preset plumbing checks: what the same measurement gave with real weights, and on what machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .settings import REPO_ROOT

REFERENCE_PRESET = "qwen2.5-coder-1.5b-offline"
COLUMNS = ["step", "label", "acceptance_rate", "cost_ratio", "tokens_per_step", "tpot_ms", "speedup", "speedup_lo",
           "speedup_hi"]


def summary_path(preset: str = REFERENCE_PRESET) -> Path:
    return REPO_ROOT / "benchmarks" / "results" / preset / "summary.json"


def reference_rows(steps: tuple[str, ...], preset: str = REFERENCE_PRESET) -> tuple[list[dict[str, Any]], str]:
    """Rows of the recorded suite run for `steps` (the reference rows at 1.00x left out), and a one-line caption naming
    the pair, the machine and the command that measured them."""
    path = summary_path(preset)
    if not path.is_file():
        return [], f"Real pair ({preset}): not measured yet (run `python benchmarks/run_suite.py --preset {preset}`)."
    summary = json.loads(path.read_text(encoding="utf-8"))
    rows = [r for r in summary["rows"] if r["step"] in steps and r["label"] != summary["reference"]]
    machine = summary["machines"][0]
    cpu = ", ".join(machine.get("devices", {}).values()) or machine.get("platform", "?")
    caption = (f"Real pair ({summary['preset']}), speedup over {summary['reference']!r}, measured by the benchmark suite on "
               f"{cpu}, {machine.get('logical_cores', '?')} cores, {machine.get('ram_gib', '?')} GiB, OpenVINO "
               f"{machine.get('openvino', '?').split('-')[0]}: `{summary['command']}`")
    return rows, caption
