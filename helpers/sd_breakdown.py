"""Where a speculative step's time goes: draft, verify and the rest, and the speedup formula with measured parts.

The blog's model, Speedup = E[tokens] / (k c + 1), assumes that verifying k+1 tokens costs one plain token and that
nothing else costs anything. With measured parts (all per step, t_plain = one plain decode step)::

    predicted = E[tokens/step] * t_plain / (draft per step + verify + rest)

(``rest`` here: everything else in the step; the pipeline's own TPOT also charges the draft's prefill to decoding.)

where ``draft per step`` is (draft forwards per step) x (ms per draft forward), about k x t_draft_token. For the
OpenVINO GenAI pipeline the parts come from its own metrics (see `pipeline_parts`); for the from-scratch loop
(`helpers.sd_loop`) from its timers. Comparing ``verify`` with t_plain, and ``rest`` with zero, says which assumption
of the blog's formula breaks on a given machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .sd_loop import LoopResult, StatefulLM, check_k
from .tables import markdown_table


@dataclass
class StepParts:
    """Mean ms per decode step (the prefill step excluded) of one run, or medians over runs."""

    label: str
    k: int = 0  # 0: no draft
    runs: int = 1
    generated: float = 0.0
    steps: float = 0.0
    tokens_per_step: float = 1.0
    step_ms: float = 0.0  # wall time of one step
    draft_ms: float = 0.0  # all draft forwards of the step
    draft_calls_per_step: float = 0.0
    draft_token_ms: float = 0.0  # one draft forward (its own scheduling and sampling included)
    draft_infer_ms: float = 0.0  # of the draft's time per step, model inference
    draft_prefill_ms: float = 0.0  # GenAI: the draft's prefill, which its TPOT counts as decode time (per step)
    verify_ms: float = 0.0  # the target's part of the step (GenAI: its whole step(); from scratch: its forward)
    verify_infer_ms: float = 0.0  # of which model inference
    sampling_ms: float = 0.0  # the sampler (where the pipeline reports it: target alone)
    trim_ms: float = 0.0  # from scratch: cutting KV caches back
    rest_ms: float = 0.0  # step - the parts above: bookkeeping between the models and between steps
    tpot_ms: float = 0.0  # decode time per token (GenAI's TPOT, or the loop's decode time / tokens)
    acceptance_rate: float | None = None

    def row(self) -> dict[str, Any]:
        return asdict(self)

    to_dict = row


def _ms(values: Sequence[float]) -> list[float]:
    """GenAI's raw durations are microseconds."""
    return [float(v) / 1e3 for v in values]


