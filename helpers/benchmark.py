"""Measure generation with OpenVINO GenAI's own PerfMetrics, and compare configurations fairly.

Timings come from ``DecodedResults.perf_metrics`` (and, for speculative decoding, ``extended_perf_metrics``), never
from hand-made timers. Comparisons are interleaved (A, B, A, B ... for each prompt and repeat) and summarised as the
median of per-pair ratios, because shared and laptop machines drift through slow and fast phases of tens of seconds:
sequential blocks would compare phases, not configurations.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .devices import peak_rss_mb
from .errors import ConfigError, PromptFileError
from .fsutil import append_jsonl, write_json
from .generation import chat_prompt, check_prompt_fits, generate_interruptibly
from .prompts import Prompt

RESULT_SCHEMA_VERSION = 1


@dataclass
class RunRecord:
    """One ``generate()`` call, as OpenVINO GenAI measured it (times in ms)."""

    label: str
    prompt_id: str
    repeat: int
    ttft_ms: float
    tpot_ms: float
    throughput_tps: float
    generate_ms: float
    input_tokens: int
    generated_tokens: int
    load_ms: float = 0.0  # time the pipeline took to load (the same for every run of one pipeline)
    acceptance_rate: float | None = None  # speculative decoding only
    accepted_tokens: int | None = None
    draft_tokens: int | None = None
    draft_to_main_ratio: float | None = None  # total draft inference time / total main inference time
    steps: int | None = None  # target forward passes (each validates up to k+1 tokens)
    cost_ratio: float | None = None  # c: time of one draft forward / time of one target forward
    text: str = ""


def defined(value: float | None) -> float | None:
    """`value`, or None when it is undefined (None, NaN or infinite: e.g. an acceptance rate with nothing drafted)."""
    return float(value) if value is not None and math.isfinite(value) else None


def median(values: Iterable[float | None]) -> float | None:
    """The median of the defined values (see `defined`), or None if there are none.

    NaN is excluded explicitly: ``statistics.median`` with a NaN in the list gives an answer that depends on the order.
    """
    kept = [v for v in (defined(x) for x in values) if v is not None]
    return statistics.median(kept) if kept else None


def pooled_acceptance(runs: Iterable[RunRecord]) -> float | None:
    """Accepted over drafted tokens, summed over `runs` (None when nothing was drafted)."""
    counted = [(r.accepted_tokens or 0, r.draft_tokens or 0) for r in runs]
    drafted = sum(d for _, d in counted)
    return sum(a for a, _ in counted) / drafted if drafted else None


def json_safe(data: Any) -> Any:
    """`data` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(data, float):
        return defined(data)
    if isinstance(data, dict):
        return {key: json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(value) for value in data]
    return data


def measure(pipe: Any, prompt_text: str, config: Any, label: str = "", prompt_id: str = "", repeat: int = 0,
            streamer: Any = None) -> RunRecord:
    """Run one generation and read its metrics. `prompt_text` is already chat-formatted (see `chat_prompt`).

    Ctrl-C stops the generation at the next token and then raises KeyboardInterrupt (see `generate_interruptibly`)."""
    result = generate_interruptibly(pipe, [prompt_text], config, streamer)
    metrics = result.perf_metrics
    record = RunRecord(
        label=label,
        prompt_id=prompt_id,
        repeat=repeat,
        ttft_ms=metrics.get_ttft().mean,
        tpot_ms=metrics.get_tpot().mean,
        throughput_tps=metrics.get_throughput().mean,
        generate_ms=metrics.get_generate_duration().mean,
        input_tokens=int(metrics.get_num_input_tokens()),
        generated_tokens=int(metrics.get_num_generated_tokens()),
        load_ms=float(metrics.get_load_time()),
        text=result.texts[0],
    )
    extended = result.extended_perf_metrics
    if extended is not None and hasattr(extended, "get_draft_acceptance_rate"):
        record.accepted_tokens = int(extended.get_num_accepted_tokens())
        record.draft_tokens = int(extended.get_num_draft_tokens())
        # Nothing drafted (e.g. a confidence threshold the draft never reaches): the rate is 0/0, undefined, not NaN.
        record.acceptance_rate = defined(extended.get_draft_acceptance_rate()) if record.draft_tokens else None
        record.draft_to_main_ratio = defined(extended.get_draft_to_main_inference_duration_ratio())
        main_calls = len(extended.main_model_metrics.raw_metrics.m_batch_sizes)
        draft_calls = len(extended.draft_model_metrics.raw_metrics.m_batch_sizes)
        main_ms = extended.main_model_metrics.get_inference_duration().mean
        draft_ms = extended.draft_model_metrics.get_inference_duration().mean
        record.steps = main_calls
        if main_calls and draft_calls and main_ms > 0:
            record.cost_ratio = defined((draft_ms / draft_calls) / (main_ms / main_calls))
    return record


