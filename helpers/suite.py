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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .agent_levers import (
    LOOKUP_SWEEP_STEP,
    WARM_STEP,
    AgentSetup,
    combined_setups,
    lever_setups,
    lookup_sweep_setups,
    warm_setups,
)
from .benchmark import BenchmarkResult, Candidate
from .errors import ConfigError
from .generation import THRESHOLD_LOGPROBS
from .paths import PathLike
from .presets import INT4_ASYM_G128, INT8_ASYM, Preset, WeightFormat
from .prompts import Prompt
from .pruned_drafts import HealingPlan, ModelKey
from .reference import HEALING_RECORD, TIME_SPLIT_COLUMNS, WORK_COLUMNS, describe_heal, export_agreement_table, healing_table
from .settings import BENCH, DISTILL, REPO_ROOT, SUITE

REFERENCE = "target int4 alone"
REFERENCE_MODEL = ModelKey("target", "int4")
UNPRUNED_DRAFT = ModelKey("draft", "int4")  # the control every pruned draft is compared with
AGENT_STEPS = ("agent", LOOKUP_SWEEP_STEP, WARM_STEP)  # steps of the whole agent task (their own summary section)
SUITE_VERSION = 3  # bump when the meaning of a step changes, so old JSONs are not mixed with new ones
SUMMARY_COLUMNS = ("step", "label", "runs", "tpot_ms", "throughput_tps", "ttft_ms", "acceptance_rate", "acceptance_pooled",
                   "cost_ratio", "tokens_per_step", "speedup", "speedup_lo", "speedup_hi", "e2e_speedup", "identical_to_baseline")


@dataclass(frozen=True)
class RunSpec:
    """One configuration inside a step: which target precision, and how it is assisted."""

    label: str
    target: str  # "int4" or "int8"
    mode: str = "alone"  # "alone", "draft" or "lookup" (prompt lookup)
    k: int | None = None  # num_assistant_tokens for "draft" and "lookup"
    draft: ModelKey | None = None  # for "draft": which draft (format; pruned depth and healing)
    threshold: float | None = None  # instead of k: assistant_confidence_threshold (the draft stops when unsure)
    agent: AgentSetup | None = None  # agent steps: the whole pipeline configuration (levers)

    @property
    def pruned(self) -> bool:
        """Whether the draft comes out of the pruning pipeline (pruned, repaired, healed or with a trimmed head)."""
        return bool(self.draft and (self.draft.pruned or self.draft.head_tokens))

    @property
    def target_key(self) -> ModelKey:
        return ModelKey("target", self.target)


@dataclass(frozen=True)
class SuiteStep:
    """One interleaved comparison; the reference (int4 target alone) is always added as its baseline."""

    name: str
    purpose: str
    runs: tuple[RunSpec, ...]
    kind: str = "bench"  # "bench": single prompts through run_interleaved; "agent": the slide-deck agent task
    earlier_task: bool = False  # agent steps: each run's pipeline first serves another task (its prefix cache warm)

    @property
    def uses_pruned(self) -> bool:
        return any(run.pruned for run in self.runs)


