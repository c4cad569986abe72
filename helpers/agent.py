"""Running the slide-deck agent and measuring it: `build_agent` (a smolagents ``CodeAgent``), `run_agent` (one task,
per-step times, tokens and acceptance), and `compare_agents` (with and without a draft, interleaved).

The pieces it runs live beside it: `agent_model` (the OpenVINO GenAI model adapter) and `agent_tools` (search and
slides).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smolagents import CodeAgent, Tool
from smolagents.memory import ActionStep, PlanningStep
from smolagents.models import ChatMessage, MessageRole, Model
from smolagents.utils import AgentGenerationError, AgentMaxStepsError

from .agent_executor import AUTHORIZED_MODULES, CODE_MEMORY_LIMIT_MB, CODE_TIME_LIMIT_S, ContainedPythonExecutor
from .agent_model import ModelCall, OpenVINOGenAIModel
from .agent_tools import SlideDeckTool
from .benchmark import BenchmarkResult, RunRecord, machine_description, median, pooled_acceptance, quartiles
from .devices import peak_rss_mb
from .errors import AgentStoppedError, ConfigError, TutorialError
from .fsutil import write_json
from .settings import BLOG_TASK

# Small models (1.5B) answer the blog's task from memory without searching, or search and parse the result in the same
# code block without looking at it; spelling the two steps out makes them ground the slides in the search results.
GROUND_IN_SEARCH = (". First step: call web_search and print() its result, nothing else. Next step: write the slides "
                    "from the printed text.")
GROUNDED_TASK = BLOG_TASK + GROUND_IN_SEARCH
# Different tasks answerable from the same notes: a benchmark gives repeat r the r-th task for every configuration, so a
# prefix cache kept from an earlier run only carries what a different task shares (system prompt, tools).
AGENT_TASKS = (
    GROUNDED_TASK,
    "Present the Qwen3 model sizes (dense and mixture-of-experts) and their context lengths in a slide deck"
    + GROUND_IN_SEARCH,
    "Explain Qwen3's thinking and non-thinking modes and its tool calling for agents in a slide deck" + GROUND_IN_SEARCH,
)
# Served (untimed) before each timed run of a warm benchmark: a task none of the measured ones repeats, so the prefix
# cache it leaves holds only what every task shares.
EARLIER_TASK = "List Qwen3's training stages and data sizes in a slide deck" + GROUND_IN_SEARCH
# The prefill is what fills the cache; a few tokens more let a draft propose once, so it prefills (and caches) too.
EARLIER_TASK_TOKENS = 8
# Model-written code imports only pure-computation modules: python-pptx (which the blog's notebook authorized) can save
# and read any path, so only the slide tool uses it, inside its output folder (see agent_executor).
AUTHORIZED_IMPORTS = list(AUTHORIZED_MODULES)
AGENT_INSTRUCTIONS = (
    "To make slides: first call web_search to collect facts, then call make_slide_deck once with a title and 4 to 6 "
    "slides of 2 to 5 short bullets each, then return the path it gives with final_answer."
)
OUTPUT_NAME = "agent"  # decks and run logs go to paths.outputs_dir(workdir, OUTPUT_NAME)


# ---------------------------------------------------------------------------------------------------------------------
# Running and measuring the agent


def build_agent(model: Model, tools: list[Tool], max_steps: int = 6, stream: bool = False, verbosity: int = 1,
                instructions: str | None = AGENT_INSTRUCTIONS, code_time_limit_s: float = CODE_TIME_LIMIT_S,
                code_memory_limit_mb: int | None = CODE_MEMORY_LIMIT_MB) -> CodeAgent:
    """A CodeAgent whose code runs contained (`agent_executor.ContainedPythonExecutor`): computation-only imports, the
    tools as bare functions (only the slide tool writes, inside its folder), and a time and memory cap per step."""
    if max_steps < 1:
        raise ConfigError(f"max_steps must be at least 1, got {max_steps}.")
    if code_time_limit_s <= 0 or (code_memory_limit_mb is not None and code_memory_limit_mb < 1):
        raise ConfigError(f"The code limits must be positive, got {code_time_limit_s} s and {code_memory_limit_mb} MiB.")
    executor = ContainedPythonExecutor(time_limit_s=code_time_limit_s, memory_limit_mb=code_memory_limit_mb)
    agent = CodeAgent(tools=tools, model=model, executor=executor, max_steps=max_steps, stream_outputs=stream,
                      verbosity_level=verbosity, instructions=instructions)
    agent.authorized_imports = list(AUTHORIZED_IMPORTS)  # what the system prompt tells the model it may import
    agent.step_callbacks.register(ActionStep, DeckWrittenNote(agent))
    return agent


class DeckWrittenNote:
    """A step callback: after a step that wrote a deck without finishing, its observation tells the model to answer.

    Small models often write the same deck again in the next step instead of calling final_answer; that repeat costs a
    whole model call (hundreds of tokens of slide code). The note goes into the step's observation, which is what the
    model reads next."""

    def __init__(self, agent: CodeAgent) -> None:
        self.slide_tools = [t for t in agent.tools.values() if isinstance(t, SlideDeckTool)]
        self.seen = {id(t): len(t.written) for t in self.slide_tools}

    def __call__(self, memory_step: Any, agent: Any = None) -> None:
        new = [p for t in self.slide_tools for p in t.written[self.seen[id(t)]:]]
        self.seen = {id(t): len(t.written) for t in self.slide_tools}
        if not new or getattr(memory_step, "is_final_answer", False):
            return
        note = (f"The deck is written: {new[-1]}. The task is done: the next code must be only "
                f"final_answer({str(new[-1])!r}).")
        memory_step.observations = f"{memory_step.observations}\n{note}" if memory_step.observations else note


class _StepTagger:
    """A step callback that marks the model calls made during each agent step with that step's number."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.seen = len(getattr(model, "calls", []))
        self.calls_by_step: dict[int, list[ModelCall]] = {}

    def __call__(self, memory_step: Any, agent: Any = None) -> None:
        calls = getattr(self.model, "calls", [])
        new = calls[self.seen:]
        self.seen = len(calls)
        for call in new:
            call.step = getattr(memory_step, "step_number", 0)
        self.calls_by_step[id(memory_step)] = new


