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
from .presets import INT4_ASYM_G128, INT8_ASYM, Preset, WeightFormat
from .pruned_drafts import HealingPlan

REFERENCE = "target int4 alone"
CONFIDENCE_THRESHOLD = 0.4  # the draft proposes tokens while its top probability stays above this
SUITE_VERSION = 2  # bump when the meaning of a step changes, so old JSONs are not mixed with new ones
SUMMARY_COLUMNS = ("step", "label", "runs", "tpot_ms", "throughput_tps", "ttft_ms", "acceptance_rate", "cost_ratio",
                   "tokens_per_step", "speedup", "speedup_lo", "speedup_hi", "e2e_speedup", "identical_to_baseline")


@dataclass(frozen=True)
class RunSpec:
    """One configuration inside a step: which target precision, and how it is assisted."""

    label: str
    target: str  # "int4" or "int8"
    mode: str = "alone"  # "alone", "draft" or "lookup" (prompt lookup)
    k: int | None = None  # num_assistant_tokens for "draft" and "lookup"
    draft: str | None = None  # for "draft": the unpruned draft's format ("int4", "int8", "int4-all") or a pruned draft's
    # `pruned_drafts.draft_key` ("pruned6-healed int4")
    threshold: float | None = None  # instead of k: assistant_confidence_threshold (the draft stops when unsure)

    @property
    def pruned(self) -> bool:
        return bool(self.draft and self.draft.startswith("pruned"))


@dataclass(frozen=True)
class SuiteStep:
    """One interleaved comparison; the reference (int4 target alone) is always added as its baseline."""

    name: str
    purpose: str
    runs: tuple[RunSpec, ...]
    kind: str = "bench"  # "bench": single prompts through run_interleaved; "agent": the slide-deck agent task

    @property
    def uses_pruned(self) -> bool:
        return any(run.pruned for run in self.runs)


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
    plan: HealingPlan | None = None  # pruned + healed drafts; None: no pruning steps
    pruned_k: int = 3  # num_assistant_tokens for the pruned-draft and lm_head steps
    agent: bool = False
    agent_repeats: int = 2
    agent_max_steps: int = 4
    agent_max_new_tokens: int = 1024
    agent_search: str = "auto"  # web search when the internet answers, else the offline notes
    agent_task: str = ""  # default: agent.GROUNDED_TASK

    @property
    def folder(self) -> Path:
        return Path(self.results_dir) if self.results_dir else REPO_ROOT / "benchmarks" / "results" / self.preset.name