@dataclass
class SuiteSettings:
    """Everything that shapes the numbers; stored in every result so a resumed suite cannot mix settings."""

    preset: Preset
    prompts: list[Prompt]
    ks: tuple[int, ...] = SUITE.assistant_tokens
    lookup_ks: tuple[int, ...] = SUITE.lookup_tokens
    draft_formats: tuple[str, ...] = SUITE.draft_formats
    max_ngram_size: int = BENCH.max_ngram_size
    max_new_tokens: int = SUITE.max_new_tokens
    repeats: int = SUITE.repeats
    warmup: int = SUITE.warmup
    device: str = "CPU"
    properties: dict[str, Any] = field(default_factory=dict)
    results_dir: Path | None = None
    steps: tuple[str, ...] = ()  # subset of step names; empty: all
    plan: HealingPlan | None = None  # pruned + healed drafts; None: no pruning steps
    pruned_k: int = SUITE.pruned_k  # num_assistant_tokens for the pruned-draft and lm_head steps
    agent: bool = False
    agent_repeats: int = SUITE.agent_repeats
    agent_max_steps: int = SUITE.agent_max_steps
    agent_max_new_tokens: int = SUITE.agent_max_new_tokens
    agent_search: str = "auto"  # web search when the internet answers, else the offline notes
    agent_task: str = ""  # default: agent.GROUNDED_TASK
    workdir: PathLike | None = None  # converted and pruned models (default: the tutorial's work folder)

    def steps_planned(self) -> list[SuiteStep]:
        """Every step these settings plan, whatever --steps selects."""
        return default_steps(self.ks, self.lookup_ks, self.draft_formats, self.plan, self.pruned_k, self.agent)

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
            runs = tuple(RunSpec(f"{target} + {draft} draft k={k}", target, "draft", k, ModelKey("draft", draft))
                         for k in ks)
            steps.append(SuiteStep(f"{target}-target-{draft}-draft", f"{target} target with the preset's unpruned draft "
                                   f"at {draft}, k sweep", (int8_alone, *runs) if target == "int8" else runs))
    steps.append(SuiteStep("prompt-lookup", "int4 target with prompt-lookup decoding (n-grams from the prompt, no draft)",
                           tuple(RunSpec(f"int4 + prompt lookup k={k}", "int4", "lookup", k) for k in lookup_ks)))
    if plan:
        k = pruned_k

        def draft_run(draft: ModelKey, threshold: float | None = None, k: int = k) -> RunSpec:
            what = f"{draft.variant or 'unpruned'} {draft.weights} draft"
            if threshold is not None:
                return RunSpec(f"int4 + {what} threshold={threshold:g}", "int4", "draft", draft=draft, threshold=threshold)
            return RunSpec(f"int4 + {what} k={k}", "int4", "draft", k, draft)

        unpruned = ModelKey("draft", "int4")
        drafts = [unpruned, *plan.variants(0, "int4"), *(key for d in plan.depths for key in plan.variants(d, "int4"))]
        steps.append(SuiteStep("pruned-drafts", f"int4 target with the draft depth-pruned by {', '.join(map(str, plan.depths))} "
                               "layers (plain, repaired, healed, trimmed output layer, as planned) against the unpruned "
                               f"int4 draft, at equal k={k}", tuple(draft_run(key) for key in drafts)))
        # the unpruned draft (full and trimmed head) and the most worked-on variant of the shallowest cut, at every
        # other k of the sweep and with a confidence threshold: a pruned draft must win at its best setting, not only at k
        principal = [unpruned, *agent_drafts(plan)]
        other_ks = sorted({*ks, *SUITE.sweep_extra_ks} - {k})
        runs = [draft_run(key, k=other) for key in principal for other in other_ks]
        runs += [draft_run(key, threshold) for key in principal for threshold in SUITE.sweep_thresholds]
        steps.append(SuiteStep("pruned-drafts-sweep", "the unpruned draft and the most worked-on shallowest draft at "
                               f"the other k ({', '.join(map(str, other_ks)) or 'none'}) and with a confidence "
                               f"threshold of {' / '.join(f'{t:g}' for t in SUITE.sweep_thresholds)}", tuple(runs)))
        if plan.heal is not None:
            runs = [draft_run(ModelKey("draft", "int4-all")),
                    *(draft_run(ModelKey("draft", "int4-all", d, healed=True, repair="replaceme" if plan.repair else ""))
                      for d in plan.depths)]
            steps.append(SuiteStep("lm-head-int4", "drafts with embeddings and lm_head compressed to int4 too (NNCF "
                                   "all_layers)", tuple(runs)))
    if agent:
        lookup_k = lookup_ks[0] if lookup_ks else SUITE.lookup_tokens[0]
        worked_on = [agent_run(AgentSetup(f"{draft.variant} int4 draft k={pruned_k}", draft=True,
                                          num_assistant_tokens=pruned_k), draft) for draft in agent_drafts(plan)]
        runs = [agent_run(s) for s in [*lever_setups(pruned_k, lookup_k)[1:], *combined_setups(pruned_k, lookup_k)]]
        runs += worked_on
        steps.append(SuiteStep("agent", "the smolagents slide-deck task (web or offline search, python-pptx): the int4 "
                               "target with OpenVINO GenAI's defaults, then every speed lever alone and combined; a "
                               "different task per repeat, a fresh pipeline per run", tuple(runs), kind="agent"))
        sweep = [agent_run(s) for s in lookup_sweep_setups(lookup_k)]
        steps.append(SuiteStep(LOOKUP_SWEEP_STEP, f"the agent task again with prompt lookup around k={lookup_k}: fewer and "
                               "more tokens per guess, shorter and longer n-grams", tuple(sweep), kind="agent"))
        warm = [*(agent_run(s) for s in warm_setups(pruned_k, lookup_k)), *worked_on[-1:]]
        steps.append(SuiteStep(WARM_STEP, "the agent task with every pipeline (the reference's too) having served a "
                               "different task first, untimed: the system prompt and tool descriptions are in its "
                               "prefix cache, as in an agent process that keeps its pipeline between tasks",
                               tuple(warm), kind="agent", earlier_task=True))
    return steps