STEP_WORK = (("slides", "make_slide_deck("), ("search", "web_search("), ("answer", "final_answer("))
WORK_ORDER = ("search", "slides", "answer", "code", "none")  # the order of a task, for tables


def step_work(code: str | None) -> str:
    """What an agent step did, from its code: ``slides``, ``search``, ``answer``, other ``code``, or ``none``.

    Steps differ in how much they copy from their context (a slide step quotes the search results), which is what
    decides how well a draft or prompt lookup guesses them, so acceptance is reported per kind of work."""
    if not code:
        return "none"
    return next((work for work, call in STEP_WORK if call in code), "code")


def _short(value: Any, limit: int = 300, keep_end: bool = False) -> str:
    """At most `limit` characters; `keep_end` keeps the tail (an error's cause comes after the failing code line)."""
    text = "" if value is None else str(value)
    if len(text) <= limit:
        return text
    return "…" + text[-(limit - 1):] if keep_end else text[: limit - 1] + "…"


def _throughput(calls: Sequence[ModelCall]) -> float | None:
    """Tokens per second over several calls, each weighted by its tokens (OpenVINO GenAI's throughput per call)."""
    timed = [c.run for c in calls if c.run.throughput_tps > 0]
    seconds = sum(r.generated_tokens / r.throughput_tps for r in timed)
    return sum(r.generated_tokens for r in timed) / seconds if seconds > 0 else None