def pipeline_parts(result: Any, label: str, k: int = 0) -> StepParts:
    """Per-step parts of one ``LLMPipeline.generate([text], config)`` result, from GenAI's own raw metrics.

    ``step_ms`` is the decode wall time (``m_new_token_times``, last minus first: exactly what GenAI's TPOT divides
    by the tokens after the first) per step, so the parts add up to TPOT x tokens / steps.
    Plain pipeline: ``token_infer_durations`` is the wall time of each step() (entry 0: the prefill, left out),
    ``sampling_durations`` the sampler's part, ``inference_durations`` one running total (prefill included: its step
    wall time stands in for its inference, they differ by one sampler call); ``rest`` is the time between step() calls.
    Speculative pipeline (2026.4, continuous batching): ``main_model_metrics.raw_metrics.m_durations`` holds the
    target's step() wall per SD step, ``draft_model_metrics.raw_metrics.m_durations`` one entry per draft forward
    (its prefill among them, see below). The target's prefill is SD step 0; the draft's runs inside SD step 1, after the
    first token, so GenAI's TPOT counts it: it is reported as ``draft_prefill_ms`` (spread over the steps).
    """
    metrics = result.perf_metrics
    raw = metrics.raw_metrics
    steps_ms = _ms(raw.token_infer_durations)
    times = [float(t) for t in raw.m_new_token_times]  # the binding gives these in ms, the durations in µs
    n = max(len(times) - 1, 1)
    batch = list(raw.m_batch_sizes)
    parts = StepParts(label=label, k=k, generated=float(metrics.get_num_generated_tokens()), steps=float(len(times) - 1),
                      tpot_ms=float(metrics.get_tpot().mean), step_ms=(times[-1] - times[0]) / n if times else 0.0,
                      tokens_per_step=sum(batch[1:]) / n if len(batch) > 1 else 1.0)
    extended = result.extended_perf_metrics
    if extended is None or not hasattr(extended, "main_model_metrics"):
        parts.verify_ms = sum(steps_ms[1:]) / n
        parts.verify_infer_ms = max(sum(_ms(raw.inference_durations)) - steps_ms[0], 0.0) / n if steps_ms else 0.0
        sampling = _ms(raw.sampling_durations)
        parts.sampling_ms = sum(sampling[1:]) / n if len(sampling) > 1 else 0.0
        parts.rest_ms = parts.step_ms - parts.verify_ms
        return parts
    main, draft = extended.main_model_metrics, extended.draft_model_metrics
    main_ms, draft_ms = _ms(main.raw_metrics.m_durations), _ms(draft.raw_metrics.m_durations)
    main_prefill = main_ms[0] if main_ms else 0.0
    # The draft's prefill is its longest entry among the first three (entry 0 is often a ~0 ms leftover of the
    # previous generate() call); it runs in SD step 0 or, usually, inside SD step 1, after the first token.
    first = max(range(min(3, len(draft_ms))), key=lambda i: draft_ms[i], default=None)
    draft_prefill = draft_ms[first] if first is not None else 0.0
    draft_decode = [d for i, d in enumerate(draft_ms) if i != first]
    if steps_ms and steps_ms[0] - main_prefill < 0.5 * draft_prefill:  # not in step 0: TPOT counts it
        parts.draft_prefill_ms = draft_prefill / n
    parts.verify_ms = sum(main_ms[1:]) / n
    parts.verify_infer_ms = max(sum(_ms(main.raw_metrics.inference_durations)) - main_prefill, 0.0) / n
    parts.draft_ms = sum(draft_decode) / n
    parts.draft_calls_per_step = len(draft_decode) / n
    parts.draft_token_ms = sum(draft_decode) / len(draft_decode) if draft_decode else 0.0
    # GenAI's draft inference total can run a few ms past the wall times of the same calls: clamp
    draft_infer = max(sum(_ms(draft.raw_metrics.inference_durations)) - draft_prefill, 0.0) / n
    parts.draft_infer_ms = min(draft_infer, parts.draft_ms)
    parts.rest_ms = parts.step_ms - parts.draft_ms - parts.verify_ms - parts.draft_prefill_ms
    parts.acceptance_rate = float(extended.get_draft_acceptance_rate())
    return parts


def pipeline_raw(result: Any) -> dict[str, list[float]]:
    """The raw GenAI lists `pipeline_parts` reads (durations in µs, token times in ms), to keep with the results."""
    raw = result.perf_metrics.raw_metrics
    out = {name: [float(v) for v in getattr(raw, name)] for name in (
        "token_infer_durations", "m_new_token_times", "m_batch_sizes", "inference_durations", "sampling_durations")}
    extended = result.extended_perf_metrics
    if extended is not None and hasattr(extended, "main_model_metrics"):
        for model in ("main_model_metrics", "draft_model_metrics"):
            metrics = getattr(extended, model).raw_metrics
            for name in ("m_durations", "m_batch_sizes", "inference_durations"):
                out[f"{model}.{name}"] = [float(v) for v in getattr(metrics, name)]
    return out


def loop_parts(result: LoopResult) -> StepParts:
    """Per-step parts of one from-scratch run (`helpers.sd_loop`)."""
    per = result.per_step()
    n = max(result.steps, 1)
    return StepParts(label=result.label, k=result.k, generated=float(result.generated), steps=float(result.steps),
                     tokens_per_step=result.tokens_per_step, step_ms=per["step_ms"], draft_ms=per["draft_ms"],
                     draft_calls_per_step=result.draft_calls / n, draft_token_ms=per["draft_token_ms"],
                     draft_infer_ms=result.draft_infer_ms / n,
                     verify_ms=per["verify_ms"], verify_infer_ms=result.target_infer_ms / n, trim_ms=per["trim_ms"],
                     rest_ms=per["other_ms"], tpot_ms=result.tpot_ms, acceptance_rate=result.acceptance_rate)


