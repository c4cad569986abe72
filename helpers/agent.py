"""A smolagents agent on OpenVINO GenAI: an in-process model (with or without a draft), search and slide tools, and
per-step measurements, including an interleaved comparison with and without the draft.

`OpenVINOGenAIModel` is a ``smolagents.Model``: it renders the conversation with the model's own chat template
(Qwen3 thinking on or off), generates with an ``LLMPipeline`` in this process (no server), stops at the agent's stop
sequences, streams tokens, keeps the thinking out of the answer, and records OpenVINO GenAI's measurements of every
call (`ModelCall`). It never raises on odd model output: the agent's own parser reports it to the model, which retries.

smolagents itself is light (no torch or OpenVINO), so it is imported at module level; OpenVINO is imported lazily.
"""

from __future__ import annotations

import argparse
import json
import queue
import re
import statistics
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from smolagents import CodeAgent, Tool
from smolagents.memory import ActionStep, PlanningStep
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
from smolagents.utils import AgentMaxStepsError

from .benchmark import BenchmarkResult, RunRecord, machine_description, measure, peak_rss_mb
from .errors import ConfigError, ToolInputError
from .fsutil import write_json
from .slides import DEFAULT_FILENAME, MAX_BULLET_CHARS, MAX_BULLETS, MAX_SLIDES, make_deck

BLOG_TASK = "Summarize the key features of the Qwen3 model series and present them in a slide deck"
# Small models (1.5B) answer the blog's task from memory without searching, or search and parse the result in the same
# code block without looking at it; spelling the two steps out makes them ground the slides in the search results.
GROUNDED_TASK = (BLOG_TASK + ". First step: call web_search and print() its result, nothing else. Next step: write "
                 "the slides from the printed text.")
# The blog's notebook appended 'pptx' only, which refuses `from pptx.util import Inches`: submodules need the wildcard.
AUTHORIZED_IMPORTS = ["pptx.*"]
AGENT_INSTRUCTIONS = (
    "To make slides: first call web_search to collect facts, then call make_slide_deck once with a title and 4 to 6 "
    "slides of 2 to 5 short bullets each, then return the path it gives with final_answer."
)
OUTPUT_NAME = "agent"  # decks and run logs go to paths.outputs_dir(OUTPUT_NAME)
BASELINE_LABEL = "target alone"
DEFAULT_ASSISTANT_TOKENS = 3  # the blog's notebook uses 3
PROBE_URL = "https://duckduckgo.com"
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