@dataclass
class AgentRun:
    """One agent run: the answer, the decks written, and per-step and per-call measurements."""

    label: str
    task: str
    final_answer: str
    steps: list[dict[str, Any]]
    calls: list[ModelCall]
    decks: list[Path] = field(default_factory=list)
    repeat: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # why the run stopped early (e.g. the conversation outgrew the model's context); "" if it did not

    @property
    def seconds(self) -> float:
        """Wall time of all steps, as smolagents timed them (model calls plus tool execution)."""
        return sum(s["seconds"] or 0.0 for s in self.steps)

    def record(self) -> RunRecord:
        """The whole run as one `RunRecord` (sums over its model calls), so `BenchmarkResult` can pair runs.

        ttft_ms is the total prefill time of the run (every step re-reads the growing conversation), tpot_ms the mean
        decode time per token weighted by tokens, acceptance the share of all draft tokens accepted.
        """
        runs = [c.run for c in self.calls]
        decode_tokens = sum(max(r.generated_tokens - 1, 0) for r in runs)
        generate_ms = sum(r.generate_ms for r in runs)
        generated = sum(r.generated_tokens for r in runs)
        drafted = sum(r.draft_tokens or 0 for r in runs)
        target_passes = sum(r.steps or 0 for r in runs)
        costs = [r.cost_ratio for r in runs if r.cost_ratio is not None]
        ratios = [r.draft_to_main_ratio for r in runs if r.draft_to_main_ratio is not None]
        return RunRecord(
            label=self.label, prompt_id="agent task", repeat=self.repeat,
            ttft_ms=sum(r.ttft_ms for r in runs),
            tpot_ms=(sum(r.tpot_ms * max(r.generated_tokens - 1, 0) for r in runs) / decode_tokens) if decode_tokens else 0.0,
            throughput_tps=generated / (generate_ms / 1000) if generate_ms > 0 else 0.0,
            generate_ms=generate_ms,
            input_tokens=sum(r.input_tokens for r in runs),
            generated_tokens=generated,
            acceptance_rate=pooled_acceptance(runs),
            accepted_tokens=sum(r.accepted_tokens or 0 for r in runs) if drafted else None,
            draft_tokens=drafted or None,
            draft_to_main_ratio=median(ratios),
            steps=target_passes or None,
            cost_ratio=median(costs),
            text=self.final_answer,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "task": self.task,
            "repeat": self.repeat,
            "final_answer": self.final_answer,
            "decks": [str(p) for p in self.decks],
            "seconds": self.seconds,
            "settings": self.settings,
            "error": self.error,
            "steps": self.steps,
            "calls": [{**c.row(), "thinking": c.thinking, "answer": c.answer} for c in self.calls],
            "totals": asdict(self.record()),
        }

    def to_json(self, path: str | Path) -> Path:
        """Write the run log atomically."""
        write_json(Path(path), self.to_dict())
        return Path(path)


def run_agent(agent: CodeAgent, task: str = BLOG_TASK, label: str | None = None, repeat: int = 0) -> AgentRun:
    """Run `agent` on `task` and collect, per step: wall time, tokens, acceptance rate, code, observation, error.

    Model errors (unparsable output, failing code) are part of a run, not exceptions: the agent retries until
    max_steps and then asks the model for a final answer. A run our model cannot continue (its conversation outgrew
    the context) raises `AgentStoppedError` carrying the run so far, so its log can still be written.
    """
    if not isinstance(task, str) or not task.strip():
        raise ConfigError("Give the agent a task: the text is empty (e.g. --task \"Make slides about Qwen3\").")
    model = agent.model
    tagger = _StepTagger(model)
    agent.step_callbacks.register(ActionStep, tagger)
    agent.step_callbacks.register(PlanningStep, tagger)
    slide_tools = [t for t in agent.tools.values() if isinstance(t, SlideDeckTool)]
    already = {id(t): len(t.written) for t in slide_tools}
    failure: TutorialError | None = None
    try:
        answer = agent.run(task)
    except AgentGenerationError as exc:
        if not isinstance(exc.__cause__, TutorialError):
            raise
        failure, answer = exc.__cause__, ""
    steps = []
    for memory_step in agent.memory.steps:
        if not isinstance(memory_step, (ActionStep, PlanningStep)):
            continue
        calls = tagger.calls_by_step.get(id(memory_step), [])
        usage = memory_step.token_usage
        is_action = isinstance(memory_step, ActionStep)
        error = getattr(memory_step, "error", None)
        steps.append({
            "step": getattr(memory_step, "step_number", 0),
            "kind": "final answer" if isinstance(error, AgentMaxStepsError) else "action" if is_action else "planning",
            "work": step_work(getattr(memory_step, "code_action", None)),
            "seconds": memory_step.timing.duration,
            "ttft_ms": sum(c.run.ttft_ms for c in calls),  # prefill of the re-sent conversation (cache hits are fast)
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "acceptance_rate": pooled_acceptance(c.run for c in calls),
            "tokens_per_s": _throughput(calls),
            "error": _short(f"{type(error).__name__}: {error}" if error else "", 1000, keep_end=True),
            "code": _short(getattr(memory_step, "code_action", None)),
            "observation": _short(getattr(memory_step, "observations", None)),
        })
    decks = [p for t in slide_tools for p in t.written[already[id(t)]:]]
    calls = [c for step_calls in tagger.calls_by_step.values() for c in step_calls]
    settings = {"max_steps": agent.max_steps, "authorized_imports": list(AUTHORIZED_IMPORTS),
                "tools": sorted(agent.tools)}
    for name in ("max_new_tokens", "enable_thinking", "num_assistant_tokens", "assistant_confidence_threshold"):
        if hasattr(model, name):
            settings[name] = getattr(model, name)
    run = AgentRun(label=label or getattr(model, "label", type(model).__name__), task=task,
                   final_answer=_short(answer, 2000), steps=steps, calls=calls, decks=decks, repeat=repeat,
                   settings=settings, error=str(failure or ""))
    if failure is not None:
        raise AgentStoppedError(f"The agent stopped after {len(steps)} step(s): {failure}", run=run) from failure
    return run


