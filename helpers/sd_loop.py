"""Speculative decoding written from scratch on two stateful OpenVINO IRs, next to a plain greedy loop.

The optimum-exported ``openvino_model.xml`` is stateful: it takes ``input_ids``, ``attention_mask``, ``position_ids``
and ``beam_idx`` and keeps the KV cache in variable states. One step of the speculative loop:

1. the draft proposes k greedy tokens, one forward per token;
2. the target checks all of them in ONE forward that appends k+1 tokens (the pending token and the k proposals);
3. the longest prefix on which both agree is kept, plus the target's own next token;
4. both KV caches are cut back to the kept tokens (`StatefulLM.trim`).

Invariant between steps: each model has every committed token in its KV cache except the ones in its ``pending`` list
(the target: the last token; the draft: also its own last proposal when all k were accepted, its "catch-up" token).
Greedy and exact arithmetic (`helpers.speculative.EXACT_PROPERTIES`) make the output equal the plain greedy loop's.
Timings are hand-made here (``time.perf_counter`` around each part) because no library runs this loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .conversion import load_errors, read_ir
from .errors import ConfigError, ModelFolderError

MODEL_FILE = "openvino_model.xml"
STATEFUL_INPUTS = ("input_ids", "attention_mask", "position_ids", "beam_idx")
MAX_K = 32  # the same bound as generation.MAX_ASSISTANT_TOKENS


def check_k(k: int, max_k: int = MAX_K) -> int:
    """Return `k` if it is a usable number of draft tokens per step, else raise `ConfigError`."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max_k:
        raise ConfigError(f"k (draft tokens per step) must be an integer between 1 and {max_k}, got {k!r}.")
    return k


class StatefulLM:
    """One stateful OpenVINO LLM: a compiled model, one infer request (reused) and the length of its KV cache.

    `properties` are OpenVINO compile properties (e.g. `helpers.speculative.EXACT_PROPERTIES`); none means the device
    defaults. ``infer_ms``/``infer_calls`` accumulate the time of ``request.infer()`` alone.
    """

    def __init__(self, model_dir: str | Path, device: str = "CPU", properties: dict[str, Any] | None = None) -> None:
        import openvino as ov

        path = Path(model_dir).expanduser() / MODEL_FILE
        if not path.is_file():
            raise ModelFolderError(f"{path} does not exist: pass a folder exported with optimum-intel (openvino_model.xml).")
        model = read_ir(path)
        names = {name for port in model.inputs for name in port.get_names()}
        missing = [name for name in STATEFUL_INPUTS if name not in names]
        if missing or not model.get_sinks():
            raise ModelFolderError(
                f"{path} is not a stateful LLM IR (missing inputs {missing} or KV-cache states). "
                "Export it with optimum-intel's default (stateful) text-generation-with-past task."
            )
        self.model_dir = Path(model_dir)
        self.properties = dict(properties or {})
        with load_errors(self.model_dir):
            self.compiled = ov.Core().compile_model(model, device, self.properties)
        self.request = self.compiled.create_infer_request()
        self.seq_axis = 2  # KV states are [batch, kv_heads, sequence, head_size] (the slicing in trim() assumes it)
        self.past = 0
        self.infer_ms = 0.0
        self.infer_calls = 0
        self._beam_idx = ov.Tensor(_np().zeros(1, dtype=_np().int32))

    def reset(self) -> None:
        """Empty the KV cache and the timers."""
        self.request.reset_state()
        self.past = 0
        self.infer_ms = 0.0
        self.infer_calls = 0

    def forward(self, tokens: Sequence[int]) -> Any:
        """Append `tokens` to the KV cache in one infer call; return the greedy next token after each of them."""
        import openvino as ov

        np = _np()
        n = len(tokens)
        request = self.request
        request.set_tensor("input_ids", ov.Tensor(np.asarray([tokens], dtype=np.int64)))
        request.set_tensor("attention_mask", ov.Tensor(np.ones((1, self.past + n), dtype=np.int64)))
        request.set_tensor("position_ids", ov.Tensor(np.arange(self.past, self.past + n, dtype=np.int64)[None]))
        request.set_tensor("beam_idx", self._beam_idx)
        start = time.perf_counter()
        request.infer()
        self.infer_ms += (time.perf_counter() - start) * 1e3
        self.infer_calls += 1
        self.past += n
        logits = request.get_output_tensor(0).data  # [1, n, vocab], a view: no copy
        return logits[0, -n:].argmax(axis=-1)

    def trim(self, n_tokens: int) -> None:
        """Drop the last `n_tokens` entries of every KV state (what GenAI's stateful pipeline does on rejection)."""
        import openvino as ov

        if n_tokens <= 0:
            return
        if n_tokens > self.past:
            raise ConfigError(f"Cannot trim {n_tokens} tokens from a KV cache of {self.past}.")
        for state in self.request.query_state():
            old = state.state  # a copy of the cache (CPU: dequantized to f32 when the cache is u8)
            end = list(old.shape)
            end[self.seq_axis] -= n_tokens
            # The kept part must be a contiguous copy: in OpenVINO 2026.4 set_state() with a strided view (an ROI
            # tensor) is exact for an f32 cache but silently wrong for the CPU default u8 cache. GenAI copies too.
            try:
                kept = ov.Tensor(_np().ascontiguousarray(old.data[:, :, : end[self.seq_axis]]))
            except (RuntimeError, TypeError, ValueError):  # a type numpy cannot view (bf16): copy with OpenVINO
                kept = ov.Tensor(old.element_type, end)
                ov.Tensor(old, [0] * len(end), end).copy_to(kept)
            state.state = kept
        self.past -= n_tokens

    def state_length(self) -> int:
        """Sequence length of the KV cache as the states hold it (for checks; `past` is the cheap bookkeeping)."""
        lengths = {state.state.shape[self.seq_axis] for state in self.request.query_state()}
        if len(lengths) != 1:
            raise RuntimeError(f"KV states disagree on their length: {sorted(lengths)}")
        return lengths.pop()


