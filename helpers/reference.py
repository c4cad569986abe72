"""The real-pair figures recorded under ``benchmarks/results/<preset>/`` (the benchmark suite's ``summary.json`` and
its agent step's ``agent.json``, the ``breakdown-k<k>.json`` of ``python -m helpers breakdown``), for notebooks to show
beside their tiny-preset plumbing checks: what the same measurement gave with real weights, and on what machine."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fsutil import read_json
from .settings import REPO_ROOT

REFERENCE_PRESET = "qwen2.5-coder-1.5b-offline"
# acceptance_pooled: all accepted / all drafted tokens of a configuration's runs (what the formula uses, the README's
# figure); acceptance_rate: the median of the per-run rates. Both are shown, since they differ by up to ~0.08.
COLUMNS = ["step", "label", "acceptance_pooled", "acceptance_rate", "cost_ratio", "tokens_per_step", "tpot_ms", "speedup",
           "speedup_lo", "speedup_hi"]
ACCEPTANCE_WORDS = ("acceptance_pooled = all accepted / all drafted tokens of a configuration's runs (what the formula "
                    "uses); acceptance_rate = the median of its per-run rates")


def results_folder(preset: str = REFERENCE_PRESET, archive: str | None = None) -> Path:
    """``benchmarks/results/<preset>/``, or ``benchmarks/results/archive/<archive>/`` for an archived suite run."""
    results = REPO_ROOT / "benchmarks" / "results"
    return results / "archive" / archive if archive else results / preset


def summary_path(preset: str = REFERENCE_PRESET, archive: str | None = None) -> Path:
    return results_folder(preset, archive) / "summary.json"


def reference_rows(steps: tuple[str, ...], preset: str = REFERENCE_PRESET, archive: str | None = None,
                   folder: Path | None = None) -> tuple[list[dict[str, Any]], str]:
    """Rows of the recorded suite run (or of an `archive`d one, or of the run in `folder`) for `steps`, the reference
    rows at 1.00x left out, and a one-line caption naming the pair, the machine and the command that measured them; no
    rows and a "not measured yet" caption when the run has none of `steps`."""
    path = Path(folder) / "summary.json" if folder is not None else summary_path(preset, archive)
    where = f" (archived run {archive})" if archive else f" ({Path(folder).name})" if folder is not None else ""
    if not path.is_file():
        return [], f"Real pair ({preset}){where}: not measured yet (run `python benchmarks/run_suite.py --preset {preset}`)."
    summary = json.loads(path.read_text(encoding="utf-8"))
    rows = [r for r in summary["rows"] if r["step"] in steps and r["label"] != summary["reference"]]
    if not rows:
        return [], (f"Real pair ({preset}){where}: {', '.join(steps)} not measured yet (the suite's steps of those "
                    f"names: `python benchmarks/run_suite.py --preset {preset} ... --steps {' '.join(steps)}`).")
    # the machine and command of each step itself (summary.json's "command" is only the last one to rewrite it)
    measured = [step for step in steps if any(r["step"] == step for r in rows)]
    origins = {step: _step_origin(summary, path.parent, step) for step in measured}
    head = f"Real pair ({summary['preset']}){where}, speedup over {summary['reference']!r}, measured by the benchmark suite"
    if len(set(origins.values())) == 1:
        machine, command = origins[measured[0]]
        return rows, f"{head} on {machine}: `{command}`"
    lines = "\n".join(f"- {step}, on {machine}: `{command}`" for step, (machine, command) in origins.items())
    return rows, f"{head}, each step with its own command:\n{lines}"


def _step_origin(summary: dict[str, Any], folder: Path, step: str) -> tuple[str, str]:
    """The machine (in words) and the suite command that measured one step of a recorded run."""
    machine = next((m for m in summary.get("machines", []) if m.get("step") == step),
                   (summary.get("machines") or [{}])[0])
    step_file = read_json(folder / f"{step}.json") or {}
    command = ((step_file.get("settings") or {}).get("suite") or {}).get("command") or summary.get("command", "?")
    return _machine_words(machine), command


def _machine_words(machine: dict[str, Any]) -> str:
    cpu = ", ".join(machine.get("devices", {}).values()) or machine.get("platform", "?")
    return (f"{cpu}, {machine.get('logical_cores', '?')} cores, {machine.get('ram_gib', '?')} GiB, OpenVINO "
            f"{str(machine.get('openvino', '?')).split('-')[0]}")


def breakdown_path(k: int = 3, preset: str = REFERENCE_PRESET) -> Path:
    return results_folder(preset) / f"breakdown-k{k}.json"


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
# ---------------------------------------------------------------------------------------------------------------------
# The agent step (benchmarks/results/<preset>/agent.json): whole-task times per configuration and per kind of step work

AGENT_COLUMNS = ["label", "runs", "task_speedup", "task_speedup_lo", "task_speedup_hi", "agent_seconds", "agent_steps",
                 "ttft_ms", "tpot_ms", "acceptance_rate", "speedup"]
WORK_COLUMNS = ["work", "label", "steps", "seconds", "ttft_ms", "output_tokens", "acceptance_rate"]
TIME_SPLIT_COLUMNS = ["label", "runs", "wall_s", "prefill_s", "decode_s", "other_s", "generated_tokens", "decode_share",
                      "decode_free_ceiling"]
PREFILL_COLUMNS = ["label", "agent_seconds", "prefill_s", "prefill_share"]
RUN_COLUMNS = ["repeat", "label", "task", "seconds", "prefill_s", "prefill_share", "first_prompt_tokens", "decks"]


@dataclass(frozen=True)
class AgentReference:
    """What the benchmark suite's agent step recorded on a real pair, or nothing yet (`measured` False).

    `rows`: one per configuration (``agent_summary``: task_speedup with quartiles, agent_seconds, ttft_ms = a run's total
    prefill ...); `work`: one per configuration and kind of step work (``agent_work``: search, slides, answer, code;
    empty in results older than that table); `runs`: one per agent run (`run_rows`); `caption`: the pair, the machine
    and the command, or how to measure it."""

    rows: list[dict[str, Any]]
    work: list[dict[str, Any]]
    caption: str
    reference: str | None = None  # the configuration every speedup is against
    runs: list[dict[str, Any]] = field(default_factory=list)  # ``agent_runs`` as recorded
    time_split: list[dict[str, Any]] = field(default_factory=list)  # ``agent_time_split``: prefill, decode, other
    setups: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> `AgentSetup.describe()`, as recorded
    source: str = ""  # the result file, relative to the repository when inside it

    @property
    def measured(self) -> bool:
        return bool(self.rows)

    def prefill_rows(self) -> list[dict[str, Any]]:
        """Per configuration: median wall time of the task, median total prefill of a run, and its share of the time."""
        rows = []
        for row in self.rows:
            seconds, prefill = row.get("agent_seconds"), (row.get("ttft_ms") or 0.0) / 1000
            rows.append({"label": row["label"], "agent_seconds": seconds, "prefill_s": prefill,
                         "prefill_share": prefill / seconds if seconds else None})
        return rows

    def run_rows(self) -> list[dict[str, Any]]:
        """Per run, in repeat order: its task (start), wall time, total prefill and its share, the first step's prompt
        in tokens (the system prompt and the task) and the decks written."""
        rows = []
        for run in sorted(self.runs, key=lambda r: r.get("repeat", 0)):
            seconds, prefill = run.get("seconds"), (run.get("totals", {}).get("ttft_ms") or 0.0) / 1000
            steps = run.get("steps") or [{}]
            task = str(run.get("task", ""))
            rows.append({"repeat": run.get("repeat"), "label": run.get("label"),
                         "task": task if len(task) <= 40 else task[:39] + "…", "seconds": seconds, "prefill_s": prefill,
                         "prefill_share": prefill / seconds if seconds else None,
                         "first_prompt_tokens": steps[0].get("input_tokens"), "decks": len(run.get("decks") or [])})
        return rows


def agent_path(preset: str = REFERENCE_PRESET, archive: str | None = None, step: str = "agent") -> Path:
    """An agent step's result: ``benchmarks/results/<preset>/<step>.json``, or ``results/archive/<archive>/<step>.json``."""
    return results_folder(preset, archive) / f"{step}.json"