@dataclass
class AgentComparison:
    """Interleaved agent runs of several models on one task, paired as `benchmark.BenchmarkResult` pairs runs."""

    result: BenchmarkResult
    runs: list[AgentRun]

    def summary(self) -> list[dict[str, Any]]:
        """`BenchmarkResult.summary()` plus, per configuration: the median wall time and step count of its runs, and
        ``task_speedup``: the median (quartiles in ``task_speedup_lo``/``_hi``) over repeats of the baseline run's wall
        time divided by this configuration's, same repeat, same task: the end-to-end figure."""
        rows = self.result.summary()
        baseline = {r.repeat: r.seconds for r in self.runs if r.label == self.result.baseline}
        for row in rows:
            mine = [r for r in self.runs if r.label == row["label"]]
            row["agent_seconds"] = statistics.median(r.seconds for r in mine)
            row["agent_steps"] = statistics.median(len(r.steps) for r in mine)
            low, middle, high = quartiles(baseline[r.repeat] / r.seconds for r in mine
                                          if r.repeat in baseline and r.seconds > 0)
            row.update(task_speedup=middle, task_speedup_lo=low, task_speedup_hi=high)
        return rows

    def step_rows(self) -> list[dict[str, Any]]:
        """Median over repeats of each step's wall time and acceptance rate, per configuration (for plots)."""
        grouped: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for run in self.runs:
            for step in run.steps:
                grouped.setdefault((run.label, step["step"]), []).append(step)
        rows = []
        for (label, number), steps in grouped.items():
            accepted = [s["acceptance_rate"] for s in steps if s["acceptance_rate"] is not None]
            rows.append({"label": label, "step": number, "runs": len(steps),
                         "seconds": statistics.median(s["seconds"] or 0.0 for s in steps),
                         "output_tokens": statistics.median(s["output_tokens"] or 0 for s in steps),
                         "acceptance_rate": median(accepted)})
        order = {label: i for i, label in enumerate(dict.fromkeys(run.label for run in self.runs))}  # baseline first
        return sorted(rows, key=lambda r: (r["step"], order[r["label"]]))

    def work_rows(self) -> list[dict[str, Any]]:
        """Per configuration and kind of step work (search, slides, answer, code): median seconds, prefill time and
        acceptance rate over all such steps of all runs; in task order, the baseline first within each kind."""
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for run in self.runs:
            for step in run.steps:
                grouped.setdefault((run.label, step.get("work", "code")), []).append(step)
        rows = []
        for (label, work), steps in grouped.items():
            accepted = [s["acceptance_rate"] for s in steps if s["acceptance_rate"] is not None]
            rows.append({"label": label, "work": work, "steps": len(steps),
                         "seconds": statistics.median(s["seconds"] or 0.0 for s in steps),
                         "ttft_ms": statistics.median(s.get("ttft_ms") or 0.0 for s in steps),
                         "output_tokens": statistics.median(s["output_tokens"] or 0 for s in steps),
                         "acceptance_rate": statistics.median(accepted) if accepted else None})
        order = {label: i for i, label in enumerate(dict.fromkeys(run.label for run in self.runs))}  # baseline first
        return sorted(rows, key=lambda r: (WORK_ORDER.index(r["work"]) if r["work"] in WORK_ORDER else len(WORK_ORDER),
                                           r["work"], order[r["label"]]))

    def time_split(self) -> list[dict[str, Any]]:
        """Where each configuration's run time goes (medians over its runs, seconds): prefill (every call's TTFT: the
        re-sent conversation), decoding (the rest of each generate call) and everything else (tools, the executor,
        smolagents). ``decode_free_ceiling``: the baseline's wall time over its prefill + other, the end-to-end speedup
        a lever that only speeds decoding could reach even if decoding took no time at all (Amdahl's law)."""
        rows = []
        for label in dict.fromkeys(run.label for run in self.runs):
            parts = []
            for run in (r for r in self.runs if r.label == label):
                prefill = sum(c.run.ttft_ms for c in run.calls) / 1000
                generate = sum(c.run.generate_ms for c in run.calls) / 1000
                parts.append((run.seconds, prefill, generate - prefill, max(run.seconds - generate, 0.0),
                              sum(c.run.generated_tokens for c in run.calls)))
            wall, prefill, decode, other, tokens = (statistics.median(p[i] for p in parts) for i in range(5))
            rows.append({"label": label, "runs": len(parts), "wall_s": wall, "prefill_s": prefill, "decode_s": decode,
                         "other_s": other, "generated_tokens": tokens,
                         "decode_share": decode / wall if wall else None})
        baseline = next((r for r in rows if r["label"] == self.result.baseline), None)
        if baseline and baseline["prefill_s"] + baseline["other_s"] > 0:
            ceiling = baseline["wall_s"] / (baseline["prefill_s"] + baseline["other_s"])
            for row in rows:
                row["decode_free_ceiling"] = ceiling
        return rows

    def to_json(self, path: str | Path) -> Path:
        data = self.result.to_dict()
        data["agent_summary"] = self.summary()
        data["agent_work"] = self.work_rows()
        data["agent_time_split"] = self.time_split()
        data["agent_runs"] = [r.to_dict() for r in self.runs]
        write_json(Path(path), data)
        return Path(path)