def _context_length(model_dir: str | Path) -> int | None:
    config = Path(model_dir) / "config.json"
    try:
        value = json.loads(config.read_text()).get("max_position_embeddings")
    except (OSError, ValueError):
        return None
    return int(value) if value else None


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
        num_assistant_tokens: int | None = None,
        assistant_confidence_threshold: float | None = None,
        label: str | None = None,
        context_length: int | None = None,
        on_thinking: Callable[[str], None] | None = None,
        model_id: str = "openvino-genai",
    ) -> None:
        super().__init__(flatten_messages_as_text=True, model_id=model_id)
        if (num_assistant_tokens or assistant_confidence_threshold) and not speculative:
            raise ConfigError("num_assistant_tokens / assistant_confidence_threshold need a draft model: "
                              "load the pipeline with a draft (from_folders(..., draft_dir=...)) or drop them.")
        if speculative and num_assistant_tokens is None and assistant_confidence_threshold is None:
            num_assistant_tokens = DEFAULT_ASSISTANT_TOKENS
        self.pipe = pipe
        self.max_new_tokens = max_new_tokens
        self.enable_thinking = enable_thinking
        self.speculative = speculative
        self.num_assistant_tokens = num_assistant_tokens
        self.assistant_confidence_threshold = assistant_confidence_threshold
        self.context_length = context_length
        self.on_thinking = on_thinking
        if label is None:
            label = BASELINE_LABEL
            if speculative:
                label = (f"draft k={num_assistant_tokens}" if num_assistant_tokens is not None
                         else f"draft threshold={assistant_confidence_threshold:g}")
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
        from .generation import load_pipeline

        pipe = load_pipeline(target_dir, device, draft_dir=draft_dir, prefix_caching=prefix_caching, **(properties or {}))
        kwargs.setdefault("context_length", _context_length(target_dir))
        return cls(pipe, speculative=draft_dir is not None, **kwargs)

    def _validate_config(self) -> None:
        self.generation_config(self.max_new_tokens)  # raises ConfigError now rather than at the first agent step

    def generation_config(self, max_new_tokens: int, stop_sequences: Sequence[str] | None = None) -> Any:
        """The GenerationConfig of one call. Native stop strings only without thinking (they would fire inside it)."""
        from .generation import generation_config

        native_stops = set(stop_sequences or []) if not self.enable_thinking else None
        config = generation_config(max_new_tokens, num_assistant_tokens=self.num_assistant_tokens,
                                   assistant_confidence_threshold=self.assistant_confidence_threshold,
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


# ---------------------------------------------------------------------------------------------------------------------
# Tools


def _facts_sections(path: str | Path | None = None) -> list[tuple[str, str]]:
    text = (Path(path).read_text(encoding="utf-8") if path
            else resources.files("helpers").joinpath("data/qwen3_facts.md").read_text(encoding="utf-8"))
    sections, title, lines = [], None, []
    for line in text.splitlines():
        if line.startswith("## "):
            if title:
                sections.append((title, " ".join(" ".join(lines).split())))
            title, lines = line[3:].strip(), []
        elif title:
            lines.append(line)
    if title:
        sections.append((title, " ".join(" ".join(lines).split())))
    return sections


_WORD = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")
# Words every section shares or that carry no topic: they would only add noise to the ranking.
_STOPWORDS = frozenset(("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "in", "is", "it", "of", "on",
                        "or", "the", "to", "what", "which", "with", "qwen3", "qwen", "model", "models", "series", "key",
                        "features"))


def _terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


class OfflineSearchTool(Tool):
    """Search over a small local knowledge file (default: ``helpers/data/qwen3_facts.md``) when there is no internet."""

    name = "web_search"
    description = ("Searches offline notes about the Qwen3 model series (this machine has no internet) and returns "
                   "the best-matching sections as markdown search results.")
    inputs: ClassVar[dict[str, Any]] = {"query": {"type": "string", "description": "What to look for, e.g. 'Qwen3 model sizes'."}}
    output_type = "string"

    def __init__(self, path: str | Path | None = None, max_results: int = 3) -> None:
        super().__init__()
        self.source = Path(path).name if path else "qwen3_facts.md"
        self.sections = _facts_sections(path)
        self.max_results = max_results

    def forward(self, query: str) -> str:
        import math

        if not isinstance(query, str) or not query.strip():
            raise ToolInputError("web_search needs a non-empty query string, e.g. web_search('Qwen3 model sizes').")
        terms = set(_terms(query)) or set(_WORD.findall(query.lower()))
        docs = [(title, body, _terms(title), _terms(body)) for title, body in self.sections]
        frequency = {t: sum(t in title_terms or t in body_terms for _, _, title_terms, body_terms in docs) for t in terms}
        scored = []
        for title, body, title_terms, body_terms in docs:
            weight = math.fsum((3 * title_terms.count(t) + body_terms.count(t)) * math.log(1 + len(docs) / frequency[t])
                               for t in terms if frequency[t])
            if weight > 0:
                scored.append((weight, title, body))
        if not scored:  # a broad question about the series: the overview sections answer it best
            scored = [(0.0, title, body) for title, body in self.sections[: self.max_results]]
        top = sorted(scored, key=lambda item: -item[0])[: self.max_results]
        anchors = [re.sub("[^a-z0-9]+", "-", title.lower()).strip("-") for _, title, _ in top]
        results = [f"[{title}]({self.source}#{anchor})\n{body}" for (_, title, body), anchor in zip(top, anchors, strict=True)]
        return f"## Search Results (offline notes, {self.source})\n\n" + "\n\n".join(results)


class WebSearchWithFallback(Tool):
    """smolagents' DuckDuckGo search; if a search fails (rate limit, network drop), the offline notes answer instead."""

    name = "web_search"
    description = ("Performs a web search (DuckDuckGo) for your query and returns the top results as markdown with "
                   "titles, links and snippets.")
    inputs: ClassVar[dict[str, Any]] = {"query": {"type": "string", "description": "The search query to perform."}}
    output_type = "string"

    def __init__(self, online: Tool, offline: OfflineSearchTool) -> None:
        super().__init__()
        self.online, self.offline = online, offline

    def forward(self, query: str) -> str:
        try:
            return self.online.forward(query)
        except Exception as exc:
            return f"(web search failed: {type(exc).__name__}: {exc}; results from offline notes instead)\n\n" + \
                self.offline.forward(query)


@dataclass
class SearchChoice:
    """The search tool in use, whether it is online, and the sentence that says so."""

    tool: Tool
    online: bool
    message: str


def internet_reachable(url: str = PROBE_URL, timeout_s: float = 2.5) -> tuple[bool, str]:
    """A quick HEAD request (in a thread, so a hanging DNS lookup cannot exceed `timeout_s`): (reachable, detail)."""
    outcome: dict[str, str] = {}

    def probe() -> None:
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "Mozilla/5.0"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                outcome["ok"] = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:  # sandboxes and captive portals answer 4xx/5xx for sites they block
            outcome["error"] = f"HTTP {exc.code} {exc.reason}"
        except Exception as exc:
            outcome["error"] = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"

    thread = threading.Thread(target=probe, name="internet-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if "ok" in outcome:
        return True, outcome["ok"]
    return False, outcome.get("error", f"no answer within {timeout_s:g} s")


def choose_search_tool(mode: str = "auto", timeout_s: float = 2.5, facts_path: str | Path | None = None) -> SearchChoice:
    """``auto``: web search if `PROBE_URL` answers within `timeout_s`, else the offline notes; or force ``online``/``offline``."""
    if mode not in ("auto", "online", "offline"):
        raise ConfigError(f"search mode must be 'auto', 'online' or 'offline', not {mode!r}.")
    offline = OfflineSearchTool(facts_path)
    if mode == "offline":
        return SearchChoice(offline, False, f"Search: offline notes ({offline.source}), as requested.")
    if mode == "auto":
        reachable, detail = internet_reachable(timeout_s=timeout_s)
        if not reachable:
            return SearchChoice(offline, False, f"Search: no internet ({PROBE_URL} unreachable: {detail}); using the "
                                                f"offline notes ({offline.source}) instead of DuckDuckGo.")
    try:
        from smolagents import DuckDuckGoSearchTool

        online = DuckDuckGoSearchTool(max_results=5)
    except ImportError as exc:
        return SearchChoice(offline, False, f"Search: {exc} Using the offline notes ({offline.source}).")
    return SearchChoice(WebSearchWithFallback(online, offline), True,
                        "Search: DuckDuckGo web search (offline notes if a search fails).")


class SlideDeckTool(Tool):
    """python-pptx slide decks, validated and written atomically inside one output folder."""

    name = "make_slide_deck"
    description = (
        "Writes a PowerPoint deck: a title slide, then one slide per entry of `slides`. Returns the path of the .pptx "
        f"file. At most {MAX_SLIDES} slides, {MAX_BULLETS} bullets per slide, {MAX_BULLET_CHARS} characters per bullet."
    )
    inputs: ClassVar[dict[str, Any]] = {
        "title": {"type": "string", "description": "Deck title, shown on the title slide."},
        "slides": {"type": "array", "description": (
            "List of slides, each {'title': str, 'bullets': [str, ...]}; optionally a bar chart "
            "'chart': {'title': str, 'labels': [str, ...], 'values': [number, ...]}.")},
        "filename": {"type": "string", "nullable": True,
                     "description": f"Plain file name ending in .pptx (default {DEFAULT_FILENAME})."},
        "subtitle": {"type": "string", "nullable": True, "description": "Subtitle of the title slide."},
    }
    output_type = "string"

    def __init__(self, output_dir: str | Path) -> None:
        super().__init__()
        self.output_dir = Path(output_dir)
        self.written: list[Path] = []

    def forward(self, title: str, slides: list, filename: str | None = None, subtitle: str | None = None) -> str:
        path = make_deck(self.output_dir, title, slides, filename or DEFAULT_FILENAME, subtitle or "")
        self.written.append(path)
        return str(path)


def default_tools(output_dir: str | Path, search: SearchChoice | None = None) -> list[Tool]:
    """The blog's toolset: a search tool and the slide tool writing into `output_dir`."""
    return [(search or choose_search_tool()).tool, SlideDeckTool(output_dir)]


# ---------------------------------------------------------------------------------------------------------------------
# Running and measuring the agent


def build_agent(model: Model, tools: list[Tool], max_steps: int = 6, stream: bool = False, verbosity: int = 1,
                instructions: str | None = AGENT_INSTRUCTIONS) -> CodeAgent:
    """A CodeAgent with only the imports the slide work needs (``pptx.*``) besides smolagents' safe defaults."""
    if max_steps < 1:
        raise ConfigError(f"max_steps must be at least 1, got {max_steps}.")
    return CodeAgent(tools=tools, model=model, additional_authorized_imports=list(AUTHORIZED_IMPORTS),
                     max_steps=max_steps, stream_outputs=stream, verbosity_level=verbosity, instructions=instructions)


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


def _short(value: Any, limit: int = 300, keep_end: bool = False) -> str:
    """At most `limit` characters; `keep_end` keeps the tail (an error's cause comes after the failing code line)."""
    text = "" if value is None else str(value)
    if len(text) <= limit:
        return text
    return "…" + text[-(limit - 1):] if keep_end else text[: limit - 1] + "…"


def _share(accepted: Sequence[ModelCall]) -> float | None:
    drafted = sum(c.run.draft_tokens or 0 for c in accepted)
    return sum(c.run.accepted_tokens or 0 for c in accepted) / drafted if drafted else None


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
            acceptance_rate=(sum(r.accepted_tokens or 0 for r in runs) / drafted) if drafted else None,
            accepted_tokens=sum(r.accepted_tokens or 0 for r in runs) if drafted else None,
            draft_tokens=drafted or None,
            draft_to_main_ratio=statistics.median(ratios) if ratios else None,
            steps=target_passes or None,
            cost_ratio=statistics.median(costs) if costs else None,
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
    max_steps and then asks the model for a final answer.
    """
    model = agent.model
    tagger = _StepTagger(model)
    agent.step_callbacks.register(ActionStep, tagger)
    agent.step_callbacks.register(PlanningStep, tagger)
    slide_tools = [t for t in agent.tools.values() if isinstance(t, SlideDeckTool)]
    already = {id(t): len(t.written) for t in slide_tools}
    answer = agent.run(task)
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
            "seconds": memory_step.timing.duration,
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "acceptance_rate": _share(calls),
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
    return AgentRun(label=label or getattr(model, "label", type(model).__name__), task=task,
                    final_answer=_short(answer, 2000),
                    steps=steps, calls=calls, decks=decks, repeat=repeat, settings=settings)


@dataclass
class AgentComparison:
    """Interleaved agent runs of several models on one task, paired as `benchmark.BenchmarkResult` pairs runs."""

    result: BenchmarkResult
    runs: list[AgentRun]

    def summary(self) -> list[dict[str, Any]]:
        """`BenchmarkResult.summary()` plus the median wall time and step count of each configuration's runs."""
        rows = self.result.summary()
        for row in rows:
            mine = [r for r in self.runs if r.label == row["label"]]
            row["agent_seconds"] = statistics.median(r.seconds for r in mine)
            row["agent_steps"] = statistics.median(len(r.steps) for r in mine)
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
                         "acceptance_rate": statistics.median(accepted) if accepted else None})
        order = {label: i for i, label in enumerate(dict.fromkeys(run.label for run in self.runs))}  # baseline first
        return sorted(rows, key=lambda r: (r["step"], order[r["label"]]))

    def to_json(self, path: str | Path) -> Path:
        data = self.result.to_dict()
        data["agent_summary"] = self.summary()
        data["agent_runs"] = [r.to_dict() for r in self.runs]
        write_json(Path(path), data)
        return Path(path)