def median_parts(runs: Sequence[StepParts]) -> StepParts:
    """Field-wise medians over runs of the same configuration."""
    if not runs:
        raise ValueError("median_parts needs at least one run.")
    out = StepParts(label=runs[0].label, k=runs[0].k, runs=len(runs))
    for f in fields(StepParts):
        if f.name in ("label", "k", "runs"):
            continue
        values = [getattr(r, f.name) for r in runs if getattr(r, f.name) is not None]
        setattr(out, f.name, statistics.median(values) if values else None)
    return out


@dataclass
class Breakdown:
    """One speculative configuration against its plain baseline: parts relative to t_plain and three speedups."""

    label: str
    k: int
    tokens_per_step: float
    t_plain_ms: float  # one plain decode step of the baseline
    draft_ms: float
    draft_token_ms: float
    verify_ms: float
    verify_infer_ms: float
    trim_ms: float
    draft_prefill_ms: float
    rest_ms: float
    step_ms: float
    c: float  # draft forward / plain step
    verify_ratio: float  # verify / plain step (the blog assumes 1)
    rest_ratio: float  # (trim + draft prefill + rest) / plain step (the blog assumes 0)
    blog_predicted: float  # E / (k c + 1) with the measured E and c
    predicted: float  # E * t_plain / (draft + verify + trim + draft prefill + rest)
    measured: float  # median over pairs of TPOT(baseline) / TPOT(speculative)
    measured_lo: float
    measured_hi: float
    acceptance_rate: float | None = None  # the speculative configuration's (median over runs)

    @property
    def agreement(self) -> float:
        """predicted / measured - 1."""
        return self.predicted / self.measured - 1.0 if self.measured else float("nan")

    def shares(self) -> dict[str, float]:
        """Share of the step wall time per part."""
        total = self.step_ms or float("nan")
        return {"draft": self.draft_ms / total, "verify": self.verify_ms / total, "trim": self.trim_ms / total,
                "draft_prefill": self.draft_prefill_ms / total, "rest": self.rest_ms / total}

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "agreement": self.agreement, **{f"share_{k}": v for k, v in self.shares().items()}}

    to_dict = row


def explain(sd: StepParts, plain: StepParts, measured: tuple[float, float, float]) -> Breakdown:
    """Put a speculative configuration's parts against the plain step; `measured` is (q1, median, q3) of speedups."""
    check_k(sd.k)
    t_plain = plain.step_ms
    c = sd.draft_token_ms / t_plain
    other = sd.trim_ms + sd.draft_prefill_ms + sd.rest_ms
    spent = sd.draft_ms + sd.verify_ms + other
    return Breakdown(
        label=sd.label, k=sd.k, tokens_per_step=sd.tokens_per_step, t_plain_ms=t_plain, draft_ms=sd.draft_ms,
        draft_token_ms=sd.draft_token_ms, verify_ms=sd.verify_ms, verify_infer_ms=sd.verify_infer_ms,
        trim_ms=sd.trim_ms, draft_prefill_ms=sd.draft_prefill_ms, rest_ms=sd.rest_ms, step_ms=sd.step_ms, c=c,
        verify_ratio=sd.verify_ms / t_plain, rest_ratio=other / t_plain, blog_predicted=sd.tokens_per_step / (sd.k * c + 1.0),
        predicted=sd.tokens_per_step * t_plain / spent if spent > 0 else float("nan"),
        measured=measured[1], measured_lo=measured[0], measured_hi=measured[2], acceptance_rate=sd.acceptance_rate,
    )


