"""Speculative decoding: the blog's speedup model, k/threshold sweeps, prompt lookup and the lossless check.

A draft proposes k tokens (k is ``num_assistant_tokens``, the blog's gamma); the target checks them in one pass and
keeps the longest agreeing prefix plus one token of its own. With a per-token acceptance rate alpha and a draft/target
cost ratio c per forward pass::

    E[tokens per target pass] = (1 - alpha**(k + 1)) / (1 - alpha)
    Speedup = E[tokens] / (k * c + 1)

(Leviathan et al., 2023; the blog's formula.) A draft that is cheaper (small c) can beat a more accurate one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .benchmark import BenchmarkResult, Candidate, run_interleaved
from .errors import ConfigError
from .generation import chat_prompt, context_length, generation_config, load_pipeline
from .prompts import Prompt

# CPU defaults are bf16 inference, u8 KV cache and dynamic quantization (group 32): each rounds differently in a
# batched validation pass than in one-token steps, so greedy texts can part at near-ties. These make both exact.
EXACT_PROPERTIES: dict[str, Any] = {
    "INFERENCE_PRECISION_HINT": "f32",
    "KV_CACHE_PRECISION": "f32",
    "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0,
}


def expected_tokens_per_step(acceptance_rate: float, k: int) -> float:
    """Mean tokens one target pass yields when each draft token is accepted with probability `acceptance_rate`."""
    if not 0.0 <= acceptance_rate <= 1.0:
        raise ConfigError(f"acceptance_rate must be within [0, 1], got {acceptance_rate}.")
    if k < 0:
        raise ConfigError(f"k (num_assistant_tokens, -k) must be >= 0, got {k}.")
    if acceptance_rate == 1.0:
        return float(k + 1)
    return (1.0 - acceptance_rate ** (k + 1)) / (1.0 - acceptance_rate)


def predicted_speedup(acceptance_rate: float, k: int, cost_ratio: float) -> float:
    """The blog's Speedup = E[tokens] / (k * c + 1)."""
    if cost_ratio < 0:
        raise ConfigError(f"cost_ratio c must be >= 0, got {cost_ratio}.")
    return expected_tokens_per_step(acceptance_rate, k) / (k * cost_ratio + 1.0)


def best_k(acceptance_rate: float, cost_ratio: float, max_k: int = 16) -> int:
    """The speculation window the formula favours for a measured alpha and c."""
    return max(range(1, max_k + 1), key=lambda k: predicted_speedup(acceptance_rate, k, cost_ratio))


@dataclass
class SpeculativeSetup:
    """Folders and knobs of one speculative benchmark."""

    target: Path
    draft: Path | None = None
    device: str = "CPU"
    assistant_tokens: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    confidence_thresholds: tuple[float, ...] = ()
    prompt_lookup: bool = False
    max_ngram_size: int = 3
    max_new_tokens: int = 128
    properties: dict[str, Any] | None = None


def speculative_candidates(setup: SpeculativeSetup) -> list[Candidate]:
    """Baseline first, then one candidate per k and threshold (sharing one SD pipeline), then prompt lookup."""
    if setup.confidence_thresholds and setup.draft is None:
        raise ConfigError("assistant_confidence_threshold (--confidence-threshold) needs a draft model; prompt lookup "
                          "only supports a fixed k.")
    props = setup.properties or {}
    base = load_pipeline(setup.target, setup.device, **props)
    candidates = [Candidate("target alone", base, generation_config(setup.max_new_tokens))]
    if setup.draft is not None:
        sd = load_pipeline(setup.target, setup.device, draft_dir=setup.draft, **props)
        candidates += [Candidate(f"draft k={k}", sd, generation_config(setup.max_new_tokens, num_assistant_tokens=k))
                       for k in setup.assistant_tokens]
        candidates += [
            Candidate(f"draft threshold={t:g}", sd, generation_config(setup.max_new_tokens, assistant_confidence_threshold=t))
            for t in setup.confidence_thresholds
        ]
    if setup.prompt_lookup:
        lookup = load_pipeline(setup.target, setup.device, prompt_lookup=True, **props)
        k = max(setup.assistant_tokens) if setup.assistant_tokens else 5
        candidates.append(Candidate(f"prompt lookup k={k}", lookup, generation_config(
            setup.max_new_tokens, num_assistant_tokens=k, max_ngram_size=setup.max_ngram_size)))
    return candidates


def run_speculative_benchmark(setup: SpeculativeSetup, prompts: list[Prompt], repeats: int = 3, warmup: int = 1,
                              enable_thinking: bool = False, partial_path: str | Path | None = None) -> BenchmarkResult:
    """Interleaved benchmark of the target alone against every speculative configuration in `setup` (each run
    appended to `partial_path` as it is measured, if given)."""
    result = run_interleaved(speculative_candidates(setup), prompts, repeats=repeats, warmup=warmup,
                             enable_thinking=enable_thinking, partial_path=partial_path,
                             context_length=context_length(setup.target))
    result.settings.update({"target": str(setup.target), "draft": str(setup.draft) if setup.draft else None,
                            "device": setup.device, "properties": setup.properties or {}})
    return result


def with_predictions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the formula's prediction to every summary row with a measured acceptance rate (pooled over its runs where
    the row has it), a fixed k and c.

    k is the row's ``num_assistant_tokens`` field (`BenchmarkResult.summary` copies it from the run's
    GenerationConfig); rows with a confidence threshold have no fixed k and get no prediction."""
    out = []
    for row in rows:
        row = dict(row)
        k = row.get("num_assistant_tokens")
        fixed_k = bool(k) and not row.get("assistant_confidence_threshold")
        # the per-token rate of the whole workload (all accepted / all drafted) where the row has it, not the median run
        alpha = row.get("acceptance_pooled", row.get("acceptance_rate"))
        if alpha is not None and row.get("cost_ratio") is not None and fixed_k:
            row["k"] = k
            row["predicted_speedup"] = predicted_speedup(alpha, k, row["cost_ratio"])
            row["predicted_tokens_per_step"] = expected_tokens_per_step(alpha, k)
        out.append(row)
    return out


def first_difference(a: str, b: str) -> int | None:
    """Index of the first differing character, or None if equal."""
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def lossless_check(target: Path, draft: Path, prompts: list[Prompt], device: str = "CPU", exact: bool = True,
                   num_assistant_tokens: int = 4, max_new_tokens: int = 64) -> list[dict[str, Any]]:
    """Greedy speculative output against greedy target output, prompt by prompt.

    With ``exact=True`` both pipelines use `EXACT_PROPERTIES`; with ``exact=False`` the device defaults, where
    rounding may make texts part at near-ties. Each row says whether the texts are identical and where they part.
    """
    props = EXACT_PROPERTIES if exact else {}
    base = load_pipeline(target, device, **props)
    sd = load_pipeline(target, device, draft_dir=draft, **props)
    plain = generation_config(max_new_tokens)
    assisted = generation_config(max_new_tokens, num_assistant_tokens=num_assistant_tokens)
    rows = []
    for prompt in prompts:
        text = chat_prompt(base, prompt.text)
        reference = base.generate([text], plain).texts[0]
        candidate = sd.generate([text], assisted).texts[0]
        rows.append({"prompt": prompt.id, "settings": "exact (f32)" if exact else "device defaults",
                     "identical": reference == candidate, "first_difference_at_char": first_difference(reference, candidate),
                     "target_text": reference[:60], "speculative_text": candidate[:60]})
    return rows