def agent_run(setup: AgentSetup, draft: ModelKey | None = None) -> RunSpec:
    """An agent step's configuration: the int4 target with `setup`'s levers (the unpruned int4 draft unless `draft`)."""
    mode = "draft" if setup.draft else "lookup" if setup.prompt_lookup else "alone"
    return RunSpec(f"agent: {setup.label}", "int4", mode, setup.num_assistant_tokens,
                   (draft or UNPRUNED_DRAFT) if setup.draft else None, setup.assistant_confidence_threshold, agent=setup)


def agent_drafts(plan: HealingPlan | None) -> list[ModelKey]:
    """The worked-on drafts the agent and the pruned-drafts sweep also try: the unpruned draft with the first trimmed
    head, and the most worked-on draft of the shallowest depth (repaired, healed and trimmed, as far as the plan goes)."""
    if plan is None:
        return []
    drafts = [ModelKey("draft", "int4", head_tokens=plan.head_tokens[0])] if plan.head_tokens else []
    return [*drafts, plan.variants(min(plan.depths), "int4")[-1]]


def selected_steps(settings: SuiteSettings) -> list[SuiteStep]:
    unknown_formats = set(settings.draft_formats) - {"int4", "int8"}
    if unknown_formats:
        raise ConfigError(f"Draft formats must be int4 and/or int8, got {', '.join(sorted(unknown_formats))}.")
    steps = settings.steps_planned()
    unknown = set(settings.steps) - {s.name for s in steps}
    if unknown:
        # the draft-pruning steps exist only in a plan that prunes: name the missing option rather than the step
        needs_plan = unknown & {"pruned-drafts", "pruned-drafts-sweep", "lm-head-int4"}
        hint = (f" The steps on pruned drafts ({', '.join(sorted(needs_plan))}) need --prune-depths, and lm-head-int4 "
                "also needs healing."
                if needs_plan else "")
        raise ConfigError(f"Unknown suite step(s) {', '.join(sorted(unknown))}; choose from "
                          f"{', '.join(s.name for s in steps)}.{hint}")
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
        # results from before thresholds were scored (they drafted one token per step at any threshold) are stale
        **({"threshold_logprobs": THRESHOLD_LOGPROBS} if uses_threshold(step) else {}),
        **({"agent": {"repeats": settings.agent_repeats, "max_steps": settings.agent_max_steps,
                      "max_new_tokens": settings.agent_max_new_tokens, "search": settings.agent_search,
                      "tasks": agent_tasks(settings),
                      "setups": {r.label: r.agent.describe() for r in step.runs if r.agent},
                      **({"earlier_task": earlier_task()} if step.earlier_task else {})}}
           if step.kind == "agent" else {}),
    }


def uses_threshold(step: SuiteStep) -> bool:
    """Whether a configuration of `step` drafts under a confidence threshold."""
    return any(run.threshold is not None or (run.agent and run.agent.assistant_confidence_threshold is not None)
               for run in step.runs)


def result_path(step: SuiteStep, settings: SuiteSettings) -> Path:
    return settings.folder / f"{step.name}.json"


def step_status(step: SuiteStep, settings: SuiteSettings) -> str:
    """"done", "todo", or "stale" when the existing result was made with other settings (or is not a suite result)."""
    path = result_path(step, settings)
    if not path.is_file():
        return "todo"
    try:
        stored = json.loads(path.read_text())["settings"]["suite"]["signature"]
    except (ValueError, KeyError, TypeError):
        stored = None
    return "done" if stored == step_signature(step, settings) else "stale"


def refuse_stale(steps: Sequence[SuiteStep], settings: SuiteSettings) -> dict[str, str]:
    """Every step's status; raises `ConfigError` naming the first stale result rather than measuring over it."""
    status = {s.name: step_status(s, settings) for s in steps}
    stale = [s for s in steps if status[s.name] == "stale"]
    if stale:
        raise ConfigError(
            f"{result_path(stale[0], settings)} was measured with other settings (or is not a suite result). Delete it "
            "to measure this step again, or pass --results-dir to keep both."
        )
    return status


def steps_to_measure(settings: SuiteSettings, steps: Sequence[SuiteStep]) -> list[SuiteStep]:
    """The `steps` without a result yet; raises `ConfigError` naming a stale result, before any work."""
    status = refuse_stale(steps, settings)
    return [s for s in steps if status[s.name] == "todo"]


