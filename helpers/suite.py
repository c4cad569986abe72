"""The benchmark suite: every decoding configuration of a preset, measured the same way, resumable, in one command.

Each step is one interleaved comparison (`benchmark.run_interleaved`) whose baseline is always the same reference, the
preset's target at int4 running alone, so speedups from different steps share a denominator. A step is written to its
own JSON when it finishes; a step whose JSON already exists (made with the same settings) is skipped, so an interrupted
suite continues where it stopped. After each step, a summary (markdown table with the machine description and the
exact command, a JSON of all rows, and plots) is rewritten from every JSON present.

    python -m helpers suite --preset qwen2.5-coder-1.5b-offline      # or: python benchmarks/run_suite.py ...
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .benchmark import BenchmarkResult, Candidate, Prompt
from .errors import ConfigError
from .paths import REPO_ROOT
from .presets import INT4_ASYM_G128, INT8_ASYM, Preset

REFERENCE = "target int4 alone"
SUITE_VERSION = 1  # bump when the meaning of a step changes, so old JSONs are not mixed with new ones
SUMMARY_COLUMNS = ("step", "label", "runs", "tpot_ms", "throughput_tps", "ttft_ms", "acceptance_rate", "cost_ratio",
                   "tokens_per_step", "speedup", "speedup_lo", "speedup_hi", "e2e_speedup", "identical_to_baseline")


@dataclass(frozen=True)
class RunSpec:
    """One configuration inside a step: which target precision, and how it is assisted."""

    label: str
    target: str  # "int4" or "int8"
    mode: str = "alone"  # "alone", "draft" (the preset's unpruned draft) or "lookup" (prompt lookup)
    k: int | None = None  # num_assistant_tokens for "draft" and "lookup"
    draft: str | None = None  # the draft's precision for "draft": "int4" or "int8"


@dataclass(frozen=True)
class SuiteStep:
    """One interleaved comparison; the reference (int4 target alone) is always added as its baseline."""

    name: str
    purpose: str
    runs: tuple[RunSpec, ...]


@dataclass
class SuiteSettings:
    """Everything that shapes the numbers; stored in every result so a resumed suite cannot mix settings."""

    preset: Preset
    prompts: list[Prompt]
    ks: tuple[int, ...] = (2, 3, 4, 5, 8)
    lookup_ks: tuple[int, ...] = (3, 5)
    draft_formats: tuple[str, ...] = ("int8", "int4")
    max_ngram_size: int = 3
    max_new_tokens: int = 128
    repeats: int = 3
    warmup: int = 1
    device: str = "CPU"
    properties: dict[str, Any] = field(default_factory=dict)
    results_dir: Path | None = None
    steps: tuple[str, ...] = ()  # subset of step names; empty: all

    @property
    def folder(self) -> Path:
        return Path(self.results_dir) if self.results_dir else REPO_ROOT / "benchmarks" / "results" / self.preset.name


def default_steps(ks: tuple[int, ...], lookup_ks: tuple[int, ...], draft_formats: tuple[str, ...] = ("int8", "int4")
                  ) -> list[SuiteStep]:
    """Target alone at int4 and int8; the unpruned draft (each precision) with an int4 and an int8 target, k sweep;
    prompt lookup. A draft's cost relative to the target decides whether it pays, so both precisions are measured."""
    int8_alone = RunSpec("target int8 alone", "int8")
    steps = [SuiteStep("target-alone", "the target without assistance, int4 and int8 weights", (int8_alone,))]
    for target in ("int4", "int8"):
        for draft in draft_formats:
            runs = tuple(RunSpec(f"{target} + {draft} draft k={k}", target, "draft", k, draft) for k in ks)
            steps.append(SuiteStep(f"{target}-target-{draft}-draft", f"{target} target with the preset's unpruned draft "
                                   f"at {draft}, k sweep", (int8_alone, *runs) if target == "int8" else runs))
    steps.append(SuiteStep("prompt-lookup", "int4 target with prompt-lookup decoding (n-grams from the prompt, no draft)",
                           tuple(RunSpec(f"int4 + prompt lookup k={k}", "int4", "lookup", k) for k in lookup_ks)))
    return steps


