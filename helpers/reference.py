"""The real-pair figures recorded under ``benchmarks/results/<preset>/`` (the benchmark suite's ``summary.json``, the
``breakdown-k<k>.json`` of ``python -m helpers breakdown``), for notebooks to show beside their tiny-preset plumbing
checks: what the same measurement gave with real weights, and on what machine."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
    caption = (f"Real pair ({summary['preset']}), speedup over {summary['reference']!r}, measured by the benchmark suite on "
               f"{_machine_words(summary['machines'][0])}: `{summary['command']}`")
    return rows, caption


def _machine_words(machine: dict[str, Any]) -> str:
    cpu = ", ".join(machine.get("devices", {}).values()) or machine.get("platform", "?")
    return (f"{cpu}, {machine.get('logical_cores', '?')} cores, {machine.get('ram_gib', '?')} GiB, OpenVINO "
            f"{str(machine.get('openvino', '?')).split('-')[0]}")


def breakdown_path(k: int = 3, preset: str = REFERENCE_PRESET) -> Path:
    return REPO_ROOT / "benchmarks" / "results" / preset / f"breakdown-k{k}.json"


@dataclass(frozen=True)
class BreakdownRecord:
    """One recorded ``python -m helpers breakdown`` run: its rows as the command wrote them, and a caption.

    ``breakdown``: one row per speculative configuration (``sd_breakdown.Breakdown.row()``), each with its
    ``acceptance_rate``; ``parts``: median parts per label (``StepParts.row()``); ``control``: the t(n)/t(1) rows.
    Empty lists when the file does not exist (the caption then says how to make it).
    """

    caption: str
    breakdown: list[dict[str, Any]] = field(default_factory=list)
    parts: list[dict[str, Any]] = field(default_factory=list)
    control: list[dict[str, Any]] = field(default_factory=list)
    identical_to_baseline: dict[str, float] = field(default_factory=dict)


def breakdown_reference(k: int = 3, preset: str = REFERENCE_PRESET) -> BreakdownRecord:
    """The recorded breakdown of the real pair at `k`, with a caption naming the pair, the run's size and settings,
    the machine and the command that measured it."""
    path = breakdown_path(k, preset)
    if not path.is_file():
        return BreakdownRecord(f"Real pair ({preset}), k={k}: not measured yet (run `python -m helpers breakdown "
                               f"--preset {preset} -k {k} --json {path.relative_to(REPO_ROOT)}`).")
    data = json.loads(path.read_text(encoding="utf-8"))
    settings = data["settings"]
    acceptance = {p["label"]: p.get("acceptance_rate") for p in data["parts"]}
    # files written before Breakdown carried the acceptance rate keep it only in the median parts
    breakdown = [{**b, "acceptance_rate": b.get("acceptance_rate", acceptance.get(b["label"]))} for b in data["breakdown"]]
    arithmetic = "exact arithmetic (f32, no dynamic quantization)" if settings.get("exact") else "device defaults"
    caption = (f"Real pair ({preset}: target {Path(settings['target']).name}, draft {Path(settings['draft']).name}), "
               f"k={k}, {len(settings['prompts'])} prompts x {settings['repeats']} repeats, {settings['max_new_tokens']} "
               f"new tokens, {arithmetic}; measured on {_machine_words(data['machine'])}: `{settings['command']}`")
    return BreakdownRecord(caption, breakdown, list(data["parts"]), list(data["control"]["rows"]),
                           dict(data.get("identical_to_baseline", {})))