def compare_agents(models: Sequence[OpenVINOGenAIModel], task: str, make_tools: Callable[[], list[Tool]],
                   repeats: int = 2, max_steps: int = 3, warmup: bool = True, progress: bool = True) -> AgentComparison:
    """Run the same agent task with each model, interleaved (A, B, B, A, ...): the first model is the baseline.

    Each run gets fresh tools and a fresh agent; the order of the models rotates every repeat, as in
    `benchmark.run_interleaved`, and speedups are medians of per-pair ratios (`BenchmarkResult.summary`).
    """
    from tqdm.auto import tqdm

    if len(models) < 2:
        raise ConfigError("compare_agents needs at least two models (e.g. target alone and target + draft).")
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"Model labels must be unique, got {labels}.")
    if warmup:  # first compilation and caches, untimed
        for model in models:
            model.generate([ChatMessage(role=MessageRole.USER, content=[{"type": "text", "text": "Hello"}])])
            model.reset_calls()
    runs: list[AgentRun] = []
    with tqdm(total=repeats * len(models), desc="agent runs", disable=not progress, leave=False) as bar:
        for repeat in range(repeats):
            shift = repeat % len(models)
            for model in list(models[shift:]) + list(models[:shift]):
                agent = build_agent(model, make_tools(), max_steps=max_steps, verbosity=0)
                runs.append(run_agent(agent, task, repeat=repeat))
                bar.update()
    result = BenchmarkResult(
        records=[r.record() for r in runs], baseline=labels[0],
        settings={"task": task, "repeats": repeats, "max_steps": max_steps,
                  "models": {m.label: {"max_new_tokens": m.max_new_tokens, "enable_thinking": m.enable_thinking,
                                       "num_assistant_tokens": m.num_assistant_tokens} for m in models}},
        machine=machine_description(), peak_rss_mb=peak_rss_mb(),
    )
    return AgentComparison(result=result, runs=runs)