def _row(breakdown: Breakdown | Mapping[str, Any]) -> Mapping[str, Any]:
    row = breakdown.row() if isinstance(breakdown, Breakdown) else breakdown
    if row["t_plain_ms"] <= 0:
        raise ConfigError("A break-even needs a plain step longer than zero.")
    return row


def break_even_tokens(breakdown: Breakdown | Mapping[str, Any]) -> float:
    """Tokens a speculative step must yield to be as fast as plain decoding: its parts (draft + verify + the rest)
    in plain steps, the denominator of `Breakdown.predicted` (so predicted = tokens_per_step / break_even_tokens).
    Takes a `Breakdown` or its ``row()`` (a recorded one too)."""
    row = _row(breakdown)
    return row["draft_ms"] / row["t_plain_ms"] + row["verify_ratio"] + row["rest_ratio"]


def break_even_acceptance(breakdown: Breakdown | Mapping[str, Any]) -> float:
    """The acceptance rate at which a speculative step with these measured parts is exactly as fast as plain decoding.

    A step yields 1 + acceptance x draft calls tokens (the target's own plus the accepted drafts) and must yield
    `break_even_tokens` = draft calls x c + verify_ratio + rest_ratio. They are equal at
    acceptance = c + (verify_ratio + rest_ratio - 1) / draft calls, so never below c (the draft's cost per token in
    plain steps) once a verify costs at least one plain step. Above 1: this configuration cannot pay at any acceptance.
    """
    row = _row(breakdown)
    calls = row["draft_ms"] / row["draft_token_ms"] if row["draft_token_ms"] else 0.0
    if calls <= 0:
        raise ConfigError("No draft call was measured (every answer ended before a speculative step): raise "
                          "--max-new-tokens or --prompts.")
    return (break_even_tokens(row) - 1.0) / calls


CONTROL_COLUMN = "control_t(k+1)/t(1)"