def agent_reference(preset: str = REFERENCE_PRESET, archive: str | None = None, path: Path | None = None
                    ) -> AgentReference:
    """The suite's agent step for `preset` (or an `archive`d run, or any `path`); "not measured yet" if there is none."""
    path = Path(path) if path is not None else agent_path(preset, archive)
    data = read_json(path)
    if not data or not data.get("agent_summary"):
        state = (f"{path} is there but unreadable or not a suite result (restore it with `git checkout -- {path}` or "
                 "measure again" if path.is_file() else "not measured yet (run")
        return AgentReference([], [], f"Real pair ({preset}), agent step: {state} `python "
                                      f"benchmarks/run_suite.py --preset {preset} --steps {path.stem}`).")
    suite = data.get("settings", {}).get("suite", {})
    name = suite.get("signature", {}).get("preset", preset)
    where = f" (archived run {archive})" if archive else ""
    step = suite.get("signature", {}).get("step", "agent")
    pipelines = f" ({suite['pipelines']})" if suite.get("pipelines") else ""
    caption = (f"Real pair ({name}){where}, the suite's {step} step{pipelines} against {data.get('baseline')!r}, on "
               f"{_machine_words(data.get('machine', {}))}: `{suite.get('command', '?')}`")
    setups = suite.get("signature", {}).get("agent", {}).get("setups") or {}
    source = str(path.resolve().relative_to(REPO_ROOT)) if path.resolve().is_relative_to(REPO_ROOT) else str(path)
    return AgentReference(list(data["agent_summary"]), list(data.get("agent_work") or []), caption, data.get("baseline"),
                          list(data.get("agent_runs") or []), list(data.get("agent_time_split") or []), dict(setups),
                          source)