def default_steps(ks: tuple[int, ...], lookup_ks: tuple[int, ...], draft_formats: tuple[str, ...] = ("int8", "int4"),
                  plan: HealingPlan | None = None, pruned_k: int = 3, agent: bool = False) -> list[SuiteStep]:
    """Target alone at int4 and int8; the unpruned draft (each precision) with an int4 and an int8 target, k sweep;
    prompt lookup. A draft's cost relative to the target decides whether it pays, so both precisions are measured.

    With a healing `plan`: the pruned drafts before and after healing against the unpruned int4 draft, then the same
    with lm_head compressed to int4 as well ("-all"). With `agent`: the slide-deck agent with and without drafts."""
    int8_alone = RunSpec("target int8 alone", "int8")
    steps = [SuiteStep("target-alone", "the target without assistance, int4 and int8 weights", (int8_alone,))]
    for target in ("int4", "int8"):
        for draft in draft_formats:
            runs = tuple(RunSpec(f"{target} + {draft} draft k={k}", target, "draft", k, draft) for k in ks)
            steps.append(SuiteStep(f"{target}-target-{draft}-draft", f"{target} target with the preset's unpruned draft "
                                   f"at {draft}, k sweep", (int8_alone, *runs) if target == "int8" else runs))
    steps.append(SuiteStep("prompt-lookup", "int4 target with prompt-lookup decoding (n-grams from the prompt, no draft)",
                           tuple(RunSpec(f"int4 + prompt lookup k={k}", "int4", "lookup", k) for k in lookup_ks)))
    if plan:
        k = pruned_k

        def draft_run(draft: str, what: str) -> RunSpec:
            return RunSpec(f"int4 + {what} k={k}", "int4", "draft", k, draft)

        runs = [draft_run("int4", "int4 draft")]
        for depth in plan.depths:
            runs += [draft_run(f"pruned{depth} int4", f"pruned{depth} int4 draft, not healed"),
                     draft_run(f"pruned{depth}-healed int4", f"pruned{depth}+healed int4 draft")]
        deepest = max(plan.depths)
        runs.append(RunSpec(f"int4 + pruned{deepest}+healed int4 draft threshold={CONFIDENCE_THRESHOLD:g}", "int4", "draft",
                            draft=f"pruned{deepest}-healed int4", threshold=CONFIDENCE_THRESHOLD))
        steps.append(SuiteStep("pruned-drafts", f"int4 target with the draft depth-pruned by {', '.join(map(str, plan.depths))} "
                               "layers, before and after healing, against the unpruned int4 draft; the deepest one also "
                               "with a confidence threshold instead of a fixed k", tuple(runs)))
        runs = [draft_run("int4-all", "int4-all draft"),
                *(draft_run(f"pruned{d}-healed int4-all", f"pruned{d}+healed int4-all draft") for d in plan.depths)]
        steps.append(SuiteStep("lm-head-int4", "drafts with embeddings and lm_head compressed to int4 too (NNCF all_layers)",
                               tuple(runs)))
    if agent:
        drafts = [RunSpec(f"agent + int4 draft k={pruned_k}", "int4", "draft", pruned_k, "int4")]
        if plan:
            depth = max(plan.depths)
            drafts.append(RunSpec(f"agent + pruned{depth}+healed int4 draft k={pruned_k}", "int4", "draft", pruned_k,
                                  f"pruned{depth}-healed int4"))
        steps.append(SuiteStep("agent", "the smolagents slide-deck task (web or offline search, python-pptx) with the "
                               "int4 target alone and with drafts; prefix caching on in every pipeline", tuple(drafts),
                               kind="agent"))
    return steps


def selected_steps(settings: SuiteSettings) -> list[SuiteStep]:
    unknown_formats = set(settings.draft_formats) - {"int4", "int8"}
    if unknown_formats:
        raise ConfigError(f"Draft formats must be int4 and/or int8, got {', '.join(sorted(unknown_formats))}.")
    steps = default_steps(settings.ks, settings.lookup_ks, settings.draft_formats, settings.plan, settings.pruned_k,
                          settings.agent)
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
        **({"healing_plan": settings.plan.describe()} if step.uses_pruned and settings.plan else {}),
        **({"agent": {"repeats": settings.agent_repeats, "max_steps": settings.agent_max_steps,
                      "max_new_tokens": settings.agent_max_new_tokens, "search": settings.agent_search,
                      "task": agent_task(settings)}}
           if step.kind == "agent" else {}),
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


def suite_formats(preset: Preset) -> dict[str, WeightFormat]:
    """The weight formats the suite names "int4", "int8" and "int4-all", the same for unpruned and pruned drafts.

    int4 is the preset target's int4 format (so tiny models keep their small group size), or asym g128."""
    int4 = preset.target.weights if preset.target.weights.bits == 4 else INT4_ASYM_G128
    return {"int4": int4, "int8": INT8_ASYM, "int4-all": replace(int4, all_layers=True)}