def selected_steps(settings: SuiteSettings) -> list[SuiteStep]:
    unknown_formats = set(settings.draft_formats) - {"int4", "int8"}
    if unknown_formats:
        raise ConfigError(f"Draft formats must be int4 and/or int8, got {', '.join(sorted(unknown_formats))}.")
    steps = default_steps(settings.ks, settings.lookup_ks, settings.draft_formats)
    unknown = set(settings.steps) - {s.name for s in steps}
    if unknown:
        raise ConfigError(f"Unknown suite step(s) {', '.join(sorted(unknown))}; choose from {', '.join(s.name for s in steps)}.")
    return [s for s in steps if not settings.steps or s.name in settings.steps]


def step_signature(step: SuiteStep, settings: SuiteSettings) -> dict[str, Any]:
    """What must match for an existing result to count as this step's result."""
    prompts = hashlib.sha256(json.dumps([[p.id, p.text] for p in settings.prompts]).encode()).hexdigest()[:16]
    return {
        "suite_version": SUITE_VERSION, "step": step.name, "preset": settings.preset.name,
        "labels": [REFERENCE, *(r.label for r in step.runs)], "prompts_sha256": prompts,
        "max_new_tokens": settings.max_new_tokens, "repeats": settings.repeats, "warmup": settings.warmup,
        "device": settings.device, "properties": settings.properties, "max_ngram_size": settings.max_ngram_size,
        "draft_weights": settings.preset.draft.weights.describe(),
    }


def result_path(step: SuiteStep, settings: SuiteSettings) -> Path:
    return settings.folder / f"{step.name}.json"


def step_status(step: SuiteStep, settings: SuiteSettings) -> str:
    """"done", "todo", or raises `ConfigError` when the existing result was made with other settings."""
    path = result_path(step, settings)
    if not path.is_file():
        return "todo"
    try:
        stored = json.loads(path.read_text())["settings"]["suite"]["signature"]
    except (ValueError, KeyError, TypeError):
        stored = None
    if stored != step_signature(step, settings):
        raise ConfigError(
            f"{path} was measured with other settings (or is not a suite result). Delete it to measure this step "
            "again, or pass --results-dir to keep both."
        )
    return "done"


def suite_models(preset: Preset, needed: set[str]) -> dict[str, Path]:
    """Converted folders for keys like "target int4" or "draft int8" (converted on first use, then reused).

    A model already in the wanted precision keeps the preset's settings; the other precision takes the preset
    target's int4 settings (so tiny models keep their small group size) or plain per-channel int8.
    """
    from .conversion import prepare_model

    int4 = preset.target.weights if preset.target.weights.bits == 4 else INT4_ASYM_G128
    formats = {"int4": int4, "int8": INT8_ASYM}
    folders = {}
    for key in sorted(needed):
        role, fmt = key.split()
        spec = preset.target if role == "target" else preset.draft
        if spec.weights.bits != int(fmt.removeprefix("int")):
            spec = replace(spec, weights=formats[fmt])
        folders[key] = prepare_model(spec).path
    return folders


def models_needed(steps: list[SuiteStep]) -> set[str]:
    needed = {"target int4"}
    for step in steps:
        for run in step.runs:
            needed.add(f"target {run.target}")
            if run.mode == "draft":
                needed.add(f"draft {run.draft}")
    return needed


def step_candidates(step: SuiteStep, settings: SuiteSettings, models: dict[str, Path]) -> list[Candidate]:
    """The reference first, then the step's runs; runs that differ only in k share one pipeline."""
    from .generation import generation_config, load_pipeline

    pipelines: dict[tuple[str, str, str | None], Any] = {}

    def pipeline(target: str, mode: str, draft: str | None = None) -> Any:
        if (target, mode, draft) not in pipelines:
            pipelines[(target, mode, draft)] = load_pipeline(
                models[f"target {target}"], settings.device, draft_dir=models[f"draft {draft}"] if mode == "draft" else None,
                prompt_lookup=mode == "lookup", **settings.properties,
            )
        return pipelines[(target, mode, draft)]

    candidates = [Candidate(REFERENCE, pipeline("int4", "alone"), generation_config(settings.max_new_tokens))]
    for run in step.runs:
        config = generation_config(
            settings.max_new_tokens, num_assistant_tokens=run.k if run.mode != "alone" else None,
            max_ngram_size=settings.max_ngram_size if run.mode == "lookup" else None,
        )
        candidates.append(Candidate(run.label, pipeline(run.target, run.mode, run.draft), config))
    return candidates