HEALING_RECORD = "healing.json"  # written by the suite's pruned-drafts step beside summary.json


def healing_table(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per pruned depth of a suite healing record: held-out top-1 agreement with the target for the unpruned
    draft and each checkpoint (pruned, repaired, healed), the repair's error at the cut, the loss, time and peak RAM."""
    rows = []
    for draft in record.get("drafts") or []:
        agreement = draft.get("held-out agreement") or {}
        row = {"depth": draft["depth"], "removed": draft["removed"], "layers left": draft["layers left"],
               "unpruned": record.get("unpruned held-out agreement")}
        row.update({key.removeprefix("draft ").removeprefix(f"pruned{draft['depth']}").lstrip("-") or "pruned": value
                    for key, value in agreement.items()})
        mse = draft.get("repair MSE (pruned -> repaired)")
        row.update({"repair MSE": f"{mse[0]:.3g} -> {mse[1]:.3g}" if mse else None,
                    "loss first -> last": (f"{draft['first loss']:.3f} -> {draft['last loss']:.3f}"
                                           if draft.get("first loss") is not None else None),
                    "heal minutes": draft.get("heal minutes"), "heal peak RAM GiB": draft.get("heal peak RAM GiB")})
        if draft.get("healing: step kept") is not None:  # recorded since healing keeps its best step
            row["step kept"] = draft["healing: step kept"]
        rows.append(row)
    return rows


def export_agreement_table(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per OpenVINO draft export of a suite healing record: its held-out agreement beside the agreement of the
    checkpoint it came from (fp32 PyTorch), the difference (what int4 weights cost), and its held-out acceptance."""
    checkpoints = {"draft": record.get("unpruned held-out agreement")}
    for draft in record.get("drafts") or []:
        checkpoints.update(draft.get("held-out agreement") or {})
    rows = []
    for export in record.get("export held-out agreement") or []:
        source = checkpoints.get(export["checkpoint"])
        value = export.get("export agreement")
        name = export["draft"].removeprefix("draft ")
        row = {"export": f"unpruned {name}" if export["checkpoint"] == "draft" else name,
               "checkpoint": export["checkpoint"].removeprefix("draft ").removeprefix("draft") or "unpruned",
               "checkpoint agreement": source, "export agreement": value,
               "change": round(value - source, 4) if None not in (value, source) else None}
        row.update({name: v for name, v in export.items() if name.startswith("acceptance")})
        rows.append(row)
    return rows


def healing_rows(preset: str = REFERENCE_PRESET, folder: Path | None = None) -> tuple[list[dict[str, Any]], str]:
    """The real pair's healing record (`healing_table` rows) and a caption; no rows and a "not measured yet" caption
    when the suite has not written ``healing.json`` for `preset` (or wrote it without pruned drafts)."""
    path = (folder or results_folder(preset)) / HEALING_RECORD
    record = read_json(path)
    rows = healing_table(record) if record else []
    if not rows:
        return [], (f"Real pair ({preset}): healing not measured yet (the suite's pruned-drafts step writes "
                    f"{path.name}: `python benchmarks/run_suite.py --preset {preset} --prune-depths 4 8 --repair --steps "
                    "pruned-drafts`).")
    share = record.get("held-out share")
    where = (f"on the {share:.0%} of distillation records held out of training" if share
             else "(no records were held out, so none was measured)")
    caption = (f"Real pair ({preset}): top-1 agreement with the target's answers {where}, per checkpoint; healing: "
               f"{describe_heal((record.get('plan') or {}).get('heal'))}.")
    return rows, caption


def export_rows(preset: str = REFERENCE_PRESET, folder: Path | None = None) -> tuple[list[dict[str, Any]], str]:
    """The real pair's OpenVINO draft exports on the held-out prompts (`export_agreement_table` rows: agreement beside
    the checkpoint's, and acceptance), with a caption; no rows when the healing record has none."""
    path = (folder or results_folder(preset)) / HEALING_RECORD
    record = read_json(path)
    rows = export_agreement_table(record) if record else []
    if not rows:
        return [], (f"Real pair ({preset}): the exports' held-out agreement and acceptance are not measured yet (the "
                    f"suite's pruned-drafts step writes them to {path.name}).")
    return rows, (f"Real pair ({preset}): each OpenVINO draft export on the held-out prompts: teacher-forced top-1 "
                  "agreement beside its checkpoint's, and speculative acceptance with the int4 target (greedy, all "
                  "accepted over all drafted tokens). A trimmed head returns the last position only: no agreement.")


def describe_heal(heal: dict[str, Any] | None) -> str:
    """A healing configuration (``asdict(HealConfig)``) in a few words: steps, rate, loss, which layers trained."""
    if not heal:
        return "none"
    loss = f"KL to the target's top-{heal['topk']}" if heal.get("topk") else "cross-entropy on the answers"
    layers = (f"{heal['neighbour_layers']} layers each side of the cut" if heal.get("neighbour_layers")
              else "every layer")
    return f"{heal['steps']} steps at lr {heal['learning_rate']:g}, {loss}, {layers}"


HEAD_LABEL = re.compile(r"^(?P<target>\S+) \+ (?P<variant>\S+) (?P<weights>\S+) draft (?P<setting>k=\d+|threshold=\S+)$")
HEAD_VARIANT = re.compile(r"^(?:(?P<base>.+)-)?head(?P<thousands>\d+)k$")


def pruned_pair_rows(preset: str = REFERENCE_PRESET, folder: Path | None = None) -> tuple[list[dict[str, Any]], str]:
    """Each pruned draft against the unpruned one at equal settings, pair by pair (the suite's
    ``pruned_versus_unpruned``), with a caption; no rows when the run recorded none."""
    path = (folder or results_folder(preset)) / "summary.json"
    rows = (read_json(path) or {}).get("pruned_versus_unpruned") or []
    if not rows:
        return [], f"Real pair ({preset}): no pair-by-pair comparison of pruned and unpruned drafts in {path}."
    return rows, (f"Real pair ({preset}), {path.parent.name}: speedup of each pruned draft minus the unpruned draft's at "
                  "the same setting, per prompt and repeat (median, quartiles, pairs won).")


def head_size_rows(steps: tuple[str, ...] = ("pruned-drafts", "pruned-drafts-sweep"), preset: str = REFERENCE_PRESET,
                   folder: Path | None = None, archive: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """Each draft with a trimmed output layer (FR-Spec, ``...-head32k``) beside the same draft with its full head, at
    the same setting: acceptance, c and speedup for both, from the suite's summary (or an `archive`d run's, or the one
    in `folder`). No rows and a "not measured yet" caption without such pairs."""
    path = (folder or results_folder(preset, archive)) / "summary.json"
    where = f" (archived run {archive})" if archive else ""
    summary = read_json(path)
    rows: list[dict[str, Any]] = []
    if summary:
        measured = {(r["step"], r["label"]): r for r in summary.get("rows", []) if r.get("step") in steps}
        for (step, label), trimmed in measured.items():
            parts = HEAD_LABEL.match(label)
            head = HEAD_VARIANT.match(parts["variant"]) if parts else None
            if head is None:
                continue
            base = head["base"] or "unpruned"
            full = measured.get((step, f"{parts['target']} + {base} {parts['weights']} draft {parts['setting']}"))
            if full is None:
                continue
            rows.append({"draft": base, "setting": parts["setting"], "head tokens": int(head["thousands"]) * 1024,
                         "acceptance (full head)": full.get("acceptance_rate"),
                         "acceptance (trimmed)": trimmed.get("acceptance_rate"),
                         "c (full head)": full.get("cost_ratio"), "c (trimmed)": trimmed.get("cost_ratio"),
                         "speedup (full head)": full.get("speedup"), "speedup (trimmed)": trimmed.get("speedup")})
    if not rows:
        return [], (f"Real pair ({preset}){where}: trimmed output layers not measured yet (`python benchmarks/run_suite.py "
                    f"--preset {preset} --prune-depths 4 8 --head-tokens 32768 --steps pruned-drafts`).")
    sizes = sorted({r["head tokens"] for r in rows})
    return rows, (f"Real pair ({preset}){where}: output layer trimmed to {', '.join(f'{n:,}' for n in sizes)} tokens against "
                  f"the full vocabulary, same draft, same setting (from {path.name}).")