def suite_formats(preset: Preset) -> dict[str, WeightFormat]:
    """The weight formats the suite names "int4", "int8" and "int4-all", the same for unpruned and pruned drafts.

    int4 is the preset target's int4 format (so tiny models keep their small group size), or asym g128."""
    int4 = preset.target.weights if preset.target.weights.bits == 4 else INT4_ASYM_G128
    return {"int4": int4, "int8": INT8_ASYM, "int4-all": replace(int4, all_layers=True)}


def suite_models(preset: Preset, needed: set[ModelKey], workdir: PathLike | None = None) -> dict[ModelKey, Path]:
    """Converted folders for keys like "target int4", "draft int8" or "draft int4-all" (converted on first use).

    A model already in the wanted precision keeps the preset's settings; the other precision takes the preset
    target's int4 settings (so tiny models keep their small group size) or plain per-channel int8. "-all" also
    compresses embeddings and lm_head. Pruned drafts ("draft pruned...") are made by `pruned_models`.
    """
    from .conversion import prepare_model

    formats = suite_formats(preset)
    folders = {}
    for key in sorted(needed, key=str):
        if key.pruned or key.head_tokens:  # made by `pruned_models`
            continue
        spec = preset.target if key.role == "target" else preset.draft
        if spec.weights.tag != key.weights:  # another precision: the published conversion is not this model
            spec = replace(spec, weights=formats[key.weights], preconverted=None)
        folders[key] = prepare_model(spec, workdir=workdir).path
    return folders


def pruned_models(settings: SuiteSettings, target_int4: Path, progress: bool = True) -> dict[ModelKey, Path]:
    """Run (or reuse) the pruning + healing pipeline of `settings.plan`; keys like "draft pruned6-healed int4"."""
    from .pruned_drafts import make_pruned_drafts

    if settings.plan is None:
        return {}
    formats = [suite_formats(settings.preset)[name] for name in ("int4", "int4-all")]
    drafts, unpruned = make_pruned_drafts(settings.preset, settings.plan, target_int4, formats, progress=progress,
                                          workdir=settings.workdir)
    exports = {**suite_models(settings.preset, {UNPRUNED_DRAFT}, settings.workdir), **unpruned,
               **{key: path for draft in drafts for key, path in draft.openvino.items()}}
    write_healing_record(settings, drafts, export_agreement(settings, exports, target_int4, progress))
    return {key: path for key, path in exports.items() if key != UNPRUNED_DRAFT}


def export_agreement(settings: SuiteSettings, exports: dict[ModelKey, Path], target_int4: Path, progress: bool = True
                     ) -> list[dict[str, Any]]:
    """For each OpenVINO draft export, on the held-out prompts: top-1 agreement beside the agreement of the
    checkpoint it was exported from (what the export keeps of repair and healing), and acceptance at the pruned
    drafts' k (what the pipeline makes of it). Agreement only for a full output layer: a trimmed head's graph
    computes logits for the last position alone (all the pipeline samples from a draft)."""
    from .pruned_drafts import held_out_acceptance, held_out_agreement, plan_answers_path

    if settings.plan is None:
        return []
    data = plan_answers_path(settings.preset, settings.plan, settings.workdir)
    measured = held_out_agreement({key: path for key, path in exports.items() if not key.head_tokens}, settings.plan,
                                  data, settings.device, settings.properties)
    accepted = held_out_acceptance(target_int4, exports, settings.plan, data, settings.pruned_k, settings.max_new_tokens,
                                   settings.device, settings.properties, progress)
    return [{"draft": str(key), "checkpoint": str(key.hf_variant), "export agreement": measured.get(str(key)),
             f"acceptance k={settings.pruned_k}": accepted.get(str(key))}
            for key in sorted(exports, key=lambda k: (k.pruned, str(k)))]


