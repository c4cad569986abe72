"""The agent's tools: web search with an offline fallback (notes shipped with the package), and the validated slide
tool that is the only thing allowed to write files, inside its own folder."""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from smolagents import Tool

from .errors import ConfigError, ToolInputError
from .slides import DEFAULT_FILENAME, MAX_BULLET_CHARS, MAX_BULLETS, MAX_SLIDES, make_deck

PROBE_URL = "https://duckduckgo.com"


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