def suite_models(preset: Preset, needed: set[str]) -> dict[str, Path]:
    """Converted folders for keys like "target int4", "draft int8" or "draft int4-all" (converted on first use).

    A model already in the wanted precision keeps the preset's settings; the other precision takes the preset
    target's int4 settings (so tiny models keep their small group size) or plain per-channel int8. "-all" also
    compresses embeddings and lm_head. Pruned drafts ("draft pruned...") are made by `pruned_models`.
    """
    from .conversion import prepare_model

    formats = suite_formats(preset)
    folders = {}
    for key in sorted(needed):
        role, fmt = key.split(maxsplit=1)
        if fmt.startswith("pruned"):
            continue
        spec = preset.target if role == "target" else preset.draft
        if spec.weights.tag != fmt:
            spec = replace(spec, weights=formats[fmt])
        folders[key] = prepare_model(spec).path
    return folders


def pruned_models(settings: SuiteSettings, target_int4: Path, progress: bool = True) -> dict[str, Path]:
    """Run (or reuse) the pruning + healing pipeline of `settings.plan`; keys like "draft pruned6-healed int4"."""
    from .pruned_drafts import make_pruned_drafts

    if settings.plan is None:
        return {}
    formats = [suite_formats(settings.preset)[name] for name in ("int4", "int4-all")]
    drafts = make_pruned_drafts(settings.preset, settings.plan, target_int4, formats, progress=progress)
    return {f"draft {key}": path for draft in drafts for key, path in draft.openvino.items()}


def models_needed(steps: list[SuiteStep]) -> set[str]:
    needed = {"target int4"}
    for step in steps:
        for run in step.runs:
            needed.add(f"target {run.target}")
            if run.mode == "draft":
                needed.add(f"draft {run.draft}")
    return needed


def step_candidates(step: SuiteStep, settings: SuiteSettings, models: dict[str, Path]) -> list[Candidate]:
    """The reference first, then the step's runs; runs that differ only in k or threshold share one pipeline.

    Sharing is safe because assisted pipelines keep no prefix cache between requests (`generation.load_pipeline`):
    a repeated prompt pays its prefill like the plain reference does.
    """
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
            assistant_confidence_threshold=run.threshold,
            max_ngram_size=settings.max_ngram_size if run.mode == "lookup" else None,
        )
        candidates.append(Candidate(run.label, pipeline(run.target, run.mode, run.draft), config))
    return candidates


def run_step(step: SuiteStep, settings: SuiteSettings, models: dict[str, Path], command: str) -> BenchmarkResult:
    """Measure one step and write its JSON (atomically: an interrupted step leaves no result)."""
    from .benchmark import run_interleaved

    if step.kind == "agent":
        return run_agent_step(step, settings, models, command)
    result = run_interleaved(step_candidates(step, settings, models), settings.prompts, repeats=settings.repeats,
                             warmup=settings.warmup, enable_thinking=False, baseline=REFERENCE)
    result.settings["suite"] = suite_record(step, settings, models, command)
    result.to_json(result_path(step, settings))
    return result


def suite_record(step: SuiteStep, settings: SuiteSettings, models: dict[str, Path], command: str) -> dict[str, Any]:
    used = {"target int4", *(f"target {r.target}" for r in step.runs), *(f"draft {r.draft}" for r in step.runs if r.draft)}
    return {"signature": step_signature(step, settings), "purpose": step.purpose, "command": command,
            "models": {name: str(path) for name, path in models.items() if name in used}}


def agent_task(settings: SuiteSettings) -> str:
    from .agent import GROUNDED_TASK

    return settings.agent_task or GROUNDED_TASK