def write_healing_record(settings: SuiteSettings, drafts: list[Any], exports: list[dict[str, Any]] | None = None) -> Path:
    """What pruning, repair and healing did for each depth (held-out agreement, losses, time, peak RAM), beside the
    results: the acceptance of each draft is in the pruned-drafts step, the reasons for it are here."""
    from .fsutil import read_json, write_json
    from .pruned_drafts import work_folder

    made = read_json(work_folder(settings.preset, settings.workdir) / "pruned-drafts.json") or {}
    rows = [{k: v for k, v in d.row().items() if k != "openvino"} for d in drafts]
    exports = exports or []
    plan = settings.plan.describe() if settings.plan else None
    path = settings.folder / HEALING_RECORD
    earlier = read_json(path) or {}
    if plan and same_recipe(earlier.get("plan"), plan):  # other depths, same data and recipe: keep their rows
        depths = {row.get("depth") for row in rows}
        kept = [row for row in earlier.get("drafts") or [] if row.get("depth") not in depths]
        names = {export["draft"] for export in exports}
        exports = sorted([*exports, *(e for e in earlier.get("export held-out agreement") or []
                                      if e.get("draft") not in names)], key=lambda e: str(e.get("draft")))
        rows = sorted([*rows, *kept], key=lambda row: row.get("depth") or 0)
        plan = {**plan, "depths": sorted({row.get("depth") for row in rows if row.get("depth")})}
    write_json(path, {"plan": plan, "drafts": rows,
                      "unpruned held-out agreement": made.get("unpruned held-out agreement"),
                      "held-out share": made.get("held-out share"), "answers": made.get("answers"),
                      "acceptance prompts": DISTILL.acceptance_prompts, "export held-out agreement": exports})
    return path


def same_recipe(recorded: Any, plan: dict[str, Any]) -> bool:
    """Whether a recorded healing plan differs from `plan` at most in its depths (same data, repair, healing)."""
    if not isinstance(recorded, dict):
        return False
    return {k: v for k, v in recorded.items() if k != "depths"} == {k: v for k, v in plan.items() if k != "depths"}


def healing_section(folder: Path) -> str:
    """The healing record as a table: does repair or healing bring the pruned draft's agreement back?"""
    from .fsutil import read_json
    from .tables import markdown_table

    record = read_json(folder / HEALING_RECORD)
    rows = healing_table(record) if record else []
    if not rows:
        return ""
    share = record.get("held-out share")
    held = f"{share:.0%}" if share else "none"
    counts = record.get("answers") or {}
    if counts:
        held += f": {counts.get('held out')} answers, beside {counts.get('training')} that trained"
    return ("## Pruned drafts: repair and healing\n\nTop-1 agreement with the target's answers on held-out prompts "
            f"({held} of the distillation records, never trained on), per Hugging Face checkpoint; healing "
            f"settings: {describe_heal((record.get('plan') or {}).get('heal'))}.\n\n" + markdown_table(rows)
            + exports_section(record))


def exports_section(record: dict[str, Any]) -> str:
    """The same prompts through each OpenVINO export (what the pipeline runs): agreement and acceptance."""
    from .tables import markdown_table

    rows = export_agreement_table(record)
    if not rows:
        return ""
    held = (record.get("answers") or {}).get("held out")
    limit = record.get("acceptance prompts")
    which = (f"the {limit} of them whose ids hash lowest" if isinstance(limit, int) and isinstance(held, int)
             and held > limit else "all the prompts")
    return ("\n\nThe same held-out prompts through each OpenVINO draft export: top-1 agreement (teacher forcing, one "
            "forward pass per answer) beside the checkpoint it was exported from, and speculative acceptance with the "
            f"int4 target (greedy; OpenVINO GenAI's accepted / drafted tokens over {which}):\n\n"
            + markdown_table(rows))


def models_needed(steps: list[SuiteStep]) -> set[ModelKey]:
    needed = {REFERENCE_MODEL}
    for step in steps:
        for run in step.runs:
            needed.add(run.target_key)
            if run.mode == "draft" and run.draft is not None:
                needed.add(run.draft)
    return needed


def step_candidates(step: SuiteStep, settings: SuiteSettings, models: dict[ModelKey, Path]) -> list[Candidate]:
    """The reference first, then the step's runs; runs that differ only in k or threshold share one pipeline.

    Sharing is safe because assisted pipelines keep no prefix cache between requests (`generation.load_pipeline`):
    a repeated prompt pays its prefill like the plain reference does.
    """
    from .generation import generation_config, load_pipeline

    pipelines: dict[tuple[ModelKey, str, ModelKey | None], Any] = {}

    def pipeline(target: ModelKey, mode: str, draft: ModelKey | None = None) -> Any:
        if (target, mode, draft) not in pipelines:
            pipelines[(target, mode, draft)] = load_pipeline(
                models[target], settings.device, draft_dir=models[draft] if mode == "draft" and draft else None,
                prompt_lookup=mode == "lookup", **settings.properties,
            )
        return pipelines[(target, mode, draft)]

    candidates = [Candidate(REFERENCE, pipeline(REFERENCE_MODEL, "alone"), generation_config(settings.max_new_tokens))]
    for run in step.runs:
        config = generation_config(
            settings.max_new_tokens, num_assistant_tokens=run.k if run.mode != "alone" else None,
            assistant_confidence_threshold=run.threshold,
            max_ngram_size=settings.max_ngram_size if run.mode == "lookup" else None,
        )
        candidates.append(Candidate(run.label, pipeline(run.target_key, run.mode, run.draft), config))
    return candidates


