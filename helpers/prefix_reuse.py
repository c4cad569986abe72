"""Does a pipeline's prefix cache hold the tokens the pipeline itself generated?

An agent's next call re-sends the conversation, which now ends with the model's own last answer. A plain paged-attention
pipeline keeps the KV blocks it wrote while decoding, so that answer costs nothing to read again. This module measures,
for the plain pipeline and for the speculative ones (prompt lookup, a draft), the prefill of two follow-up prompts on
the same pipeline:

- "own answer": the first prompt, the pipeline's answer to it, and a new user turn;
- "control": the first prompt and a new user turn (only the prompt can come from the cache).

With the answer reused, both cost about the same; without, "own answer" pays a prefill of the whole answer.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .settings import AGENT, BENCH

MODES = ("plain", "prompt lookup", "draft")
FOLLOW_UP = "Thanks. Now make it shorter."
CONTROL = "Something else: list three Qwen3 model sizes."


@dataclass(frozen=True)
class ReuseRun:
    """One pipeline, fresh: its first answer, then the two follow-up prompts (one new token each)."""

    mode: str
    repeat: int
    first_prompt_tokens: int
    first_ttft_ms: float
    answer_tokens: int
    own_answer_prompt_tokens: int
    own_answer_ttft_ms: float
    control_prompt_tokens: int
    control_ttft_ms: float


def request() -> str:
    """The agent's kind of request: notes to copy from, code to write (what prompt lookup and drafts guess well)."""
    from .agent_tools import OfflineSearchTool

    notes = OfflineSearchTool().forward("Qwen3 model sizes and context lengths")
    return "Write Python that builds a list of slide dictionaries (title, bullets) from these notes:\n" + notes


def conversation(pipe: Any, turns: list[dict[str, str]]) -> str:
    """`turns` through the model's chat template, ready for the assistant's reply (as the agent renders its calls)."""
    return pipe.get_tokenizer().apply_chat_template(turns, add_generation_prompt=True)


FOLLOW_UP_ROOM = 64  # tokens of the follow-up question and chat markup around the repeated answer


def measure_prefix_reuse(target_dir: str | Path, device: str = "CPU", draft_dir: str | Path | None = None,
                         answer_tokens: int = BENCH.reuse_answer_tokens, repeats: int = BENCH.reuse_repeats,
                         lookup_k: int = BENCH.reuse_lookup_tokens, draft_k: int = AGENT.num_assistant_tokens,
                         progress: bool = True) -> list[ReuseRun]:
    """Each mode (plain; prompt lookup; the draft, if `draft_dir`) on a fresh pipeline with prefix caching, `repeats`
    times, the order rotating every repeat. Greedy; the speculative modes keep their defaults otherwise."""
    import openvino_genai as ov_genai
    from tqdm.auto import tqdm

    from .benchmark import measure
    from .generation import check_within_context, generation_config, load_pipeline

    if answer_tokens < 1 or repeats < 1:
        raise ConfigError(f"answer_tokens and repeats must be at least 1, got {answer_tokens} and {repeats}.")
    # the longest prompt (question, answer, follow-up) must fit the context: checked with the tokenizer alone
    tokenizer = ov_genai.Tokenizer(str(target_dir))
    question = tokenizer.apply_chat_template([{"role": "user", "content": request()}], add_generation_prompt=True)
    check_within_context(target_dir, int(tokenizer.encode(question).input_ids.get_shape()[1]) + answer_tokens
                         + FOLLOW_UP_ROOM, "The prefix-reuse conversation (the question, an answer of --answer-tokens "
                         "and the follow-up)", "Lower --answer-tokens: the follow-up prompt repeats the whole answer.")
    modes = [m for m in MODES if m != "draft" or draft_dir is not None]
    runs: list[ReuseRun] = []
    with tqdm(total=repeats * len(modes), desc="prefix reuse", disable=not progress, leave=False) as bar:
        for repeat in range(repeats):
            shift = repeat % len(modes)
            for mode in modes[shift:] + modes[:shift]:
                pipe = load_pipeline(target_dir, device, draft_dir=draft_dir if mode == "draft" else None,
                                     prompt_lookup=mode == "prompt lookup", prefix_caching=True)
                knobs = {"plain": {}, "draft": {"num_assistant_tokens": draft_k},
                         "prompt lookup": {"num_assistant_tokens": lookup_k, "max_ngram_size": BENCH.max_ngram_size}}[mode]
                asked = {"role": "user", "content": request()}
                one_token = generation_config(1, **knobs)
                # untimed: first-inference allocations would inflate the first prompt's prefill, the unit of the share
                measure(pipe, conversation(pipe, [{"role": "user", "content": "Hello"}]), one_token)
                first = measure(pipe, conversation(pipe, [asked]), generation_config(answer_tokens, **knobs), label=mode)
                own = measure(pipe, conversation(pipe, [asked, {"role": "assistant", "content": first.text},
                                                        {"role": "user", "content": FOLLOW_UP}]), one_token, label=mode)
                control = measure(pipe, conversation(pipe, [asked, {"role": "user", "content": CONTROL}]), one_token,
                                  label=mode)
                runs.append(ReuseRun(mode, repeat, first.input_tokens, first.ttft_ms, first.generated_tokens,
                                     own.input_tokens, own.ttft_ms, control.input_tokens, control.ttft_ms))
                del pipe
                bar.update()
    return runs


def prefilled_again(run: ReuseRun) -> float:
    """How much of its own answer the pipeline prefilled again: the "own answer" prompt's extra prefill over the
    control's, in units of prefilling the answer from scratch (at the first prompt's per-token rate). About 0 when the
    answer's KV blocks were reused, about 1 when they were not; hardware-independent."""
    per_token = run.first_ttft_ms / max(run.first_prompt_tokens, 1)
    return (run.own_answer_ttft_ms - run.control_ttft_ms) / (max(run.answer_tokens, 1) * per_token)


def reuse_summary(runs: list[ReuseRun]) -> list[dict[str, Any]]:
    """Per mode, medians: the two follow-up prefills and the share of its own answer the pipeline prefilled again."""
    rows = []
    for mode in dict.fromkeys(run.mode for run in runs):
        mine = [run for run in runs if run.mode == mode]
        rows.append({"mode": mode, "runs": len(mine), "answer_tokens": statistics.median(r.answer_tokens for r in mine),
                     "own_answer_ttft_ms": statistics.median(r.own_answer_ttft_ms for r in mine),
                     "control_ttft_ms": statistics.median(r.control_ttft_ms for r in mine),
                     "answer_prefilled_again": statistics.median(prefilled_again(r) for r in mine)})
    return rows


def reuse_record(runs: list[ReuseRun], settings: dict[str, Any]) -> dict[str, Any]:
    """Everything for a JSON file: settings, every run, the summary."""
    from .benchmark import machine_description

    return {"settings": settings, "machine": machine_description(), "runs": [asdict(run) for run in runs],
            "summary": reuse_summary(runs)}