def run_agent_step(step: SuiteStep, settings: SuiteSettings, models: dict[str, Path], command: str) -> BenchmarkResult:
    """The slide-deck agent with the int4 target alone and with each draft, interleaved; decks go next to the JSON."""
    from .agent import OpenVINOGenAIModel, choose_search_tool, compare_agents, default_tools

    search = choose_search_tool(settings.agent_search)
    decks = settings.folder / "agent-decks"
    agents = [OpenVINOGenAIModel.from_folders(models["target int4"], settings.device, label=REFERENCE,
                                              max_new_tokens=settings.agent_max_new_tokens, properties=settings.properties)]
    agents += [OpenVINOGenAIModel.from_folders(models[f"target {run.target}"], settings.device,
                                               draft_dir=models[f"draft {run.draft}"], label=run.label,
                                               num_assistant_tokens=run.k, max_new_tokens=settings.agent_max_new_tokens,
                                               properties=settings.properties) for run in step.runs]
    comparison = compare_agents(agents, agent_task(settings), lambda: default_tools(decks, search),
                                repeats=settings.agent_repeats, max_steps=settings.agent_max_steps)
    comparison.result.settings["suite"] = {**suite_record(step, settings, models, command), "search": search.message}
    comparison.to_json(result_path(step, settings))
    return comparison.result


def summary_rows(settings: SuiteSettings) -> list[dict[str, Any]]:
    """Every configuration of every finished step, with the formula's prediction where it applies."""
    from .speculative import with_predictions

    rows: list[dict[str, Any]] = []
    for step in selected_steps(settings):
        if step_status(step, settings) != "done":
            continue
        if step.kind == "agent":
            rows += [{"step": step.name, **row} for row in agent_rows(result_path(step, settings))]
            continue
        result = BenchmarkResult.from_json(result_path(step, settings))
        rows += [{"step": step.name, **row} for row in with_predictions(result.summary())]
    return rows


def agent_rows(path: Path) -> list[dict[str, Any]]:
    """Summary rows of an agent step: the whole task's time and decks written, besides the usual columns."""
    data = json.loads(path.read_text())
    rows = []
    for row in data["agent_summary"]:
        runs = [r for r in data["agent_runs"] if r["label"] == row["label"]]
        rows.append({**row, "decks_written": sum(bool(r["decks"]) for r in runs)})
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
        markdown_table([r for r in rows if r["step"] != "agent"], [*SUMMARY_COLUMNS, "predicted_speedup"])
        if rows else "(no finished step yet)",
        agent_section(rows),
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
            if len({run.k for run in step.runs if run.mode == "draft" and run.k}) > 1 and step_rows:  # a k sweep
                save_figure(plot_speedup_vs_k(step_rows, title=f"{step.name}: speedup vs {REFERENCE}"),
                            folder / f"speedup_vs_k_{step.name}.png")
    return folder / "summary.md"


def agent_section(rows: list[dict[str, Any]]) -> str:
    from .tables import markdown_table

    agent = [r for r in rows if r["step"] == "agent"]
    if not agent:
        return "## Agent task\n\n(not measured)"
    return ("## Agent task\n\nThe slide-deck agent (notebook 06), same task per configuration, runs interleaved. "
            "agent_seconds = median wall time of the whole task; e2e_speedup = per-run generated tokens per second of model "
            "time relative to the reference; ttft_ms = total prefill time of a run.\n\n"
            + markdown_table(agent, ["label", "runs", "agent_seconds", "agent_steps", "generated_tokens", "tpot_ms",
                                     "ttft_ms", "acceptance_rate", "speedup", "e2e_speedup", "decks_written"]))


def prepare_models(settings: SuiteSettings, steps: list[SuiteStep], progress: bool = True) -> dict[str, Path]:
    """Every model the `steps` need: converted, and pruned + healed where a step uses pruned drafts."""
    if not steps:
        return {}
    models = suite_models(settings.preset, models_needed(steps))
    if any(s.uses_pruned for s in steps):
        models.update(pruned_models(settings, models["target int4"], progress))
    return models


def run_suite(settings: SuiteSettings, command: str = "", progress: bool = True) -> list[dict[str, Any]]:
    """Run every step not measured yet (skipping finished ones), then write the summary; returns one row per step."""
    from tqdm.auto import tqdm

    steps = selected_steps(settings)
    status = {s.name: step_status(s, settings) for s in steps}  # refuses mismatched results before any work
    todo = [s for s in steps if status[s.name] == "todo"]
    models = prepare_models(settings, todo, progress)
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