def run_step(step: SuiteStep, settings: SuiteSettings, models: dict[ModelKey, Path], command: str) -> BenchmarkResult:
    """Measure one step and write its JSON (atomically: an interrupted step leaves no result, but its runs so far stay
    in ``<step>.json.partial.jsonl``; an earlier interrupted step's runs are moved aside, never overwritten)."""
    from .benchmark import keep_earlier_partial, partial_results_path, run_interleaved
    from .generation import context_length

    if step.kind == "agent":
        return run_agent_step(step, settings, models, command)
    path = result_path(step, settings)
    partial = partial_results_path(path)
    keep_earlier_partial(partial)
    result = run_interleaved(step_candidates(step, settings, models), settings.prompts, repeats=settings.repeats,
                             warmup=settings.warmup, enable_thinking=False, baseline=REFERENCE, partial_path=partial,
                             context_length=context_length(models[REFERENCE_MODEL]) if REFERENCE_MODEL in models else None)
    result.settings["suite"] = suite_record(step, settings, models, command)
    result.to_json(path)
    partial.unlink(missing_ok=True)
    return result


def suite_record(step: SuiteStep, settings: SuiteSettings, models: dict[ModelKey, Path], command: str) -> dict[str, Any]:
    used = {REFERENCE_MODEL, *(r.target_key for r in step.runs), *(r.draft for r in step.runs if r.draft)}
    return {"signature": step_signature(step, settings), "purpose": step.purpose, "command": command,
            "models": {str(key): str(path) for key, path in models.items() if key in used}}


def agent_tasks(settings: SuiteSettings) -> list[str]:
    """The suite's own task if given, else the grounded tasks (one per repeat, the same for every configuration)."""
    from .agent import AGENT_TASKS

    return [settings.agent_task] if settings.agent_task else list(AGENT_TASKS)


def earlier_task() -> str:
    """The task a warm agent step's pipelines serve before each timed run (never one of `agent_tasks`)."""
    from .agent import EARLIER_TASK

    return EARLIER_TASK


def run_agent_step(step: SuiteStep, settings: SuiteSettings, models: dict[ModelKey, Path], command: str
                   ) -> BenchmarkResult:
    """The slide-deck agent with the int4 target and OpenVINO GenAI's defaults, then with each lever set, interleaved;
    decks go next to the JSON."""
    from functools import partial

    from .agent import LazyModel, compare_agents
    from .agent_levers import load_agent_model
    from .agent_tools import choose_search_tool, default_tools

    search = choose_search_tool(settings.agent_search)
    decks = settings.folder / "agent-decks"
    setups = [(REFERENCE_MODEL, None, AgentSetup(REFERENCE))]
    setups += [(run.target_key, run.draft, replace(run.agent or AgentSetup(), label=run.label)) for run in step.runs]
    # one pipeline per run, loaded before it and freed after: all of them at once do not fit in RAM, and no prefix
    # cache carries over from another run (each run pays its own first prefill, as a fresh agent process would)
    agents = [LazyModel(setup.label, partial(load_agent_model, setup, models[target], settings.device,
                                             draft_dir=models[draft] if draft else None, properties=settings.properties,
                                             max_new_tokens=settings.agent_max_new_tokens))
              for target, draft, setup in setups]
    comparison = compare_agents(agents, agent_tasks(settings), lambda: default_tools(decks, search),
                                repeats=settings.agent_repeats, max_steps=settings.agent_max_steps,
                                earlier_task=earlier_task() if step.earlier_task else None)
    pipelines = ("a fresh pipeline per run that first served another task, untimed (system prompt and tools cached)"
                 if step.earlier_task else "a fresh pipeline per run: no prefix cache carries over")
    comparison.result.settings["suite"] = {**suite_record(step, settings, models, command), "search": search.message,
                                           "pipelines": pipelines}
    comparison.to_json(result_path(step, settings))
    return comparison.result


def finished_steps(settings: SuiteSettings) -> list[SuiteStep]:
    """Every step of the plan (not only the ones selected with --steps) whose result is there and matches it: the
    summary covers all of them, so running the suite step by step still gives one complete summary."""
    return [step for step in replace(settings, steps=()).steps_planned() if step_status(step, settings) == "done"]