@dataclass(frozen=True)
class LazyModel:
    """A model that `compare_agents` loads for each run and frees after it: every run starts with an empty prefix
    cache, and only one pipeline is in memory at a time (eleven agent pipelines of a 1.5B target need ~28 GiB)."""

    label: str
    load: Callable[[], OpenVINOGenAIModel]


def _warm_up(model: OpenVINOGenAIModel) -> None:
    """One short untimed call: first-inference allocations stay out of the measured run."""
    model.generate([ChatMessage(role=MessageRole.USER, content=[{"type": "text", "text": "Hello"}])])
    model.reset_calls()


def check_earlier_task(task: str, measured_tasks: Sequence[str] = ()) -> None:
    """Refuse an earlier task that is blank, or one of the tasks to be measured (its prefix cache would carry them)."""
    if not task.strip():
        raise ConfigError("Give the earlier task some text: it stands for a task the agent served before.")
    if task.strip() in {t.strip() for t in measured_tasks}:
        raise ConfigError("The earlier task must differ from the measured tasks: the cache may carry only what "
                          "another task would share.")


def serve_earlier_task(model: OpenVINOGenAIModel, tools: list[Tool], task: str, max_steps: int = 3) -> None:
    """Untimed: the agent's first model call for another `task`, cut to a few new tokens. The pipeline's prefix cache then
    holds what every task shares (the system prompt with its tool descriptions) and nothing of the task to come, as in
    an agent process that already served a task."""
    from smolagents.memory import SystemPromptStep, TaskStep

    check_earlier_task(task)
    agent = build_agent(model, tools, max_steps=max_steps, verbosity=0)
    agent.memory.system_prompt = SystemPromptStep(system_prompt=agent.system_prompt)  # as CodeAgent.run does
    agent.memory.steps.append(TaskStep(task=task))
    messages = agent.write_memory_to_messages()
    budget = model.max_new_tokens
    model.max_new_tokens = EARLIER_TASK_TOKENS
    try:
        model.generate(messages)
    finally:
        model.max_new_tokens = budget
        model.reset_calls()