def _np() -> Any:
    import numpy

    return numpy


@dataclass
class LoopResult:
    """Tokens and hand-timed parts of one from-scratch generation (times in ms; decode = everything after prefill)."""

    label: str
    tokens: list[int]
    prompt_tokens: int
    k: int = 0
    steps: int = 0  # target forwards after the prefill (plain: one per token; SD: one verify per step)
    draft_calls: int = 0
    drafted: int = 0
    accepted: int = 0
    prefill_ms: float = 0.0
    draft_ms: float = 0.0  # draft forwards, including their argmax
    verify_ms: float = 0.0  # target forwards after the prefill (SD: verify of k+1; plain: one token)
    trim_ms: float = 0.0  # cutting both KV caches back after rejections
    other_ms: float = 0.0  # decode wall - draft - verify - trim: Python bookkeeping
    decode_ms: float = 0.0
    target_infer_ms: float = 0.0  # request.infer() alone, target (decode part)
    draft_infer_ms: float = 0.0
    timeline: list[dict[str, float]] = field(default_factory=list, repr=False)

    @property
    def generated(self) -> int:
        return len(self.tokens)

    @property
    def tokens_per_step(self) -> float:
        """Tokens committed per target forward after the prefill (the first token comes from the prefill)."""
        return (self.generated - 1) / self.steps if self.steps else float("nan")

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.drafted if self.drafted else None

    @property
    def tpot_ms(self) -> float:
        """Decode time per token after the first, as GenAI's TPOT counts it."""
        return self.decode_ms / (self.generated - 1) if self.generated > 1 else float("nan")

    def per_step(self) -> dict[str, float]:
        """Mean ms per step of each part, and the draft's ms per forward."""
        s = max(self.steps, 1)
        return {"draft_ms": self.draft_ms / s, "verify_ms": self.verify_ms / s, "trim_ms": self.trim_ms / s,
                "other_ms": self.other_ms / s, "step_ms": self.decode_ms / s,
                "draft_token_ms": self.draft_ms / self.draft_calls if self.draft_calls else 0.0}

    def row(self) -> dict[str, Any]:
        """One flat table row."""
        row = {"label": self.label, "k": self.k, "generated": self.generated, "steps": self.steps,
               "tokens_per_step": self.tokens_per_step, "acceptance_rate": self.acceptance_rate,
               "tpot_ms": self.tpot_ms, "prefill_ms": self.prefill_ms}
        row.update(self.per_step())
        return row

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("timeline")
        data.update(generated=self.generated, tokens_per_step=self.tokens_per_step,
                    acceptance_rate=self.acceptance_rate, tpot_ms=self.tpot_ms)
        return data


def _finish(tokens: list[int], max_new_tokens: int, eos: frozenset[int]) -> tuple[list[int], bool]:
    """Cut `tokens` at the first end-of-sequence token (kept) or at `max_new_tokens`; say whether generation is over."""
    for i, token in enumerate(tokens[:max_new_tokens]):
        if token in eos:
            return tokens[: i + 1], True
    return tokens[:max_new_tokens], len(tokens) >= max_new_tokens


def greedy_generate(target: StatefulLM, prompt_ids: Sequence[int], max_new_tokens: int = 128,
                    eos_ids: Iterable[int] = ()) -> LoopResult:
    """The reference: prefill, then one target forward per token."""
    eos = frozenset(eos_ids)
    target.reset()
    start = time.perf_counter()
    tokens = [int(target.forward(list(prompt_ids))[-1])]
    result = LoopResult("from-scratch greedy", tokens, len(prompt_ids), prefill_ms=(time.perf_counter() - start) * 1e3)
    target.infer_ms = 0.0
    tokens, done = _finish(tokens, max_new_tokens, eos)
    decode_start = time.perf_counter()
    while not done:
        t0 = time.perf_counter()
        next_token = int(target.forward(tokens[-1:])[0])
        result.verify_ms += (time.perf_counter() - t0) * 1e3
        result.steps += 1
        tokens, done = _finish([*tokens, next_token], max_new_tokens, eos)
    result.decode_ms = (time.perf_counter() - decode_start) * 1e3
    result.other_ms = max(result.decode_ms - result.verify_ms, 0.0)
    result.tokens, result.target_infer_ms = tokens, target.infer_ms
    return result


