"""OpenVINO GenAI pipelines: loading (with or without a draft), chat prompts and generation configs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conversion import check_ov_model_dir, load_errors
from .conversion import last_line as last_line  # re-exported: it lived here
from .devices import check_device
from .errors import ConfigError, TokenizerMismatchError

# Text that exercises code, digits, unicode and the chat/think markup: two tokenizers that agree on it agree in practice.
TOKENIZER_PROBE = (
    "<|im_start|>user\nDef f(x): return x**2 + 3.14 # café 你好 🙂\n<|im_end|>\n<think>\nok\n</think>\n"
    "<tool_call>{\"name\": \"web_search\"}</tool_call>"
)
MAX_ASSISTANT_TOKENS = 32
UNLIMITED_BATCHED_TOKENS = 2**31 - 1


def check_same_tokenizer(target_dir: str | Path, draft_dir: str | Path) -> None:
    """Raise `TokenizerMismatchError` unless draft and target tokenize (and end) text the same way."""
    import openvino_genai as og

    target_tok = og.Tokenizer(str(target_dir))
    draft_tok = og.Tokenizer(str(draft_dir))
    target_ids = target_tok.encode(TOKENIZER_PROBE).input_ids.data.tolist()
    draft_ids = draft_tok.encode(TOKENIZER_PROBE).input_ids.data.tolist()
    problems = []
    if target_ids != draft_ids:
        problems.append("they split the same text into different token ids")
    if target_tok.get_eos_token_id() != draft_tok.get_eos_token_id():
        problems.append(f"end-of-sequence ids differ ({target_tok.get_eos_token_id()} vs {draft_tok.get_eos_token_id()})")
    if problems:
        raise TokenizerMismatchError(
            f"Draft {draft_dir} cannot assist target {target_dir}: {'; '.join(problems)}. "
            "Speculative decoding needs a draft from the same model family (same tokenizer), e.g. Qwen3-0.6B for Qwen3-8B."
        )


def scheduler_config(prefix_caching: bool, cache_size_gb: int | None = None) -> Any:
    """A continuous-batching ``SchedulerConfig`` that sets prefix caching (and, if given, the KV-cache pool in GB).

    The prompt is still processed in one piece (no 256-token chunks, the class default), as LLMPipeline does when it
    picks the scheduler itself.
    """
    import openvino_genai as og

    config = og.SchedulerConfig()
    config.enable_prefix_caching = prefix_caching
    config.max_num_batched_tokens = UNLIMITED_BATCHED_TOKENS
    if cache_size_gb is not None:
        config.cache_size = cache_size_gb
    return config


def load_pipeline(
    target_dir: str | Path,
    device: str = "CPU",
    draft_dir: str | Path | None = None,
    draft_device: str | None = None,
    prompt_lookup: bool = False,
    prefix_caching: bool | None = False,
    cache_size_gb: int | None = None,
    **properties: Any,
) -> Any:
    """An ``openvino_genai.LLMPipeline`` for `target_dir`, optionally assisted by a draft model or by prompt lookup.

    Folders, device and tokenizers are checked first, so mistakes surface as one clear sentence. `properties` are
    OpenVINO compile properties (e.g. ``DYNAMIC_QUANTIZATION_GROUP_SIZE=0``); they apply to the draft too.

    `prefix_caching`: keep the KV cache of earlier requests and reuse it for a prompt that starts the same way.
    OpenVINO GenAI's paged-attention pipelines (the default on CPU, and every speculative one) turn it on by default,
    which makes a benchmark's second run of a prompt skip its prefill; so it is off (False) for single-prompt
    benchmarks unless asked for. True suits multi-turn work such as an agent (each call re-sends the growing
    conversation). None leaves the library's default (and any ``scheduler_config`` in `properties`) untouched.
    `cache_size_gb` sizes the KV-cache pool of the paged-attention scheduler.
    """
    import openvino_genai as og

    if draft_dir is not None and prompt_lookup:
        raise ConfigError("Use either a draft model or prompt lookup, not both.")
    if prefix_caching is not None or cache_size_gb is not None:  # a pool size alone keeps the default (caching on)
        properties.setdefault("scheduler_config", scheduler_config(prefix_caching is not False, cache_size_gb))
    target_dir = check_ov_model_dir(target_dir)
    device = check_device(device)
    if draft_dir is not None:
        draft_dir = check_ov_model_dir(draft_dir)
        with load_errors(draft_dir):
            check_same_tokenizer(target_dir, draft_dir)
            draft = og.draft_model(str(draft_dir), check_device(draft_device or device), **properties)
        with load_errors(target_dir, draft_dir):
            return og.LLMPipeline(str(target_dir), device, draft_model=draft, **properties)
    with load_errors(target_dir):
        if prompt_lookup:
            return og.LLMPipeline(str(target_dir), device, prompt_lookup=True, **properties)
        return og.LLMPipeline(str(target_dir), device, **properties)


def context_length(model_dir: str | Path) -> int | None:
    """The model's context in tokens (``max_position_embeddings`` in its config.json), or None if not recorded."""
    try:
        value = json.loads((Path(model_dir) / "config.json").read_text()).get("max_position_embeddings")
        return int(value) if value else None
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def count_tokens(pipe: Any, text: str) -> int:
    """Tokens of `text` (already chat-formatted) with the pipeline's own tokenizer."""
    return int(pipe.get_tokenizer().encode(text).input_ids.get_shape()[1])