def summary_rows(settings: SuiteSettings, finished: Sequence[SuiteStep] | None = None) -> list[dict[str, Any]]:
    """Every configuration of every finished step (`finished`, when the caller knows them already), with the formula's
    prediction where it applies."""
    from .speculative import with_predictions

    rows: list[dict[str, Any]] = []
    for step in finished_steps(settings) if finished is None else finished:
        if step.kind == "agent":
            rows += [{"step": step.name, **row} for row in agent_rows(result_path(step, settings))]
            continue
        result = BenchmarkResult.from_json(result_path(step, settings))
        rows += [{"step": step.name, **row} for row in with_predictions(result.summary())]
    return rows


def pruned_versus_unpruned(step: SuiteStep, result: BenchmarkResult) -> list[dict[str, Any]]:
    """Each pruned draft of `step` against the unpruned draft at the same setting (k or threshold) in the same run, and
    against the unpruned draft with the same trimmed head when it has one: `BenchmarkResult.speedup_difference`."""
    draft_runs = [run for run in step.runs if run.mode == "draft" and run.draft is not None]
    rows = []
    for run in (r for r in draft_runs if r.draft.pruned):
        for control in draft_runs:
            same_setting = (control.k, control.threshold, control.target) == (run.k, run.threshold, run.target)
            unpruned = not control.draft.pruned and control.draft.head_tokens in {0, run.draft.head_tokens}
            difference = result.speedup_difference(run.label, control.label) if same_setting and unpruned else None
            if difference:
                setting = f"threshold={run.threshold:g}" if run.threshold else f"k={run.k}"
                rows.append({"step": step.name, "setting": setting, "pruned draft": run.draft.variant,
                             "against": f"unpruned {control.draft.variant or 'draft'} {control.draft.weights}",
                             **difference})
    return rows


def pruned_rows(settings: SuiteSettings, finished: Sequence[SuiteStep]) -> list[dict[str, Any]]:
    """`pruned_versus_unpruned` for every finished step with pruned drafts (agent steps have their own table)."""
    return [row for step in finished if step.kind != "agent" and step.uses_pruned
            for row in pruned_versus_unpruned(step, BenchmarkResult.from_json(result_path(step, settings)))]


def pruned_section(rows: list[dict[str, Any]]) -> str:
    """summary.md: every pruned draft against the unpruned one at equal settings, pair by pair (empty without any)."""
    from .tables import markdown_table

    if not rows:
        return ""
    return ("## Pruned against unpruned drafts, pair by pair\n\nFor each prompt and repeat: speedup of the pruned draft "
            "minus speedup of the unpruned draft at the same setting, both against that pair's reference run; median, "
            "quartiles (lo/hi) and the pairs the pruned draft won.\n\n"
            + markdown_table([{**r, **{k: round(r[k], 3) for k in ("difference", "difference_lo", "difference_hi")}}
                              for r in rows]))


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
    planned = settings.steps_planned()
    status = {s.name: step_status(s, settings) for s in planned}  # each result file read once for the whole summary
    finished = [s for s in planned if status[s.name] == "done"]
    rows = summary_rows(settings, finished)
    machines, commands = [], []
    for step in finished:
        path = result_path(step, settings)
        if path.is_file():
            data = json.loads(path.read_text())
            machines.append({"step": step.name, **data.get("machine", {}), "peak_rss_mb": round(data.get("peak_rss_mb", 0))})
            commands.append(data["settings"]["suite"]["command"])
    pruned = pruned_rows(settings, finished)
    write_json(folder / "summary.json", {"preset": settings.preset.name, "reference": REFERENCE, "command": command,
                                         "step_commands": sorted(set(commands)), "machines": machines, "rows": rows,
                                         "pruned_versus_unpruned": pruned})
    todo = [name for name, state in status.items() if state == "todo"]
    stale = [name for name, state in status.items() if state == "stale"]
    text = "\n\n".join(part for part in [
        f"# Benchmark suite: {settings.preset.name}",
        f"Command (latest run):\n\n```\n{command}\n```",
        f"Reference (speedup 1.0): **{REFERENCE}**. speedup = median over (prompt, repeat) pairs of TPOT(reference) / "
        "TPOT(config), measured interleaved within each step; lo/hi = quartiles of those ratios; e2e_speedup uses whole "
        f"request time per token. {len(settings.prompts)} prompts x {settings.repeats} repeats, {settings.warmup} warm-up, "
        f"greedy, max_new_tokens={settings.max_new_tokens}, device {settings.device}, "
        f"properties {settings.properties or 'defaults'}.",
        markdown_table([r for r in rows if r["step"] not in AGENT_STEPS], [*SUMMARY_COLUMNS, "predicted_speedup"])
        if rows else "(no finished step yet)",
        pruned_section(pruned),
        agent_section(rows, folder),
        healing_section(folder),
        "Steps not measured yet: " + (", ".join(todo) if todo else "none")
        + (f". Measured with other settings, left out until measured again: {', '.join(stale)}" if stale else ""),
        "## Machine\n\n" + (markdown_table(machines) if machines else "-"),
    ] if part) + "\n"
    atomic_write_text(folder / "summary.md", text)
    if rows:
        # the reference (and int8 alone) runs in several steps: name each bar after its step so none hides another
        counts = {label: sum(r["label"] == label for r in rows) for label in {r["label"] for r in rows}}
        bars = [{**r, "label": r["label"] if counts[r["label"]] == 1 else f"{r['label']} ({r['step']})"} for r in rows]
        save_figure(plot_benchmark_summary(bars, title=f"{settings.preset.name}: all configurations"), folder / "overview.png")
        for step in finished:
            step_rows = [r for r in rows if r["step"] == step.name]
            if len({run.k for run in step.runs if run.mode == "draft" and run.k}) > 1 and step_rows:  # a k sweep
                save_figure(plot_speedup_vs_k(step_rows, title=f"{step.name}: speedup vs {REFERENCE}"),
                            folder / f"speedup_vs_k_{step.name}.png")
    return folder / "summary.md"


