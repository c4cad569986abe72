"""Measure generation with OpenVINO GenAI's own PerfMetrics, and compare configurations fairly.

Timings come from ``DecodedResults.perf_metrics`` (and, for speculative decoding, ``extended_perf_metrics``), never
from hand-made timers. Comparisons are interleaved (A, B, A, B ... for each prompt and repeat) and summarised as the
median of per-pair ratios, because shared and laptop machines drift through slow and fast phases of tens of seconds:
sequential blocks would compare phases, not configurations.
"""

from __future__ import annotations

import json
import platform
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import PromptFileError
from .fsutil import write_json
from .generation import chat_prompt
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


def measure(pipe: Any, prompt_text: str, config: Any, label: str = "", prompt_id: str = "", repeat: int = 0,
            streamer: Any = None) -> RunRecord:
    """Run one generation and read its metrics. `prompt_text` is already chat-formatted (see `chat_prompt`)."""
    result = pipe.generate([prompt_text], config, streamer)
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
        record.acceptance_rate = float(extended.get_draft_acceptance_rate())
        record.accepted_tokens = int(extended.get_num_accepted_tokens())
        record.draft_tokens = int(extended.get_num_draft_tokens())
        record.draft_to_main_ratio = float(extended.get_draft_to_main_inference_duration_ratio())
        main_calls = len(extended.main_model_metrics.raw_metrics.m_batch_sizes)
        draft_calls = len(extended.draft_model_metrics.raw_metrics.m_batch_sizes)
        main_ms = extended.main_model_metrics.get_inference_duration().mean
        draft_ms = extended.draft_model_metrics.get_inference_duration().mean
        record.steps = main_calls
        if main_calls and draft_calls and main_ms > 0:
            record.cost_ratio = (draft_ms / draft_calls) / (main_ms / main_calls)
    return record


@dataclass
class Candidate:
    """A configuration under test: a loaded pipeline and the GenerationConfig to run it with."""

    label: str
    pipe: Any
    config: Any


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


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


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux/macOS; 0 where unavailable)."""
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return psutil.Process().memory_info().peak_wset / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 1024


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

    def speculation(self, label: str) -> dict[str, Any]:
        """The speculative knobs `label` ran with (``num_assistant_tokens``, ``assistant_confidence_threshold``), as
        recorded from its GenerationConfig; empty for configurations without them."""
        config = self.settings.get("candidates", {}).get(label, {})
        return {name: config[name] for name in ("num_assistant_tokens", "assistant_confidence_threshold")
                if config.get(name)}

    def summary(self, by_prompt: bool = False) -> list[dict[str, Any]]:
        """Medians with quartiles per configuration (and per prompt with `by_prompt`).

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
            tpot_q = _quartiles([r.tpot_ms for r in runs])
            speed_q = _quartiles(ratios) if ratios else (float("nan"),) * 3
            accept = [r.acceptance_rate for r in runs if r.acceptance_rate is not None]
            cost = [r.cost_ratio for r in runs if r.cost_ratio is not None]
            per_step = [r.generated_tokens / r.steps for r in runs if r.steps]
            row: dict[str, Any] = {"label": label, **self.speculation(label)}
            if by_prompt:
                row["prompt"] = prompt_id
            row.update({
                "runs": len(runs),
                "ttft_ms": statistics.median(r.ttft_ms for r in runs),
                "tpot_ms": tpot_q[1],
                "tpot_iqr_ms": tpot_q[2] - tpot_q[0],
                "throughput_tps": statistics.median(r.throughput_tps for r in runs),
                "generated_tokens": statistics.median(r.generated_tokens for r in runs),
                "input_tokens": statistics.median(r.input_tokens for r in runs),
                "load_ms": statistics.median(r.load_ms for r in runs),
                "acceptance_rate": statistics.median(accept) if accept else None,
                "cost_ratio": statistics.median(cost) if cost else None,
                "tokens_per_step": statistics.median(per_step) if per_step else None,
                "speedup": speed_q[1],
                "speedup_lo": speed_q[0],
                "speedup_hi": speed_q[2],
                "e2e_speedup": statistics.median(e2e) if e2e else float("nan"),
                "identical_to_baseline": (sum(b.text == c.text for b, c in pairs) / len(pairs)) if pairs else None,
            })
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "baseline": self.baseline,
            "settings": self.settings,
            "machine": self.machine,
            "peak_rss_mb": self.peak_rss_mb,
            "summary": self.summary(),
            "per_prompt": self.summary(by_prompt=True),
            "runs": [asdict(r) for r in self.records],
        }

    def to_json(self, path: str | Path) -> Path:
        """Write the results (settings, machine, summary, per-prompt summary, every run) atomically."""
        write_json(Path(path), self.to_dict())
        return Path(path)

    @classmethod
    def from_json(cls, path: str | Path) -> BenchmarkResult:
        data = json.loads(Path(path).read_text())
        return cls(records=[RunRecord(**r) for r in data["runs"]], baseline=data["baseline"], settings=data["settings"],
                   machine=data.get("machine", {}), peak_rss_mb=data.get("peak_rss_mb", 0.0))


def run_interleaved(
    candidates: list[Candidate],
    prompts: list[Prompt],
    repeats: int = 3,
    warmup: int = 1,
    enable_thinking: bool = False,
    baseline: str | None = None,
    progress: bool = True,
) -> BenchmarkResult:
    """Run every candidate on every prompt `repeats` times, interleaved, after `warmup` untimed runs each.

    The candidate order rotates from one repeat to the next so that no configuration always runs right after the same
    neighbour. The first candidate is the baseline unless `baseline` names another.
    """
    from tqdm.auto import tqdm

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

    pipe.generate([prompt_text], config)  # warm-up
    ratios = []
    for _ in range(repeats):
        start = time.perf_counter()
        pipe.generate([prompt_text], config)
        bare = time.perf_counter() - start
        start = time.perf_counter()
        measure(pipe, prompt_text, config)
        wrapped = time.perf_counter() - start
        ratios.append(wrapped / bare)
    q1, median, q3 = _quartiles(ratios)
    return {"overhead": median - 1.0, "overhead_lo": q1 - 1.0, "overhead_hi": q3 - 1.0, "pairs": float(repeats)}