def healing_plan(args: Any) -> HealingPlan | None:
    """The pruning + healing settings from the command line (None without --prune-depths)."""
    from .distill import HealConfig

    if not args.prune_depths:
        return None
    heal = HealConfig(steps=args.heal_steps, learning_rate=args.heal_lr, batch_size=args.heal_batch_size,
                      max_length=args.heal_max_length, warmup_steps=min(10, max(1, args.heal_steps // 10)),
                      save_steps=max(1, args.heal_steps // 3), bf16=args.heal_bf16)
    return HealingPlan(depths=tuple(args.prune_depths), prompts=args.distill_prompts,
                       max_new_tokens=args.distill_max_new_tokens, heal=heal)


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
        plan=healing_plan(args), pruned_k=args.pruned_k, agent=not args.no_agent, agent_repeats=args.agent_repeats,
        agent_max_steps=args.agent_max_steps, agent_max_new_tokens=args.agent_max_new_tokens, agent_search=args.search,
        agent_task=args.agent_task,
    )
    if args.list:
        print(markdown_table([{"step": s.name, "status": step_status(s, settings), "configurations": len(s.runs) + 1,
                               "purpose": s.purpose} for s in selected_steps(settings)]))
        return 0
    if args.prepare_only:
        models = prepare_models(settings, [s for s in selected_steps(settings) if step_status(s, settings) == "todo"])
        print(markdown_table([{"model": key, "folder": str(path)} for key, path in sorted(models.items())]))
        return 0
    print(markdown_table(run_suite(settings, invocation())))
    print(f"\nsummary: {settings.folder / 'summary.md'}")
    return 0


def register_cli(sub: Any) -> None:
    """``python -m helpers suite``: the resumable benchmark suite of a preset."""
    p = sub.add_parser("suite", help="resumable benchmark suite: target int4/int8 alone, int4/int8 drafts (k sweep), "
                                     "prompt lookup, pruned + healed drafts, the agent task")
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
    p.add_argument("--prepare-only", action="store_true",
                   help="convert, prune and heal every model the steps to do need, then exit (measure later, on a quiet "
                        "machine)")
    g = p.add_argument_group("pruned + healed drafts (steps pruned-drafts and lm-head-int4; off without --prune-depths)")
    g.add_argument("--prune-depths", type=int, nargs="+", metavar="N", help="layers to remove, one draft per value")
    g.add_argument("--pruned-k", type=int, default=3, help="num_assistant_tokens for the pruned-draft and agent steps")
    g.add_argument("--distill-prompts", type=int, default=HealingPlan.prompts,
                   help="target answers to heal on: the 120 built-in prompts, then standard-library coding tasks")
    g.add_argument("--distill-max-new-tokens", type=int, default=HealingPlan.max_new_tokens)
    g.add_argument("--heal-steps", type=int, default=36)
    g.add_argument("--heal-lr", type=float, default=2e-4)
    g.add_argument("--heal-batch-size", type=int, default=8)
    g.add_argument("--heal-max-length", type=int, default=384)
    g.add_argument("--heal-bf16", action="store_true", help="bfloat16 autocast for healing (CPUs with AVX512-BF16/AMX)")
    a = p.add_argument_group("agent step")
    a.add_argument("--no-agent", action="store_true", help="skip the slide-deck agent step")
    a.add_argument("--agent-repeats", type=int, default=2)
    a.add_argument("--agent-max-steps", type=int, default=4)
    a.add_argument("--agent-max-new-tokens", type=int, default=1024)
    a.add_argument("--agent-task", default="", help="default: the blog's task, with the search step spelled out")
    a.add_argument("--search", choices=["auto", "online", "offline"], default="auto",
                   help="the agent's search: web, offline notes, or auto (probe the network first)")
    p.set_defaults(handler=_cmd_suite)