def with_control(breakdown: Sequence[Mapping[str, Any]], control_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Breakdown rows (live or recorded) with the raw-OpenVINO control's t(k+1)/t(1) beside the measured verify ratio
    (n = k+1, capped at the largest n measured; None when that n was not measured), and the break-evens."""
    largest = max((r["n"] for r in control_rows), default=0)
    rows = []
    for b in breakdown:
        n = min(b["k"] + 1, largest)
        match = next((r for r in control_rows if r["n"] == n), None)
        rows.append({**b, CONTROL_COLUMN: match["ratio"] if match else None, "break_even_tokens": break_even_tokens(b),
                     "break_even_acceptance": break_even_acceptance(b)})
    return rows


PIPE_PLAIN, LOOP_PLAIN = "pipeline target alone", "loop greedy"


@dataclass(frozen=True)
class BreakdownSettings:
    """What `measure_breakdown` runs: the pair, the k values, and how much of each."""

    target: Path
    draft: Path
    ks: tuple[int, ...] = (3,)
    prompts: int = 4  # the first N built-in prompts
    max_new_tokens: int = 128
    repeats: int = 2
    warmup: int = 1
    device: str = "CPU"
    exact: bool = False  # f32 inference and KV cache, no dynamic quantization
    context: int = 256  # KV-cache length of the t(n) control
    ns: tuple[int, ...] = (1, 2, 3, 4, 5, 8)
    forward_repeats: int = 20

    def __post_init__(self) -> None:
        for k in self.ks:
            check_k(k)
        if min(self.prompts, self.repeats, self.max_new_tokens, self.forward_repeats, self.context, *self.ns) < 1 \
                or self.warmup < 0:
            raise ConfigError("prompts, repeats, max_new_tokens, forward_repeats, context and every n must be >= 1, "
                              "warmup >= 0.")
        from .prompts import builtin_prompts

        if self.prompts > len(builtin_prompts()):
            raise ConfigError(f"The breakdown runs the built-in prompts, of which there are {len(builtin_prompts())}: "
                              f"--prompts {self.prompts} is too many.")


def compare(base: Any, sd: Any, target: StatefulLM, draft: StatefulLM, texts: Mapping[str, str],
            ids: Mapping[str, Sequence[int]], ks: Sequence[int] = (3,), max_new_tokens: int = 128,
            eos_ids: Iterable[int] = (), repeats: int = 2, warmup: int = 1, progress: bool = True) -> dict[str, Any]:
    """Interleaved, per prompt and repeat: the target alone (`base`) and the speculative LLMPipeline (`sd`) at every k,
    then a plain greedy loop and the from-scratch speculative loop on the same IRs (`target`, `draft`).

    `texts` are the chat-rendered prompts for the pipelines, `ids` the same prompts as token ids for the loops (same
    keys). Returns plain data: median parts per label, one `Breakdown` row per speculative label (measured speedup:
    median of per-pair TPOT ratios against its own baseline), the share of runs whose output equals the baseline's,
    every run, and the benchmark's seconds.
    """
    from tqdm.auto import tqdm

    from .benchmark import quartiles
    from .generation import generation_config
    from .sd_loop import greedy_generate, speculative_generate

    ks = list(dict.fromkeys(ks))
    for k in ks:
        check_k(k)
    if repeats < 1 or warmup < 0 or not ids or set(texts) != set(ids):
        raise ConfigError(f"compare needs repeats >= 1, warmup >= 0 and the same prompts as texts and ids, got "
                          f"repeats={repeats}, warmup={warmup}, {sorted(texts)} and {sorted(ids)}.")
    eos = frozenset(eos_ids)
    prompt_ids = list(ids)

    def runner(label: str) -> Any:
        k = int(label.rsplit("=", 1)[1]) if "k=" in label else 0
        if label.startswith("pipeline"):
            pipe, config = (sd, generation_config(max_new_tokens, num_assistant_tokens=k)) if k else \
                (base, generation_config(max_new_tokens))

            def go(pid: str) -> tuple[StepParts, list[int] | str]:
                result = pipe.generate([texts[pid]], config)
                raw_lists[len(runs)] = pipeline_raw(result)
                return pipeline_parts(result, label, k), result.texts[0]
        else:
            def go(pid: str) -> tuple[StepParts, list[int] | str]:
                out = speculative_generate(target, draft, ids[pid], k, max_new_tokens, eos) if k else \
                    greedy_generate(target, ids[pid], max_new_tokens, eos)
                parts = loop_parts(out)
                parts.label = label
                return parts, out.tokens
        return go

    runs: list[dict[str, Any]] = []
    raw_lists: dict[int, dict[str, list[float]]] = {}  # run index -> GenAI's raw metrics
    labels = [PIPE_PLAIN, *[f"pipeline SD k={k}" for k in ks], LOOP_PLAIN, *[f"loop SD k={k}" for k in ks]]
    runners = {label: runner(label) for label in labels}
    for label in labels:
        for _ in range(warmup):
            runners[label](prompt_ids[0])
    raw_lists.clear()
    started = time.perf_counter()
    with tqdm(total=repeats * len(prompt_ids) * len(labels), desc="breakdown", disable=not progress, leave=False) as bar:
        for repeat in range(repeats):
            shift = repeat % len(labels)
            for pid in prompt_ids:
                for label in labels[shift:] + labels[:shift]:
                    parts, output = runners[label](pid)
                    runs.append({"label": label, "prompt": pid, "repeat": repeat, "parts": parts, "output": output})
                    bar.update()
    bench_s = time.perf_counter() - started

    def pairs(label: str, baseline: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        base_runs = {(r["prompt"], r["repeat"]): r for r in runs if r["label"] == baseline}
        return [(base_runs[(r["prompt"], r["repeat"])], r) for r in runs if r["label"] == label]

    medians = {label: median_parts([r["parts"] for r in runs if r["label"] == label]) for label in labels}
    breakdowns, identical = [], {}
    for label in labels:
        baseline = PIPE_PLAIN if label.startswith("pipeline") else LOOP_PLAIN
        matched = pairs(label, baseline)
        identical[label] = sum(b["output"] == c["output"] for b, c in matched) / len(matched)
        if label in (PIPE_PLAIN, LOOP_PLAIN):
            continue
        ratios = [b["parts"].tpot_ms / c["parts"].tpot_ms for b, c in matched if c["parts"].tpot_ms > 0]
        breakdowns.append(explain(medians[label], medians[baseline], quartiles(ratios)))
    return {
        "parts": [medians[label].row() for label in labels],
        "breakdown": [b.row() for b in breakdowns],
        "identical_to_baseline": identical,
        "runs": [{**{k: v for k, v in r.items() if k != "parts"}, "parts": r["parts"].row(),
                  "output": r["output"] if isinstance(r["output"], str) else list(r["output"]),
                  "raw": raw_lists.get(i)} for i, r in enumerate(runs)],
        "benchmark_seconds": bench_s,
    }


def measure_breakdown(settings: BreakdownSettings, progress: bool = True) -> dict[str, Any]:
    """Load the pair as pipelines and as stateful IRs, run `compare`, then the t(n)/t(1) control. Plain data."""
    from .benchmark import machine_description
    from .devices import peak_rss_mb
    from .forward_cost import forward_cost
    from .generation import chat_prompt, check_prompt_fits, check_within_context, context_length, load_pipeline
    from .prompts import builtin_prompts
    from .sd_loop import StatefulLM, chat_token_ids, eos_token_ids
    from .speculative import EXACT_PROPERTIES

    args = settings
    fix = "Lower --max-new-tokens (BreakdownSettings.max_new_tokens)."  # checked here, so the CLI need not
    check_within_context(args.target, args.max_new_tokens, f"max_new_tokens {args.max_new_tokens}", fix)
    props = EXACT_PROPERTIES if args.exact else {}
    prompts = builtin_prompts()[: args.prompts]
    base = load_pipeline(args.target, args.device, **props)
    texts = {p.id: chat_prompt(base, p.text) for p in prompts}
    limit = context_length(args.target)
    for p in prompts:  # as the benchmark does: past the context a run takes minutes and measures nothing sound
        check_prompt_fits(base, texts[p.id], args.max_new_tokens, limit, f"Prompt {p.id!r}", fix)
    sd = load_pipeline(args.target, args.device, draft_dir=args.draft, **props)
    target, draft = StatefulLM(args.target, args.device, props), StatefulLM(args.draft, args.device, props)
    ids = {p.id: chat_token_ids(args.target, p.text) for p in prompts}
    compared = compare(base, sd, target, draft, texts, ids, args.ks, args.max_new_tokens, eos_token_ids(args.target),
                       args.repeats, args.warmup, progress)
    context = [t for p in prompts for t in ids[p.id]]
    context = (context * (args.context // max(len(context), 1) + 1))[: args.context]
    control = forward_cost(target, context, args.ns, repeats=args.forward_repeats)
    return {
        "settings": {**{k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
                     "properties": {k: str(v) for k, v in props.items()},
                     "prompts": [p.id for p in prompts], "benchmark_seconds": compared["benchmark_seconds"]},
        "machine": machine_description(), "peak_rss_mb": peak_rss_mb(),
        "prompt_tokens": {pid: len(v) for pid, v in ids.items()},
        "parts": compared["parts"],
        "breakdown": compared["breakdown"],
        "identical_to_baseline": compared["identical_to_baseline"],
        "control": control.to_dict(),
        "runs": compared["runs"],
    }


def overhead_row(parts: dict[str, Any]) -> dict[str, Any]:
    """How much of a step is model inference, and where the rest sits (draft, verify, between)."""
    infer = parts["draft_infer_ms"] + parts["verify_infer_ms"]
    draft_extra = parts["draft_ms"] - parts["draft_infer_ms"]
    verify_extra = parts["verify_ms"] - parts["verify_infer_ms"]
    other = parts["trim_ms"] + parts["draft_prefill_ms"] + parts["rest_ms"]
    return {"label": parts["label"], "step_ms": parts["step_ms"], "infer_ms": infer,
            "non_infer_ms": parts["step_ms"] - infer, "draft_non_infer_ms": draft_extra,
            "verify_non_infer_ms": verify_extra, "other_ms": other,
            "non_infer_per_token_ms": (parts["step_ms"] - infer) / parts["tokens_per_step"]}


def breakdown_report(data: dict[str, Any]) -> str:
    """The tables `measure_breakdown`'s data makes: parts, breakdown with the formula, control, overheads."""
    control = data["control"]
    t1, t1s = control["rows"][0]["t_ms"], control["t1_steady_ms"][1]
    plain = {p["label"]: p for p in data["parts"]}
    out = ["## Per-step parts (medians over runs; ms per decode step)", markdown_table(data["parts"], [
        "label", "runs", "generated", "tokens_per_step", "acceptance_rate", "tpot_ms", "step_ms", "draft_ms",
        "draft_calls_per_step", "draft_token_ms", "draft_infer_ms", "verify_ms", "verify_infer_ms", "sampling_ms",
        "trim_ms", "draft_prefill_ms", "rest_ms"])]
    rows = with_control(data["breakdown"], control["rows"])
    out += ["", "## Breakdown and the formula with measured parts (ratios relative to one plain step t_plain)",
            markdown_table(rows, ["label", "k", "tokens_per_step", "t_plain_ms", "c", "draft_ms", "verify_ms",
                                  "verify_ratio", CONTROL_COLUMN, "trim_ms", "draft_prefill_ms", "rest_ms",
                                  "rest_ratio", "tokens_per_step", "break_even_tokens", "acceptance_rate",
                                  "break_even_acceptance",
                                  "blog_predicted", "predicted", "measured", "measured_lo", "measured_hi",
                                  "agreement"]),
            "", "predicted = tokens/step * t_plain / (draft + verify + trim + draft_prefill + rest); "
                "blog_predicted = tokens/step / (k c + 1); measured = median over (prompt, repeat) pairs of "
                "TPOT(baseline) / TPOT(SD), lo/hi quartiles; break_even_tokens: the tokens per step at which a step of these "
                "parts pays for itself, break_even_acceptance = c + (verify_ratio + rest_ratio - 1) / draft calls.",
            "", f"## Raw-OpenVINO control on the target IR, KV cache of {control['context']} tokens, "
                f"{control['repeats']} repeats (ms of request.infer() only)",
            markdown_table(control["rows"], ["n", "t_ms", "t_lo_ms", "t_hi_ms", "ratio", "ratio_lo", "ratio_hi"]),
            "", f"t(1) right after a KV trim {t1:.1f} ms; t(1) after another forward (plain decoding) {t1s:.1f} ms "
                f"(quartiles {control['t1_steady_ms'][0]:.1f}-{control['t1_steady_ms'][2]:.1f}); one trim "
                f"(query_state + set_state) {control['trim_ms'][1]:.1f} ms.",
            f"Plain decode step: pipeline {plain[PIPE_PLAIN]['step_ms']:.1f} ms (infer "
            f"{plain[PIPE_PLAIN]['verify_infer_ms']:.1f}, sampler {plain[PIPE_PLAIN]['sampling_ms']:.1f}), TPOT "
            f"{plain[PIPE_PLAIN]['tpot_ms']:.1f}; from-scratch loop {plain[LOOP_PLAIN]['step_ms']:.1f} ms (infer "
            f"{plain[LOOP_PLAIN]['verify_infer_ms']:.1f}).",
            "", "Inference vs everything else, ms per step (non-infer = scheduling, sampler, bookkeeping):",
            markdown_table([overhead_row(p) for p in data["parts"]], ["label", "step_ms", "infer_ms", "non_infer_ms",
                                                                      "draft_non_infer_ms", "verify_non_infer_ms",
                                                                      "other_ms", "non_infer_per_token_ms"]),
            "", "Identical to the baseline's output (share of runs): " + ", ".join(
                f"{k}: {v:.2f}" for k, v in data["identical_to_baseline"].items()),
            f"Prompt tokens: {data['prompt_tokens']}; peak RSS {data['peak_rss_mb']:.0f} MiB; "
            f"benchmark {data['settings']['benchmark_seconds']:.0f} s."]
    return "\n".join(out)