def compare_agents(models: Sequence[OpenVINOGenAIModel | LazyModel], task: str | Sequence[str],
                   make_tools: Callable[[], list[Tool]], repeats: int = 2, max_steps: int = 3, warmup: bool = True,
                   progress: bool = True, earlier_task: str | None = None) -> AgentComparison:
    """Run the same agent task with each model, interleaved (A, B, B, A, ...): the first model is the baseline.

    Each run gets fresh tools and a fresh agent; the order of the models rotates every repeat, as in
    `benchmark.run_interleaved`, and speedups are medians of per-pair ratios (`BenchmarkResult.summary`). With several
    tasks, repeat r runs ``task[r % len(task)]`` for every model: the prefix cache a pipeline keeps from an earlier run
    then only helps with what a different task shares (system prompt, tool descriptions), not the task itself. A
    `LazyModel` is loaded (and warmed up, untimed) before each of its runs and freed after: no cache carries over.
    With `earlier_task`, every run's pipeline first serves that task's first call (`serve_earlier_task`, untimed): each
    run then starts with the shared prefix cached, as in an agent process that keeps its pipeline between tasks.
    """
    import gc

    from tqdm.auto import tqdm

    if len(models) < 2:
        raise ConfigError("compare_agents needs at least two models (e.g. target alone and target + draft).")
    tasks = [task] if isinstance(task, str) else list(task)
    if not tasks or not all(isinstance(t, str) and t.strip() for t in tasks):
        raise ConfigError("Give the agent at least one non-empty task.")
    if repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {repeats}.")
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"Model labels must be unique, got {labels}.")
    if earlier_task is not None:
        check_earlier_task(earlier_task, tasks)
    if warmup:  # first compilation and caches, untimed
        for model in models:
            if not isinstance(model, LazyModel):
                _warm_up(model)
    runs: list[AgentRun] = []
    described: dict[str, dict[str, Any]] = {}
    with tqdm(total=repeats * len(models), desc="agent runs", disable=not progress, leave=False) as bar:
        for repeat in range(repeats):
            shift = repeat % len(models)
            for entry in list(models[shift:]) + list(models[:shift]):
                model = entry.load() if isinstance(entry, LazyModel) else entry
                if isinstance(entry, LazyModel):
                    model.label = entry.label
                    if warmup:
                        _warm_up(model)
                described[entry.label] = {"max_new_tokens": model.max_new_tokens,
                                          "enable_thinking": model.enable_thinking,
                                          "num_assistant_tokens": model.num_assistant_tokens,
                                          "assistant_confidence_threshold": model.assistant_confidence_threshold,
                                          "prompt_lookup": model.prompt_lookup,
                                          "pipeline per run": isinstance(entry, LazyModel),
                                          "earlier task served": earlier_task is not None}
                if earlier_task is not None:
                    serve_earlier_task(model, make_tools(), earlier_task, max_steps)
                agent = build_agent(model, make_tools(), max_steps=max_steps, verbosity=0)
                runs.append(run_agent(agent, tasks[repeat % len(tasks)], repeat=repeat))
                bar.update()
                if isinstance(entry, LazyModel):
                    del agent, model
                    gc.collect()
    result = BenchmarkResult(
        records=[r.record() for r in runs], baseline=labels[0],
        settings={"task": tasks[0] if len(tasks) == 1 else tasks, "repeats": repeats, "max_steps": max_steps,
                  **({"earlier task": earlier_task} if earlier_task is not None else {}),
                  "models": {label: described[label] for label in labels}},
        machine=machine_description(), peak_rss_mb=peak_rss_mb(),
    )
    return AgentComparison(result=result, runs=runs)


def print_thinking(text: str) -> None:
    """An `on_thinking` callback: show the model's reasoning as it streams (it never enters the parsed answer)."""
    print(text, end="", flush=True)