def check_prompt_fits(pipe: Any, text: str, max_new_tokens: int, limit: int | None, what: str = "The prompt",
                      fix: str = "Shorten the prompt or lower max_new_tokens (--max-new-tokens).") -> int:
    """Refuse, before any generation, a prompt that with `max_new_tokens` does not fit the model's context `limit`.

    A prompt past the context is not an error to OpenVINO GenAI: it runs (a 192k-token prompt prefilled for minutes,
    deaf to Ctrl-C) and answers from positions the model never learnt. Returns the prompt's token count."""
    tokens = count_tokens(pipe, text)
    if limit and tokens + max_new_tokens > limit:
        raise ConfigError(f"{what} is {tokens:,} tokens; with max_new_tokens {max_new_tokens} that is "
                          f"{tokens + max_new_tokens:,}, more than the model's context of {limit:,} tokens. {fix}")
    return tokens


def check_within_context(model_dir: str | Path, tokens: int, what: str, fix: str) -> None:
    """Refuse, before any work, a job whose sequences need `tokens` positions, more than the model's context (past
    it, OpenVINO allocates for the whole length, tens of GB, and the model answers from positions it never learnt)."""
    limit = context_length(model_dir)
    if limit and tokens > limit:
        raise ConfigError(f"{what} needs {tokens:,} tokens, more than the model's context of {limit:,}. {fix}")


def generate_interruptibly(pipe: Any, inputs: Any, config: Any, streamer: Callable[[str], Any] | None = None) -> Any:
    """``pipe.generate(inputs, config, streamer)`` that Ctrl-C stops at the next token, then raises KeyboardInterrupt.

    OpenVINO GenAI runs the streamer outside the main thread and holds the main thread in C++ until generation ends,
    so Python cannot deliver Ctrl-C there. Here generation runs in a worker thread while the main thread waits in
    short joins (where Ctrl-C does arrive) and asks the streamer to stop. A prompt still being prefilled stops at
    its first token: that is why over-long prompts are refused up front (`check_prompt_fits`).
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():  # only the main thread ever receives Ctrl-C
        return pipe.generate(inputs, config, interruptible_streamer(stop, streamer))
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = pipe.generate(inputs, config, interruptible_streamer(stop, streamer))
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="openvino-genai-generate", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        stop.set()
        worker.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def interruptible_streamer(stop: threading.Event, streamer: Callable[[str], Any] | None = None) -> Callable[[str], Any]:
    """A streamer that stops generation once `stop` is set, else defers to `streamer` (if any)."""
    import openvino_genai as og

    def stream(subword: str) -> Any:
        if stop.is_set():
            return og.StreamingStatus.STOP
        return streamer(subword) if streamer is not None else og.StreamingStatus.RUNNING

    return stream


def chat_prompt(pipe: Any, user_text: str, enable_thinking: bool = False, system: str | None = None,
                tools: list[dict[str, Any]] | None = None) -> str:
    """Render one user turn with the model's own chat template (Qwen3 thinking on/off via ``enable_thinking``)."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user_text}]
    tokenizer = pipe.get_tokenizer()
    kwargs: dict[str, Any] = {"add_generation_prompt": True, "extra_context": {"enable_thinking": enable_thinking}}
    if tools:
        kwargs["tools"] = tools
    return tokenizer.apply_chat_template(messages, **kwargs)


