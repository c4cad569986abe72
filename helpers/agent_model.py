"""The smolagents model adapter: `OpenVINOGenAIModel` runs an OpenVINO GenAI ``LLMPipeline`` in this process (with or
without a draft) behind smolagents' ``Model`` interface.

It renders the conversation with the model's own chat template (Qwen3 thinking on or off), stops at the agent's stop
sequences, streams tokens, keeps the thinking out of the answer, and records OpenVINO GenAI's measurements of every
call (`ModelCall`). It never raises on odd model output: the agent's own parser reports it to the model, which retries.

smolagents itself is light (no torch or OpenVINO), so it is imported at module level; OpenVINO is imported lazily.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smolagents import Tool
from smolagents.models import (
    ChatMessage,
    ChatMessageStreamDelta,
    ChatMessageToolCall,
    ChatMessageToolCallFunction,
    ChatMessageToolCallStreamDelta,
    MessageRole,
    Model,
    parse_json_if_needed,
    remove_content_after_stop_sequences,
)
from smolagents.monitoring import TokenUsage

from .benchmark import RunRecord, measure
from .errors import ConfigError
from .settings import AGENT

BASELINE_LABEL = "target alone"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
CONTEXT_MARGIN = 16  # tokens kept free so a prompt at the limit still gets an answer


# ---------------------------------------------------------------------------------------------------------------------
# Text handling: thinking, stop sequences, tool calls


def split_thinking(text: str, prompt_opens_thinking: bool = False) -> tuple[str, str]:
    """(thinking, answer) of one generation. Without a ``<think>`` block everything is answer.

    `prompt_opens_thinking` is for chat templates that put ``<think>`` in the prompt, so the output starts inside it.
    Thinking cut off by max_new_tokens (no ``</think>``) leaves an empty answer.
    """
    head = text.lstrip()
    if head.startswith(THINK_OPEN):
        body = head[len(THINK_OPEN):]
    elif prompt_opens_thinking:
        body = text
    else:
        return "", text
    if THINK_CLOSE not in body:
        return body.strip(), ""
    thinking, answer = body.split(THINK_CLOSE, 1)
    return thinking.strip(), answer.lstrip()


def _partial_marker_length(text: str, markers: Sequence[str]) -> int:
    """Length of the longest end of `text` that could be the start of one of `markers` (text to hold back)."""
    longest = 0
    for marker in markers:
        for n in range(min(len(marker) - 1, len(text)), longest, -1):
            if text.endswith(marker[:n]):
                longest = n
                break
    return longest


class AnswerStream:
    """Splits streamed text into thinking and answer deltas and cuts the answer at the first stop sequence.

    Text that might be the beginning of ``</think>`` or of a stop sequence is held back until the next chunk decides,
    so a reader never sees half a stop sequence. Stop sequences count in the answer only: a model that reasons about
    "Observation:" inside its thinking is not cut short.
    """

    def __init__(self, stop_sequences: Sequence[str] | None = None, prompt_opens_thinking: bool = False) -> None:
        self.stops = [s for s in (stop_sequences or []) if s]
        self.prompt_opens_thinking = prompt_opens_thinking
        self.raw = ""
        self.thinking = ""
        self.answer = ""
        self.stop_hit: str | None = None
        self._sent_thinking = 0
        self._sent_answer = 0

    @property
    def stopped(self) -> bool:
        return self.stop_hit is not None

    def feed(self, chunk: str, final: bool = False) -> tuple[str, str]:
        """Add a chunk; returns the (thinking, answer) text that is now safe to show."""
        if self.stopped:
            return "", ""
        self.raw += chunk
        head = self.raw.lstrip()
        if not final and not self.prompt_opens_thinking and len(head) < len(THINK_OPEN) and THINK_OPEN.startswith(head):
            return "", ""  # cannot tell yet whether a <think> block opens
        thinking, answer = split_thinking(self.raw, self.prompt_opens_thinking)
        thinking_open = (self.prompt_opens_thinking or head.startswith(THINK_OPEN)) and THINK_CLOSE not in self.raw
        if thinking_open and not final:
            # Hold back a possible "</think>" start and the whitespace before it: the final thinking is stripped.
            thinking = thinking[: len(thinking) - _partial_marker_length(thinking, [THINK_CLOSE])].rstrip()
        hits = {stop: answer.find(stop) for stop in self.stops if stop in answer}
        if hits:
            self.stop_hit = min(hits, key=lambda s: hits[s])
            answer = answer[: hits[self.stop_hit]]
        elif not final:
            answer = answer[: len(answer) - _partial_marker_length(answer, self.stops)]
        self.thinking, self.answer = thinking, answer
        new_thinking, new_answer = thinking[self._sent_thinking:], answer[self._sent_answer:]
        self._sent_thinking, self._sent_answer = len(thinking), len(answer)
        return new_thinking, new_answer

    def finish(self) -> tuple[str, str]:
        """Flush what was held back at the end of generation."""
        return self.feed("", final=True)


_TOOL_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def extract_tool_calls(text: str) -> list[ChatMessageToolCall]:
    """Qwen-style ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks as smolagents tool calls.

    Malformed blocks are skipped, not raised: with no call found, smolagents' own parser reads the text and, if that
    fails too, tells the model what was wrong so it can try again.
    """
    calls = []
    for body in _TOOL_CALL_BLOCK.findall(text):
        try:
            data = json.loads(body)
        except ValueError:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
            continue
        arguments = parse_json_if_needed(data.get("arguments", {}))
        calls.append(ChatMessageToolCall(id=f"call_{uuid.uuid4().hex[:12]}", type="function",
                                         function=ChatMessageToolCallFunction(name=data["name"], arguments=arguments)))
    return calls


# ---------------------------------------------------------------------------------------------------------------------
# The model


@dataclass
class ModelCall:
    """One generation by the agent's model: OpenVINO GenAI's measurements and what became of the text."""

    index: int
    run: RunRecord
    thinking: str
    answer: str
    stop: str | None
    streamed: bool
    step: int | None = None  # the agent step that made the call (set by `run_agent`)

    def row(self) -> dict[str, Any]:
        """A flat row for tables and the JSON run log."""
        return {
            "call": self.index,
            "step": self.step,
            "label": self.run.label,
            "input_tokens": self.run.input_tokens,
            "output_tokens": self.run.generated_tokens,
            "ttft_ms": self.run.ttft_ms,
            "tpot_ms": self.run.tpot_ms,
            "tokens_per_s": self.run.throughput_tps,
            "acceptance_rate": self.run.acceptance_rate,
            "accepted_tokens": self.run.accepted_tokens,
            "draft_tokens": self.run.draft_tokens,
            "stopped_at": self.stop,
            "thinking_chars": len(self.thinking),
            "streamed": self.streamed,
        }


def _text_content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # smolagents' structured content: keep the text parts
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


class OpenVINOGenAIModel(Model):
    """A smolagents model that generates with an OpenVINO GenAI ``LLMPipeline`` in this process.

    Build it with `from_folders` (which checks the folders and the draft's tokenizer), or pass a loaded pipeline.
    With a draft, each call uses speculative decoding with `num_assistant_tokens` (default 3) or
    `assistant_confidence_threshold`. Every call is appended to `calls` with its measurements.
    """

    def __init__(
        self,
        pipe: Any,
        *,
        max_new_tokens: int = 1024,
        enable_thinking: bool = False,
        speculative: bool = False,
        prompt_lookup: bool = False,
        max_ngram_size: int | None = None,
        num_assistant_tokens: int | None = None,
        assistant_confidence_threshold: float | None = None,
        label: str | None = None,
        context_length: int | None = None,
        on_thinking: Callable[[str], None] | None = None,
        model_id: str = "openvino-genai",
    ) -> None:
        super().__init__(flatten_messages_as_text=True, model_id=model_id)
        if (num_assistant_tokens or assistant_confidence_threshold) and not (speculative or prompt_lookup):
            raise ConfigError("num_assistant_tokens / assistant_confidence_threshold need a draft model or prompt "
                              "lookup: load the pipeline with a draft (from_folders(..., draft_dir=...)) or drop them.")
        if prompt_lookup and num_assistant_tokens is None:
            num_assistant_tokens = AGENT.num_assistant_tokens
        if speculative and num_assistant_tokens is None and assistant_confidence_threshold is None:
            num_assistant_tokens = AGENT.num_assistant_tokens
        self.pipe = pipe
        self.max_new_tokens = max_new_tokens
        self.enable_thinking = enable_thinking
        self.speculative = speculative
        self.prompt_lookup = prompt_lookup
        self.max_ngram_size = max_ngram_size if prompt_lookup else None
        self.num_assistant_tokens = num_assistant_tokens
        self.assistant_confidence_threshold = assistant_confidence_threshold
        self.context_length = context_length
        self.on_thinking = on_thinking
        if label is None:
            label = BASELINE_LABEL
            if speculative:
                label = (f"draft k={num_assistant_tokens}" if num_assistant_tokens is not None
                         else f"draft threshold={assistant_confidence_threshold:g}")
            elif prompt_lookup:
                label = f"prompt lookup k={num_assistant_tokens}"
        self.label = label
        self.calls: list[ModelCall] = []
        self._validate_config()

    @classmethod
    def from_folders(cls, target_dir: str | Path, device: str = "CPU", draft_dir: str | Path | None = None, *,
                     properties: dict[str, Any] | None = None, prefix_caching: bool = True,
                     **kwargs: Any) -> OpenVINOGenAIModel:
        """Load the target (and draft) with `generation.load_pipeline`; `kwargs` go to the constructor.

        Prefix caching is on by default, with or without a draft: every agent step re-sends the whole conversation,
        and reusing its KV cache saves most of the prefill. Keeping it the same for both pipelines means a comparison
        measures the draft, not the cache.
        """
        from .generation import context_length, load_pipeline

        pipe = load_pipeline(target_dir, device, draft_dir=draft_dir, prefix_caching=prefix_caching, **(properties or {}))
        kwargs.setdefault("context_length", context_length(target_dir))
        return cls(pipe, speculative=draft_dir is not None, **kwargs)

    def _validate_config(self) -> None:
        self.generation_config(self.max_new_tokens)  # raises ConfigError now rather than at the first agent step

    def generation_config(self, max_new_tokens: int, stop_sequences: Sequence[str] | None = None) -> Any:
        """The GenerationConfig of one call. Native stop strings only without thinking (they would fire inside it)."""
        from .generation import generation_config

        native_stops = set(stop_sequences or []) if not self.enable_thinking else None
        config = generation_config(max_new_tokens, num_assistant_tokens=self.num_assistant_tokens,
                                   assistant_confidence_threshold=self.assistant_confidence_threshold,
                                   max_ngram_size=self.max_ngram_size,
                                   stop_strings=native_stops or None)
        if native_stops:
            config.include_stop_str_in_output = True  # so `AnswerStream` sees (and records) the stop, then trims it
        return config

    def render_prompt(self, messages: list[ChatMessage | dict], tools_to_call_from: list[Tool] | None = None) -> str:
        """The conversation as the model's chat template renders it (tools in the template's own format)."""
        kwargs = self._prepare_completion_kwargs(messages=messages, tools_to_call_from=tools_to_call_from, tool_choice=None)
        history = [{"role": str(getattr(m["role"], "value", m["role"])), "content": _text_content(m["content"])}
                   for m in kwargs["messages"]]
        return self.pipe.get_tokenizer().apply_chat_template(
            history, add_generation_prompt=True, tools=kwargs.get("tools"),
            extra_context={"enable_thinking": self.enable_thinking},
        )

    def _new_tokens_budget(self, prompt: str) -> int:
        if not self.context_length:
            return self.max_new_tokens
        prompt_tokens = int(self.pipe.get_tokenizer().encode(prompt).input_ids.get_shape()[1])
        room = self.context_length - prompt_tokens - CONTEXT_MARGIN
        if room < 1:
            raise ConfigError(
                f"The agent's conversation is {prompt_tokens} tokens, the model's context is {self.context_length}. "
                "Lower max_steps, keep tool outputs short, or use a model with a longer context."
            )
        return min(self.max_new_tokens, room)

    def _generate(self, messages: list[ChatMessage | dict], stop_sequences: list[str] | None,
                  tools_to_call_from: list[Tool] | None, on_answer: Callable[[str], None] | None,
                  cancel: threading.Event | None = None) -> ChatMessage:
        import openvino_genai as og

        stop_sequences = [s for s in (stop_sequences or []) if s]  # an empty stop string would match everywhere
        prompt = self.render_prompt(messages, tools_to_call_from)
        config = self.generation_config(self._new_tokens_budget(prompt), stop_sequences)
        stream = AnswerStream(stop_sequences, prompt_opens_thinking=prompt.rstrip().endswith(THINK_OPEN))

        def streamer(subword: str) -> Any:
            thinking, answer = stream.feed(subword)
            if thinking and self.on_thinking:
                self.on_thinking(thinking)
            if answer and on_answer:
                on_answer(answer)
            if stream.stopped or (cancel is not None and cancel.is_set()):
                return og.StreamingStatus.STOP
            return og.StreamingStatus.RUNNING

        index = len(self.calls)
        record = measure(self.pipe, prompt, config, label=self.label, prompt_id=f"call{index}", streamer=streamer)
        thinking, answer = stream.finish()
        if thinking and self.on_thinking:
            self.on_thinking(thinking)
        if answer and on_answer:
            on_answer(answer)
        content = remove_content_after_stop_sequences(stream.answer, stop_sequences) or ""
        self.calls.append(ModelCall(index=index, run=record, thinking=stream.thinking, answer=content,
                                    stop=stream.stop_hit, streamed=on_answer is not None))
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            content=content,
            tool_calls=(extract_tool_calls(content) or None) if tools_to_call_from else None,
            raw={"text": stream.raw, "thinking": stream.thinking, "prompt_chars": len(prompt)},
            token_usage=TokenUsage(input_tokens=record.input_tokens, output_tokens=record.generated_tokens),
        )

    def generate(self, messages: list[ChatMessage | dict], stop_sequences: list[str] | None = None,
                 response_format: dict[str, str] | None = None, tools_to_call_from: list[Tool] | None = None,
                 **kwargs: Any) -> ChatMessage:
        """One full answer (smolagents calls this for every agent step unless streaming)."""
        if response_format is not None:
            raise ConfigError("Structured outputs (response_format) are not supported by this model; "
                              "build the CodeAgent with use_structured_outputs_internally=False.")
        return self._generate(messages, stop_sequences, tools_to_call_from, on_answer=None)

    def generate_stream(self, messages: list[ChatMessage | dict], stop_sequences: list[str] | None = None,
                        response_format: dict[str, str] | None = None, tools_to_call_from: list[Tool] | None = None,
                        **kwargs: Any) -> Generator[ChatMessageStreamDelta]:
        """Yield the answer as it is generated; generation runs in a worker thread that feeds a queue.

        The last delta carries the token usage (and parsed tool calls). Closing the generator early stops generation.
        """
        if response_format is not None:
            raise ConfigError("Structured outputs (response_format) are not supported by this model.")
        chunks: queue.Queue[str | None] = queue.Queue()
        outcome: dict[str, Any] = {}
        cancel = threading.Event()

        def work() -> None:
            try:
                outcome["message"] = self._generate(messages, stop_sequences, tools_to_call_from, chunks.put, cancel)
            except BaseException as exc:  # handed to the consumer below
                outcome["error"] = exc
            finally:
                chunks.put(None)

        worker = threading.Thread(target=work, name="openvino-genai-generate", daemon=True)
        worker.start()
        finished = False
        try:
            while (chunk := chunks.get()) is not None:
                yield ChatMessageStreamDelta(content=chunk)
            finished = True
        finally:
            if not finished:
                cancel.set()
            worker.join()
        if "error" in outcome:
            raise outcome["error"]
        message: ChatMessage = outcome["message"]
        tool_deltas = [
            ChatMessageToolCallStreamDelta(index=i, id=call.id, type=call.type, function=ChatMessageToolCallFunction(
                name=call.function.name, arguments=json.dumps(call.function.arguments)))
            for i, call in enumerate(message.tool_calls or [])
        ]
        yield ChatMessageStreamDelta(content=None, tool_calls=tool_deltas or None, token_usage=message.token_usage)

    def reset_calls(self) -> None:
        self.calls.clear()