def print_thinking(text: str) -> None:
    """An `on_thinking` callback: show the model's reasoning as it streams (it never enters the parsed answer)."""
    print(text, end="", flush=True)


# ---------------------------------------------------------------------------------------------------------------------
# Command line


def default_max_new_tokens(preset_name: str) -> int:
    """Tiny models write gibberish until the limit: keep their calls short. Real models need room to write code."""
    return 64 if preset_name == "tiny" else 1024


def _cmd_agent(args: argparse.Namespace) -> int:
    from .conversion import prepare_preset
    from .paths import outputs_dir
    from .presets import get_preset, preset_from_env
    from .tables import markdown_table

    preset = get_preset(args.preset) if args.preset else preset_from_env()
    models = prepare_preset(preset)
    output_dir = Path(args.output_dir).expanduser() if args.output_dir else outputs_dir(OUTPUT_NAME)
    output_dir.mkdir(parents=True, exist_ok=True)
    search = choose_search_tool(args.search)
    print(search.message)
    model = OpenVINOGenAIModel.from_folders(
        models.target, args.device, draft_dir=None if args.no_draft else models.draft,
        max_new_tokens=args.max_new_tokens or default_max_new_tokens(preset.name), enable_thinking=args.thinking,
        num_assistant_tokens=None if args.no_draft else args.num_assistant_tokens,
        on_thinking=print_thinking if args.thinking and not args.quiet else None,
    )
    if preset.name == "tiny":
        print("Note: the tiny preset's model writes gibberish: expect nonsense steps and no deck (use a real preset).")
    agent = build_agent(model, default_tools(output_dir, search), max_steps=args.max_steps, stream=not args.quiet,
                        verbosity=0 if args.quiet else 1)
    run = run_agent(agent, args.task)
    run.settings.update({"preset": preset.name, "device": args.device, "search": search.message})
    log = run.to_json(output_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.json")
    print(markdown_table(run.steps, ["step", "kind", "seconds", "input_tokens", "output_tokens", "acceptance_rate",
                                     "tokens_per_s", "error"]))
    print(f"\nfinal answer: {run.final_answer[:300]}")
    print("deck: " + (", ".join(str(p) for p in run.decks) if run.decks else "none written (the model never called "
                                                                             "make_slide_deck successfully)"))
    print(f"run log: {log}")
    return 0


def register_cli(sub: Any) -> None:
    """``python -m helpers agent``: run the slide-deck agent, write the deck and a JSON run log."""
    p = sub.add_parser("agent", help="run the smolagents slide-deck agent on a preset; writes the deck and a JSON run log")
    p.add_argument("--preset", help="preset name (default: $TUTORIAL_PRESET or tiny); converts its models if needed")
    p.add_argument("--task", default=BLOG_TASK, help="what to ask the agent (default: the blog's task)")
    p.add_argument("--device", default="CPU")
    p.add_argument("--max-steps", type=int, default=6)
    p.add_argument("--max-new-tokens", type=int, default=None, help="per model call (default: 64 on tiny, else 1024)")
    p.add_argument("--no-draft", action="store_true", help="target alone, no speculative decoding")
    p.add_argument("--num-assistant-tokens", "-k", type=int, default=DEFAULT_ASSISTANT_TOKENS)
    p.add_argument("--thinking", action="store_true", help="Qwen3 thinking on (better plans, many more tokens)")
    p.add_argument("--search", choices=["auto", "online", "offline"], default="auto",
                   help="web search, offline notes, or auto (probe the network for ~2.5 s)")
    p.add_argument("--output-dir", help="where the deck and the run log go (default: <workdir>/outputs/agent)")
    p.add_argument("--quiet", action="store_true", help="no live agent output")
    p.set_defaults(handler=_cmd_agent)