def speculative_generate(target: StatefulLM, draft: StatefulLM, prompt_ids: Sequence[int], k: int = 3,
                         max_new_tokens: int = 128, eos_ids: Iterable[int] = (), keep_timeline: bool = False) -> LoopResult:
    """Greedy speculative decoding with a fixed k; the output equals `greedy_generate`'s under exact arithmetic."""
    check_k(k)
    eos = frozenset(eos_ids)
    target.reset()
    draft.reset()
    start = time.perf_counter()
    tokens = [int(target.forward(list(prompt_ids))[-1])]
    draft.forward(list(prompt_ids))
    result = LoopResult("from-scratch SD", tokens, len(prompt_ids), k=k, prefill_ms=(time.perf_counter() - start) * 1e3)
    target.infer_ms = draft.infer_ms = 0.0
    draft_pending = tokens[-1:]  # tokens the draft has not seen yet (1, or 2 after a fully accepted step)
    tokens, done = _finish(tokens, max_new_tokens, eos)
    decode_start = time.perf_counter()
    while not done:
        k_now = min(k, max_new_tokens - len(tokens) - 1)  # no drafting past the end (GenAI does the same)
        t0 = time.perf_counter()
        proposal: list[int] = []
        for _ in range(k_now):
            proposal.append(int(draft.forward(draft_pending)[-1]))
            draft_pending = proposal[-1:]
        t1 = time.perf_counter()
        checked = [int(t) for t in target.forward([tokens[-1], *proposal])]  # k_now + 1 positions in one call
        t2 = time.perf_counter()
        n = 0
        while n < k_now and proposal[n] == checked[n]:
            n += 1
        new = [*proposal[:n], checked[n]]
        target.trim(k_now - n)  # the target saw all k_now proposals; keep n
        if k_now == 0:  # the last token: a plain target step
            draft_pending = [*draft_pending, checked[0]]
        elif n == k_now:
            draft_pending = [proposal[-1], checked[n]]  # the draft never fed its last proposal: catch up next step
        else:
            draft.trim(k_now - 1 - n)  # the draft fed proposals 1..k_now-1; keep n of them
            draft_pending = [checked[n]]
        t3 = time.perf_counter()
        result.draft_ms += (t1 - t0) * 1e3
        result.verify_ms += (t2 - t1) * 1e3
        result.trim_ms += (t3 - t2) * 1e3
        result.steps += 1
        result.draft_calls += k_now
        result.drafted += k_now
        result.accepted += n
        if keep_timeline:
            result.timeline.append({"draft_ms": (t1 - t0) * 1e3, "verify_ms": (t2 - t1) * 1e3,
                                    "trim_ms": (t3 - t2) * 1e3, "accepted": n, "k": k_now})
        tokens, done = _finish(tokens + new, max_new_tokens, eos)
    result.decode_ms = (time.perf_counter() - decode_start) * 1e3
    result.other_ms = max(result.decode_ms - result.draft_ms - result.verify_ms - result.trim_ms, 0.0)
    result.tokens, result.target_infer_ms, result.draft_infer_ms = tokens, target.infer_ms, draft.infer_ms
    return result


def chat_token_ids(model_dir: str | Path, user_text: str, enable_thinking: bool = False) -> list[int]:
    """Token ids of one chat-formatted user turn, rendered and encoded as the benchmarks do (`generation.chat_prompt`)."""
    import openvino_genai as og

    tokenizer = og.Tokenizer(str(model_dir))
    text = tokenizer.apply_chat_template([{"role": "user", "content": user_text}], add_generation_prompt=True,
                                         extra_context={"enable_thinking": enable_thinking})
    return [int(t) for t in tokenizer.encode(text).input_ids.data[0]]


def eos_token_ids(model_dir: str | Path) -> set[int]:
    """End-of-sequence ids the pipeline stops on: the tokenizer's and those in generation_config.json."""
    import json

    import openvino_genai as og

    ids = {int(og.Tokenizer(str(model_dir)).get_eos_token_id())}
    config = Path(model_dir) / "generation_config.json"
    if config.is_file():
        eos = json.loads(config.read_text()).get("eos_token_id")
        ids.update([eos] if isinstance(eos, int) else (eos or []))
    return ids


def decode(model_dir: str | Path, tokens: Sequence[int]) -> str:
    """Text of `tokens` (special tokens skipped)."""
    import openvino_genai as og

    return og.Tokenizer(str(model_dir)).decode(list(tokens), skip_special_tokens=True)