def agent_section(rows: list[dict[str, Any]], folder: Path) -> str:
    from .tables import markdown_table

    agent = [r for r in rows if r["step"] in AGENT_STEPS]
    if not agent:
        return "## Agent task\n\n(not measured)"
    return ("## Agent task\n\nThe slide-deck agent (notebook 06), the same task for every configuration within a repeat "
            "(a different task per repeat), runs interleaved. task_speedup = median over repeats of the reference run's "
            "wall time / this configuration's (the end-to-end figure; lo/hi quartiles); agent_seconds = median wall time "
            "of the whole task; speedup = TPOT ratio; ttft_ms = total prefill time of a run.\n\n"
            + markdown_table(agent, ["step", "label", "runs", "task_speedup", "task_speedup_lo", "task_speedup_hi",
                                     "agent_seconds", "agent_steps", "generated_tokens", "tpot_ms", "ttft_ms",
                                     "acceptance_rate", "speedup", "decks_written"])
            + work_section(folder))


def work_section(folder: Path) -> str:
    """Acceptance, prefill and time per kind of step work (search, slides, answer, code), from the agent step's JSON."""
    from .fsutil import read_json
    from .tables import markdown_table

    data = read_json(folder / "agent.json") or {}
    work = data.get("agent_work")
    split = [{"step": name, **row} for name in AGENT_STEPS
             for row in (read_json(folder / f"{name}.json") or {}).get("agent_time_split") or []]
    text = ("\n\nPer kind of step (medians over all such steps of all runs):\n\n"
            + markdown_table(work, WORK_COLUMNS) if work else "")
    if split:
        text += ("\n\nWhere each run's time goes (medians over runs, seconds): prefill = every model call's TTFT, decode "
                 "= the rest of the calls, other = tools, executor, smolagents. decode_free_ceiling = the reference's "
                 "wall time / its prefill + other: what a lever that only speeds decoding could reach at best.\n\n"
                 + markdown_table(split, ["step", *TIME_SPLIT_COLUMNS]))
    return text


def prepare_models(settings: SuiteSettings, steps: list[SuiteStep], progress: bool = True) -> dict[ModelKey, Path]:
    """Every model the `steps` need: converted, and pruned + healed where a step uses pruned drafts."""
    if not steps:
        return {}
    models = suite_models(settings.preset, models_needed(steps), settings.workdir)
    if any(s.uses_pruned for s in steps):
        models.update(pruned_models(settings, models[REFERENCE_MODEL], progress))
    return models


def run_suite(settings: SuiteSettings, command: str = "", progress: bool = True) -> list[dict[str, Any]]:
    """Run every step not measured yet (skipping finished ones), then write the summary; returns one row per step."""
    from tqdm.auto import tqdm

    steps = selected_steps(settings)
    todo = steps_to_measure(settings, steps)
    models = prepare_models(settings, todo, progress)
    for step in tqdm(todo, desc="suite", disable=not progress, leave=False):
        run_step(step, settings, models, command)
        write_summary(settings, command)
    write_summary(settings, command)
    return [{"step": s.name, "action": "measured" if s in todo else "skipped (done)",
             "result": str(result_path(s, settings)), "purpose": s.purpose} for s in steps]