@dataclass
class Candidate:
    """A configuration under test: a loaded pipeline and the GenerationConfig to run it with."""

    label: str
    pipe: Any
    config: Any


def quartiles(values: Iterable[float | None]) -> tuple[float | None, float | None, float | None]:
    """(q1, median, q3) of the defined values; (None, None, None) if there are none."""
    kept = [v for v in (defined(x) for x in values) if v is not None]
    if not kept:
        return None, None, None
    if len(kept) == 1:
        return kept[0], kept[0], kept[0]
    q1, middle, q3 = statistics.quantiles(kept, n=4, method="inclusive")
    return q1, middle, q3


def machine_description() -> dict[str, Any]:
    """What ran the benchmark: CPU, cores, RAM and library versions (stored with every result)."""
    import openvino as ov
    import openvino_genai as og
    import psutil

    from .devices import available_devices

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "devices": available_devices(),
        "logical_cores": psutil.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "openvino": ov.get_version(),
        "openvino_genai": og.__version__,
    }


@dataclass
class BenchmarkResult:
    """All runs of one interleaved benchmark, with the baseline every ratio is taken against."""

    records: list[RunRecord]
    baseline: str
    settings: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    peak_rss_mb: float = 0.0

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(r.label for r in self.records))

    def pairs(self, label: str) -> list[tuple[RunRecord, RunRecord]]:
        """(baseline, candidate) runs of the same prompt and repeat: the unit every ratio is computed on."""
        base = {(r.prompt_id, r.repeat): r for r in self.records if r.label == self.baseline}
        return [(base[(r.prompt_id, r.repeat)], r) for r in self.records
                if r.label == label and (r.prompt_id, r.repeat) in base]

    def speedup_difference(self, label: str, other: str) -> dict[str, Any] | None:
        """How much faster `label` is than `other`, pair by pair: for each prompt and repeat where the baseline and both
        ran, speedup(label) - speedup(other) (each against that pair's baseline run). Median with quartiles, the pairs
        and how many `label` won. Pairing removes most of the machine's slow and fast phases, which two medians of
        speedups measured minutes apart keep. None when no pair has all three runs."""
        speeds = {name: {(c.prompt_id, c.repeat): b.tpot_ms / c.tpot_ms for b, c in self.pairs(name) if c.tpot_ms > 0}
                  for name in (label, other)}
        differences = [speeds[label][key] - speeds[other][key] for key in speeds[label].keys() & speeds[other].keys()]
        if not differences:
            return None
        low, middle, high = quartiles(differences)
        return {"difference": middle, "difference_lo": low, "difference_hi": high, "pairs": len(differences),
                "wins": sum(d > 0 for d in differences)}

    def speculation(self, label: str) -> dict[str, Any]:
        """The speculative knobs `label` ran with (``num_assistant_tokens``, ``assistant_confidence_threshold``), as
        recorded from its GenerationConfig; empty for configurations without them."""
        config = self.settings.get("candidates", {}).get(label, {})
        return {name: config[name] for name in ("num_assistant_tokens", "assistant_confidence_threshold")
                if config.get(name)}

    def summary(self, by_prompt: bool = False) -> list[dict[str, Any]]:
        """Medians with quartiles per configuration (and per prompt with `by_prompt`).

        ``acceptance_rate`` is the median of the runs' rates; ``acceptance_pooled`` all accepted over all drafted tokens
        (what sets the tokens per step of the whole workload: prompts that draft more weigh more).
        ``speedup`` is the median over pairs of baseline TPOT / candidate TPOT (decode speed; TTFT excluded, as in the
        blog), ``e2e_speedup`` the same for whole-request time per generated token; ``speedup_lo``/``speedup_hi`` are
        the quartiles of the per-pair ratios. ``identical_to_baseline`` is the share of runs whose text equals the
        baseline's for the same prompt and repeat.
        """
        groups: dict[tuple[str, str], list[RunRecord]] = {}
        for record in self.records:
            key = (record.label, record.prompt_id if by_prompt else "all")
            groups.setdefault(key, []).append(record)
        rows = []
        for (label, prompt_id), runs in groups.items():
            pairs = [(b, c) for b, c in self.pairs(label) if not by_prompt or c.prompt_id == prompt_id]
            ratios = [b.tpot_ms / c.tpot_ms for b, c in pairs if c.tpot_ms > 0]
            e2e = [(b.generate_ms / max(b.generated_tokens, 1)) / (c.generate_ms / max(c.generated_tokens, 1))
                   for b, c in pairs if c.generate_ms > 0]
            tpot_q = quartiles(r.tpot_ms for r in runs)
            speed_q = quartiles(ratios)
            per_step = [r.generated_tokens / r.steps for r in runs if r.steps]
            row: dict[str, Any] = {"label": label, **self.speculation(label)}
            if by_prompt:
                row["prompt"] = prompt_id
            row.update({
                "runs": len(runs),
                "ttft_ms": median(r.ttft_ms for r in runs),
                "tpot_ms": tpot_q[1],
                "tpot_iqr_ms": tpot_q[2] - tpot_q[0] if tpot_q[1] is not None else None,
                "throughput_tps": median(r.throughput_tps for r in runs),
                "generated_tokens": median(r.generated_tokens for r in runs),
                "input_tokens": median(r.input_tokens for r in runs),
                "load_ms": median(r.load_ms for r in runs),
                "acceptance_rate": median(r.acceptance_rate for r in runs),
                "acceptance_pooled": pooled_acceptance(runs),
                "cost_ratio": median(r.cost_ratio for r in runs),
                "tokens_per_step": median(per_step),
                "speedup": speed_q[1],
                "speedup_lo": speed_q[0],
                "speedup_hi": speed_q[2],
                "e2e_speedup": median(e2e),
                "identical_to_baseline": (sum(b.text == c.text for b, c in pairs) / len(pairs)) if pairs else None,
            })
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON; undefined numbers (NaN, infinity) become null, so the file is valid JSON."""
        return json_safe({
            "schema_version": RESULT_SCHEMA_VERSION,
            "baseline": self.baseline,
            "settings": self.settings,
            "machine": self.machine,
            "peak_rss_mb": self.peak_rss_mb,
            "summary": self.summary(),
            "per_prompt": self.summary(by_prompt=True),
            "runs": [asdict(r) for r in self.records],
        })

    def to_json(self, path: str | Path) -> Path:
        """Write the results (settings, machine, summary, per-prompt summary, every run) atomically."""
        write_json(Path(path), self.to_dict())
        return Path(path)

    @classmethod
    def from_json(cls, path: str | Path) -> BenchmarkResult:
        try:
            data = json.loads(Path(path).read_text())
            return cls(records=[RunRecord(**r) for r in data["runs"]], baseline=data["baseline"],
                       settings=data["settings"], machine=data.get("machine", {}),
                       peak_rss_mb=data.get("peak_rss_mb", 0.0))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is not a readable benchmark result ({type(exc).__name__}: {exc}). Delete it "
                              "and measure again.") from exc


def partial_results_path(json_path: str | Path) -> Path:
    """Where runs are appended while a benchmark that ends in `json_path` is measuring."""
    json_path = Path(json_path)
    return json_path.with_name(json_path.name + ".partial.jsonl")


def keep_earlier_partial(partial: Path) -> Path | None:
    """Move the runs of an earlier, interrupted benchmark aside (never overwrite them); returns where they went."""
    if not partial.is_file():
        return None
    kept = partial.with_name(f"{partial.name.removesuffix('.jsonl')}-{int(partial.stat().st_mtime)}.jsonl")
    partial.rename(kept)
    return kept


def read_partial_runs(partial: str | Path) -> list[RunRecord]:
    """The runs an interrupted benchmark appended to `partial` (a torn last line is dropped)."""
    from .fsutil import read_jsonl

    return [RunRecord(**record) for record in read_jsonl(Path(partial))]


def run_interleaved(
    candidates: list[Candidate],
    prompts: list[Prompt],
    repeats: int = 3,
    warmup: int = 1,
    enable_thinking: bool = False,
    baseline: str | None = None,
    progress: bool = True,
    partial_path: str | Path | None = None,
    context_length: int | None = None,
) -> BenchmarkResult:
    """Run every candidate on every prompt `repeats` times, interleaved, after `warmup` untimed runs each.

    The candidate order rotates from one repeat to the next so that no configuration always runs right after the same
    neighbour. The first candidate is the baseline unless `baseline` names another. With `partial_path`, each run is
    appended there (one JSON line, flushed) as soon as it is measured, so a crash or Ctrl-C keeps what was measured.
    With `context_length`, a prompt that does not fit with each candidate's max_new_tokens is refused before any run.
    """
    from tqdm.auto import tqdm

    if repeats < 1 or warmup < 0:
        raise ConfigError(f"repeats must be at least 1 and warmup at least 0, got {repeats} and {warmup}.")
    if not candidates:
        raise ValueError("run_interleaved needs at least one candidate.")
    if not prompts:
        raise PromptFileError("No prompts to run: pass builtin_prompts() or load_prompts(path).")
    labels = [c.label for c in candidates]
    if len(set(labels)) != len(labels):
        raise ValueError(f"Candidate labels must be unique, got {labels}.")
    baseline = baseline or labels[0]
    if baseline not in labels:
        raise ValueError(f"Baseline {baseline!r} is not one of the candidates {labels}.")
    # Target and draft share a tokenizer, and all candidates load the same target, so one rendering serves all.
    rendered = {p.id: chat_prompt(candidates[0].pipe, p.text, enable_thinking) for p in prompts}
    if context_length:
        longest = max(int(getattr(c.config, "max_new_tokens", 0) or 0) for c in candidates)
        for prompt in prompts:
            check_prompt_fits(candidates[0].pipe, rendered[prompt.id], longest, context_length, f"Prompt {prompt.id!r}")
    for candidate in candidates:
        for _ in range(warmup):
            candidate.pipe.generate([rendered[prompts[0].id]], candidate.config)
    records: list[RunRecord] = []
    total = repeats * len(prompts) * len(candidates)
    with tqdm(total=total, desc="benchmark", disable=not progress, leave=False) as bar:
        for repeat in range(repeats):
            shift = repeat % len(candidates)
            order = candidates[shift:] + candidates[:shift]
            for prompt in prompts:
                for candidate in order:
                    records.append(measure(candidate.pipe, rendered[prompt.id], candidate.config, candidate.label,
                                           prompt.id, repeat))
                    if partial_path is not None:
                        append_jsonl(Path(partial_path), [json_safe(asdict(records[-1]))])
                    bar.update()
    settings = {
        "repeats": repeats,
        "warmup": warmup,
        "enable_thinking": enable_thinking,
        "prompts": [p.id for p in prompts],
        "candidates": {c.label: describe_config(c.config) for c in candidates},
    }
    return BenchmarkResult(records=records, baseline=baseline, settings=settings, machine=machine_description(),
                           peak_rss_mb=peak_rss_mb())


def describe_config(config: Any) -> dict[str, Any]:
    """The GenerationConfig fields that matter for speed, as plain data."""
    fields = ("max_new_tokens", "ignore_eos", "do_sample", "num_assistant_tokens", "assistant_confidence_threshold",
              "max_ngram_size")
    return {name: getattr(config, name) for name in fields if hasattr(config, name)}


def harness_overhead(pipe: Any, prompt_text: str, config: Any, repeats: int = 20) -> dict[str, float]:
    """Wall time of `measure()` against a bare ``pipe.generate()``, interleaved; median of per-pair ratios minus 1.

    This is the one place with a hand-made timer: it measures our own code around the library, which the library
    cannot see.
    """
    import time

    def timed(call: Any) -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    def bare_call() -> None:
        pipe.generate([prompt_text], config)

    def wrapped_call() -> None:
        measure(pipe, prompt_text, config)

    bare_call()  # warm-up
    ratios = []
    for index in range(repeats):
        # Alternate which call goes first: the second of two back-to-back calls runs on warmer caches, so a fixed
        # order biases every pair the same way (seen on the tiny pair: +36% one run, -47% the next).
        if index % 2:
            wrapped = timed(wrapped_call)
            bare = timed(bare_call)
        else:
            bare = timed(bare_call)
            wrapped = timed(wrapped_call)
        ratios.append(wrapped / bare)
    q1, middle, q3 = quartiles(ratios)
    return {"overhead": middle - 1.0, "overhead_lo": q1 - 1.0, "overhead_hi": q3 - 1.0, "pairs": float(repeats)}