def run_step(step: SuiteStep, settings: SuiteSettings, models: dict[str, Path], command: str) -> BenchmarkResult:
    """Measure one step and write its JSON (atomically: an interrupted step leaves no result)."""
    from .benchmark import run_interleaved

    result = run_interleaved(step_candidates(step, settings, models), settings.prompts, repeats=settings.repeats,
                             warmup=settings.warmup, enable_thinking=False, baseline=REFERENCE)
    result.settings["suite"] = {
        "signature": step_signature(step, settings), "purpose": step.purpose, "command": command,
        "models": {name: str(path) for name, path in models.items()},
    }
    result.to_json(result_path(step, settings))
    return result


def summary_rows(settings: SuiteSettings) -> list[dict[str, Any]]:
    """Every configuration of every finished step, with the formula's prediction where it applies."""
    from .speculative import with_predictions

    rows: list[dict[str, Any]] = []
    for step in selected_steps(settings):
        if step_status(step, settings) != "done":
            continue
        result = BenchmarkResult.from_json(result_path(step, settings))
        rows += [{"step": step.name, **row} for row in with_predictions(result.summary())]
    return rows


def write_summary(settings: SuiteSettings, command: str) -> Path:
    """Rewrite summary.md, summary.json and the plots from the finished steps' JSONs."""
    from .fsutil import atomic_write_text, write_json
    from .plots import plot_benchmark_summary, plot_speedup_vs_k, save_figure
    from .tables import markdown_table

    folder = settings.folder
    rows = summary_rows(settings)
    machines, commands = [], []
    for step in selected_steps(settings):
        path = result_path(step, settings)
        if path.is_file():
            data = json.loads(path.read_text())
            machines.append({"step": step.name, **data.get("machine", {}), "peak_rss_mb": round(data.get("peak_rss_mb", 0))})
            commands.append(data["settings"]["suite"]["command"])
    write_json(folder / "summary.json", {"preset": settings.preset.name, "reference": REFERENCE, "command": command,
                                         "step_commands": sorted(set(commands)), "machines": machines, "rows": rows})
    todo = [s.name for s in selected_steps(settings) if step_status(s, settings) == "todo"]
    text = "\n\n".join([
        f"# Benchmark suite: {settings.preset.name}",
        f"Command (latest run):\n\n```\n{command}\n```",
        f"Reference (speedup 1.0): **{REFERENCE}**. speedup = median over (prompt, repeat) pairs of TPOT(reference) / "
        "TPOT(config), measured interleaved within each step; lo/hi = quartiles of those ratios; e2e_speedup uses whole "
        f"request time per token. {len(settings.prompts)} prompts x {settings.repeats} repeats, {settings.warmup} warm-up, "
        f"greedy, max_new_tokens={settings.max_new_tokens}, device {settings.device}, "
        f"properties {settings.properties or 'defaults'}.",
        markdown_table(rows, [*SUMMARY_COLUMNS, "predicted_speedup"]) if rows else "(no finished step yet)",
        "Steps not measured yet: " + (", ".join(todo) if todo else "none"),
        "## Machine\n\n" + (markdown_table(machines) if machines else "-"),
    ]) + "\n"
    atomic_write_text(folder / "summary.md", text)
    if rows:
        # the reference (and int8 alone) runs in several steps: name each bar after its step so none hides another
        counts = {label: sum(r["label"] == label for r in rows) for label in {r["label"] for r in rows}}
        bars = [{**r, "label": r["label"] if counts[r["label"]] == 1 else f"{r['label']} ({r['step']})"} for r in rows]
        save_figure(plot_benchmark_summary(bars, title=f"{settings.preset.name}: all configurations"), folder / "overview.png")
        for step in selected_steps(settings):
            step_rows = [r for r in rows if r["step"] == step.name]
            if any(run.mode == "draft" for run in step.runs) and step_rows:
                save_figure(plot_speedup_vs_k(step_rows, title=f"{step.name}: speedup vs {REFERENCE}"),
                            folder / f"speedup_vs_k_{step.name}.png")
    return folder / "summary.md"