THRESHOLD_LOGPROBS = 1  # log-probs a confidence threshold needs under greedy sampling (see generation_config)


def generation_config(
    max_new_tokens: int = 128,
    num_assistant_tokens: int | None = None,
    assistant_confidence_threshold: float | None = None,
    max_ngram_size: int | None = None,
    ignore_eos: bool = False,
    logprobs: int = 0,
    stop_strings: set[str] | None = None,
) -> Any:
    """A greedy ``GenerationConfig``; speculative knobs are validated here rather than deep in the pipeline."""
    import openvino_genai as og

    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be at least 1, got {max_new_tokens}.")
    if num_assistant_tokens is not None and assistant_confidence_threshold is not None:
        raise ConfigError("Set num_assistant_tokens (-k) or assistant_confidence_threshold (--confidence-threshold), "
                          "not both (OpenVINO GenAI uses one).")
    if num_assistant_tokens is not None and not 1 <= num_assistant_tokens <= MAX_ASSISTANT_TOKENS:
        raise ConfigError(f"num_assistant_tokens (-k) must be between 1 and {MAX_ASSISTANT_TOKENS}, got "
                          f"{num_assistant_tokens}.")
    if assistant_confidence_threshold is not None and not 0.0 < assistant_confidence_threshold < 1.0:
        raise ConfigError(
            f"assistant_confidence_threshold (--confidence-threshold) must be between 0 and 1 (exclusive), got "
            f"{assistant_confidence_threshold}."
        )
    config = og.GenerationConfig()
    config.max_new_tokens = max_new_tokens
    config.do_sample = False
    config.ignore_eos = ignore_eos
    config.apply_chat_template = False  # prompts are rendered by chat_prompt(), so thinking on/off is explicit
    if num_assistant_tokens is not None:
        config.num_assistant_tokens = num_assistant_tokens
    if assistant_confidence_threshold is not None:
        config.assistant_confidence_threshold = assistant_confidence_threshold
        # Greedy sampling computes a token's log-probability only when log-probs are requested; otherwise it reports 0,
        # and OpenVINO GenAI's sampler stops drafting on a log-prob of exactly 0 (sampler.cpp, register_new_token). So
        # without this the draft proposes one token per step whatever the threshold is.
        logprobs = max(logprobs, THRESHOLD_LOGPROBS)
    if max_ngram_size is not None:
        config.max_ngram_size = max_ngram_size
    if logprobs:
        config.logprobs = logprobs
    if stop_strings:
        config.stop_strings = set(stop_strings)
    return config


def quick_generate(model_dir: str | Path, prompt: str = "Write a Python function that reverses a string.",
                   device: str = "CPU", max_new_tokens: int = 32, stream: bool = True) -> str:
    """Load a converted model and answer one chat prompt: the smoke test after a conversion."""
    import openvino_genai as og

    config = generation_config(max_new_tokens)
    pipe = load_pipeline(model_dir, device)
    text = chat_prompt(pipe, prompt)
    check_prompt_fits(pipe, text, max_new_tokens, context_length(model_dir))

    def printer(subword: str) -> og.StreamingStatus:
        print(subword, end="", flush=True)
        return og.StreamingStatus.RUNNING

    result = generate_interruptibly(pipe, [text], config, printer if stream else None)
    if stream:
        print()
    return result.texts[0]