def run_suite(settings: SuiteSettings, command: str = "", progress: bool = True) -> list[dict[str, Any]]:
    """Run every step not measured yet (skipping finished ones), then write the summary; returns one row per step."""
    from tqdm.auto import tqdm

    steps = selected_steps(settings)
    status = {s.name: step_status(s, settings) for s in steps}  # refuses mismatched results before any work
    todo = [s for s in steps if status[s.name] == "todo"]
    models = suite_models(settings.preset, models_needed(todo)) if todo else {}
    for step in tqdm(todo, desc="suite", disable=not progress, leave=False):
        run_step(step, settings, models, command)
        write_summary(settings, command)
    write_summary(settings, command)
    return [{"step": s.name, "action": "skipped (done)" if status[s.name] == "done" else "measured",
             "result": str(result_path(s, settings)), "purpose": s.purpose} for s in steps]


def invocation() -> str:
    """The command line that is running, as something one can paste again."""
    argv = list(sys.argv)
    as_module = bool(argv) and argv[0].endswith(os.path.join("helpers", "__main__.py"))
    head = ["python", "-m", "helpers"] if as_module else ["python", argv[0]]
    env = " ".join(f"{name}={shlex.quote(os.environ[name])}" for name in ("TUTORIAL_WORKDIR", "TUTORIAL_DOWNLOADS")
                   if os.environ.get(name))
    return (env + " " if env else "") + shlex.join(head + argv[1:])


def _cmd_suite(args: Any) -> int:
    from .benchmark import builtin_prompts, load_prompts
    from .presets import get_preset, preset_from_env
    from .speculative import EXACT_PROPERTIES
    from .tables import markdown_table

    settings = SuiteSettings(
        preset=get_preset(args.preset) if args.preset else preset_from_env(),
        prompts=load_prompts(args.prompts) if args.prompts else builtin_prompts(),
        ks=tuple(args.num_assistant_tokens), lookup_ks=tuple(args.lookup_k), draft_formats=tuple(args.draft_formats),
        max_new_tokens=args.max_new_tokens,
        repeats=args.repeats, warmup=args.warmup, device=args.device, properties=dict(EXACT_PROPERTIES) if args.exact else {},
        results_dir=Path(args.results_dir) if args.results_dir else None, steps=tuple(args.steps or ()),
    )
    if args.list:
        print(markdown_table([{"step": s.name, "status": step_status(s, settings), "configurations": len(s.runs) + 1,
                               "purpose": s.purpose} for s in selected_steps(settings)]))
        return 0
    print(markdown_table(run_suite(settings, invocation())))
    print(f"\nsummary: {settings.folder / 'summary.md'}")
    return 0


def register_cli(sub: Any) -> None:
    """``python -m helpers suite``: the resumable benchmark suite of a preset."""
    p = sub.add_parser("suite", help="resumable benchmark suite: target int4/int8 alone, int4/int8 drafts (k sweep), "
                                     "prompt lookup")
    p.add_argument("--preset", help="preset name (default: $TUTORIAL_PRESET or tiny)")
    p.add_argument("--num-assistant-tokens", "-k", type=int, nargs="+", default=[2, 3, 4, 5, 8], metavar="K")
    p.add_argument("--lookup-k", type=int, nargs="+", default=[3, 5], metavar="K", help="k values for prompt lookup")
    p.add_argument("--draft-formats", nargs="+", choices=["int8", "int4"], default=["int8", "int4"],
                   help="draft precisions to pair with each target precision")
    p.add_argument("--prompts", help="JSONL file of prompts; default: the built-in set")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="CPU")
    p.add_argument("--exact", action="store_true", help="f32 inference and KV cache, no dynamic quantization")
    p.add_argument("--results-dir", help="default: benchmarks/results/<preset>")
    p.add_argument("--steps", nargs="+", metavar="STEP", help="run only these steps (see --list)")
    p.add_argument("--list", action="store_true", help="show the steps and which are done, then exit")
    p.set_defaults(handler=_cmd_suite)
