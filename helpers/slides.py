"""Slide decks with python-pptx: a validated deck spec, a guarded atomic writer, a reader, and slide previews.

An agent's tool call arrives as loose JSON-like data. `parse_deck_spec` turns it into a `DeckSpec` or refuses it with a
`ToolInputError` that tells the model what to change (missing title, too many bullets, text too long ...).
`safe_deck_path` keeps every file inside one output folder, whatever path the model asks for.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ToolInputError
from .fsutil import atomic_write_bytes

MAX_SLIDES = 15
MAX_BULLETS = 8
MAX_TITLE_CHARS = 120
MAX_BULLET_CHARS = 240
MAX_CHART_POINTS = 12
DEFAULT_FILENAME = "deck.pptx"
MAX_FILENAME_CHARS = 100  # well under the 255 bytes file systems allow, so the atomic writer's temporary name fits too
SLIDE_WIDTH_IN, SLIDE_HEIGHT_IN = 13.333, 7.5  # 16:9
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]*$")


@dataclass(frozen=True)
class ChartSpec:
    """A small bar chart drawn with matplotlib and placed on a slide as a picture."""

    title: str
    labels: tuple[str, ...]
    values: tuple[float, ...]
    ylabel: str = ""


@dataclass(frozen=True)
class SlideSpec:
    """One content slide: a title, bullets, and optionally a chart."""

    title: str
    bullets: tuple[str, ...] = ()
    chart: ChartSpec | None = None


@dataclass(frozen=True)
class DeckSpec:
    """A title slide (title, subtitle) followed by content slides."""

    title: str
    subtitle: str = ""
    slides: tuple[SlideSpec, ...] = field(default_factory=tuple)


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters: after the last whole sentence that fits, else at a word, with an
    ellipsis."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    sentence_end = max(head.rfind(". "), head.rfind("; "), head.rfind("! "), head.rfind("? "))
    if sentence_end >= limit // 3:
        return head[:sentence_end + 1]
    return head[:limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _text(value: Any, what: str, limit: int, required: bool = True, fit: bool = False) -> str:
    """A one-line string of at most `limit` characters. Too long: refused, or with `fit` shortened (small models
    paste whole paragraphs as bullets and repeat the same call after an error instead of shortening them)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ToolInputError(f"{what} is missing or empty; give a short non-empty string.")
        return ""
    if not isinstance(value, (str, int, float)):
        raise ToolInputError(f"{what} must be a string, got {type(value).__name__}.")
    text = " ".join(str(value).split())
    if len(text) > limit:
        if fit:
            return shorten(text, limit)
        raise ToolInputError(f"{what} is {len(text)} characters long; keep it under {limit} (shorten or split it).")
    return text


def _as_list(value: Any, what: str) -> list[Any]:
    """Models often pass JSON text where a list is expected: accept it, refuse anything else clearly."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ToolInputError(f"{what} must be a list, got text that is not valid JSON ({exc}).") from exc
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise ToolInputError(f"{what} must be a list, got {type(value).__name__}.")
    return value


def _chart(raw: Any, where: str) -> ChartSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ToolInputError(f"{where} chart must be an object with 'labels' and 'values', got {type(raw).__name__}.")
    labels = _as_list(raw.get("labels"), f"{where} chart labels")
    values = _as_list(raw.get("values"), f"{where} chart values")
    if not labels or len(labels) != len(values):
        raise ToolInputError(f"{where} chart needs as many labels as values (got {len(labels)} and {len(values)}), at least one.")
    if len(labels) > MAX_CHART_POINTS:
        raise ToolInputError(f"{where} chart has {len(labels)} bars; keep at most {MAX_CHART_POINTS}.")
    numbers = []
    for value in values:
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise ToolInputError(f"{where} chart values must be numbers, got {value!r}.") from exc
        if not math.isfinite(number):
            raise ToolInputError(f"{where} chart values must be finite numbers, got {value!r}.")
        numbers.append(number)
    return ChartSpec(
        title=_text(raw.get("title"), f"{where} chart title", MAX_TITLE_CHARS, required=False),
        labels=tuple(_text(label, f"{where} chart label", 40) for label in labels),
        values=tuple(numbers),
        ylabel=_text(raw.get("ylabel"), f"{where} chart ylabel", 40, required=False),
    )


def parse_deck_spec(title: Any, slides: Any, subtitle: Any = "") -> DeckSpec:
    """Validate a deck request; raise `ToolInputError` naming the first problem and how to fix it."""
    deck_title = _text(title, "The deck title", MAX_TITLE_CHARS)
    raw_slides = _as_list(slides, "slides")
    if not raw_slides:
        raise ToolInputError("slides is empty; give at least one slide like {'title': 'Sizes', 'bullets': ['...']}.")
    if len(raw_slides) > MAX_SLIDES:
        raise ToolInputError(f"{len(raw_slides)} slides requested; keep at most {MAX_SLIDES} (merge related points).")
    parsed = []
    for number, raw in enumerate(raw_slides, start=1):
        where = f"Slide {number}"
        if not isinstance(raw, dict):
            raise ToolInputError(f"{where} must be an object with 'title' and 'bullets', got {type(raw).__name__}.")
        unknown = set(raw) - {"title", "bullets", "chart"}
        if unknown:
            raise ToolInputError(f"{where} has unknown field(s) {sorted(unknown)}; use only 'title', 'bullets', 'chart'.")
        bullets_raw = raw.get("bullets", [])
        if isinstance(bullets_raw, str) and not bullets_raw.lstrip().startswith("["):
            bullets_raw = [line.lstrip("-*• ").strip() for line in bullets_raw.splitlines() if line.strip()]
        bullets = _as_list(bullets_raw, f"{where} bullets")
        if len(bullets) > MAX_BULLETS:
            raise ToolInputError(f"{where} has {len(bullets)} bullets; keep at most {MAX_BULLETS} (split it into two slides).")
        chart = _chart(raw.get("chart"), where)
        if not bullets and chart is None:
            raise ToolInputError(f"{where} has neither bullets nor a chart; add a 'bullets' list of short strings.")
        parsed.append(SlideSpec(
            title=_text(raw.get("title"), f"{where} title", MAX_TITLE_CHARS),
            bullets=tuple(_text(b, f"{where} bullet {i}", MAX_BULLET_CHARS, fit=True)
                          for i, b in enumerate(bullets, start=1)),
            chart=chart,
        ))
    return DeckSpec(title=deck_title, subtitle=_text(subtitle, "The subtitle", MAX_TITLE_CHARS, required=False),
                    slides=tuple(parsed))


def safe_deck_path(output_dir: str | Path, filename: str | None) -> Path:
    """The file `filename` inside `output_dir`; refuses absolute paths, folders, ``..``, symlinks leading out,
    over-long and non-.pptx names."""
    root = Path(output_dir).expanduser().resolve()
    if not isinstance(filename, (str, type(None))):
        raise ToolInputError(f"filename must be a string such as 'qwen3_overview.pptx', got {type(filename).__name__}.")
    name = (filename or DEFAULT_FILENAME).strip()
    if not name.lower().endswith(".pptx"):
        name += ".pptx"
    if len(name) > MAX_FILENAME_CHARS:
        raise ToolInputError(f"filename is {len(name)} characters long; keep it under {MAX_FILENAME_CHARS}, "
                             "e.g. 'qwen3_overview.pptx'.")
    if Path(name).name != name or not _SAFE_NAME.match(name):
        raise ToolInputError(
            f"filename {filename!r} is refused: give a plain file name such as 'qwen3_overview.pptx' "
            f"(letters, digits, '-', '_', '.'); decks are always saved in {root}."
        )
    path = (root / name).resolve()
    if path.parent != root or path.is_dir():  # a symlink or an odd name that resolves elsewhere, or a folder
        raise ToolInputError(f"filename {filename!r} resolves outside the output folder {root} or to a folder; give "
                             "a new plain file name.")
    return path


def _picture_bytes(chart: ChartSpec) -> bytes:
    from .plots import plot_slide_chart

    figure = plot_slide_chart(list(chart.labels), list(chart.values), chart.title, chart.ylabel)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return buffer.getvalue()


def render_deck(spec: DeckSpec) -> bytes:
    """The .pptx file for `spec`, as bytes: a 16:9 title slide, then one slide per `SlideSpec`."""
    from pptx import Presentation
    from pptx.util import Inches, Pt

    deck = Presentation()
    deck.slide_width, deck.slide_height = Inches(SLIDE_WIDTH_IN), Inches(SLIDE_HEIGHT_IN)
    title_slide = deck.slides.add_slide(deck.slide_layouts[0])  # "Title Slide"
    title_slide.shapes.title.text = spec.title
    title_slide.placeholders[1].text = spec.subtitle
    for slide_spec in spec.slides:
        slide = deck.slides.add_slide(deck.slide_layouts[5])  # "Title Only": we place the text box ourselves
        slide.shapes.title.text = slide_spec.title
        top, height = Inches(1.6), Inches(5.4)
        text_width = Inches(6.2) if slide_spec.chart else Inches(12.0)
        if slide_spec.bullets:
            frame = slide.shapes.add_textbox(Inches(0.7), top, text_width, height).text_frame
            frame.word_wrap = True
            for i, bullet in enumerate(slide_spec.bullets):
                paragraph = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
                paragraph.text = f"• {bullet}"
                paragraph.font.size = Pt(20 if len(slide_spec.bullets) <= 5 else 16)
                paragraph.space_after = Pt(8)
        if slide_spec.chart:
            left = Inches(7.0) if slide_spec.bullets else Inches(2.5)
            slide.shapes.add_picture(io.BytesIO(_picture_bytes(slide_spec.chart)), left, top, height=Inches(4.8))
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def write_deck(spec: DeckSpec, output_dir: str | Path, filename: str | None = DEFAULT_FILENAME) -> Path:
    """Write the deck inside `output_dir` atomically (a reader never sees half a file); returns its path."""
    path = safe_deck_path(output_dir, filename)
    atomic_write_bytes(path, render_deck(spec))
    return path


def make_deck(output_dir: str | Path, title: Any, slides: Any, filename: str | None = DEFAULT_FILENAME,
              subtitle: Any = "") -> Path:
    """Validate a loose deck request and write it: what the agent's slide tool does."""
    path = safe_deck_path(output_dir, filename)  # check the path before any work
    return write_deck(parse_deck_spec(title, slides, subtitle), output_dir, path.name)


def read_deck(path: str | Path) -> list[dict[str, Any]]:
    """Each slide's title, text lines and pictures (PNG/JPEG bytes): what a test or a preview needs."""
    from pptx import Presentation
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    slides = []
    for slide in Presentation(str(path)).slides:
        title = slide.shapes.title.text if slide.shapes.title is not None else ""
        lines, pictures = [], []
        for shape in slide.shapes:
            if shape.shape_type == MSO_SHAPE_TYPE.PICTURE:
                pictures.append(shape.image.blob)
            elif shape.has_text_frame and shape != slide.shapes.title:
                lines += [p.text for p in shape.text_frame.paragraphs if p.text.strip()]
        slides.append({"title": title, "lines": lines, "pictures": pictures})
    return slides


def _libreoffice_previews(deck: Path, out_dir: Path, timeout_s: float) -> list[Path]:
    """deck -> PDF (LibreOffice headless) -> one PNG per page (pdftoppm). Empty list if a tool is missing or fails."""
    soffice, pdftoppm = shutil.which("soffice") or shutil.which("libreoffice"), shutil.which("pdftoppm")
    if not soffice or not pdftoppm:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run([soffice, "--headless", "--convert-to", "pdf", "--outdir", tmp, str(deck)],
                           check=True, capture_output=True, timeout=timeout_s)
            pdf = Path(tmp) / f"{deck.stem}.pdf"
            subprocess.run([pdftoppm, "-png", "-r", "60", str(pdf), str(Path(tmp) / "slide")],
                           check=True, capture_output=True, timeout=timeout_s)
        except (subprocess.SubprocessError, OSError):
            return []
        pages = sorted(Path(tmp).glob("slide*.png"))
        paths = []
        for number, page in enumerate(pages, start=1):
            target = out_dir / f"{deck.stem}-slide{number:02d}.png"
            atomic_write_bytes(target, page.read_bytes())
            paths.append(target)
        return paths


def preview_images(deck: str | Path, out_dir: str | Path | None = None, use_libreoffice: bool = True,
                   timeout_s: float = 120.0) -> tuple[list[Path], str]:
    """PNG previews of every slide and how they were made.

    With LibreOffice (``soffice``) and ``pdftoppm`` on PATH the previews are the real rendering; otherwise a simple
    matplotlib drawing of each slide's title, bullets and pictures (good enough to check content, not layout).
    """
    import matplotlib.pyplot as plt

    from .plots import plot_slide_preview, save_figure

    deck = Path(deck)
    out_dir = Path(out_dir) if out_dir else deck.parent / f"{deck.stem}-previews"
    out_dir.mkdir(parents=True, exist_ok=True)
    if use_libreoffice:
        rendered = _libreoffice_previews(deck, out_dir, timeout_s)
        if rendered:
            return rendered, "LibreOffice"
    paths = []
    for number, slide in enumerate(read_deck(deck), start=1):
        figure = plot_slide_preview(slide["title"], slide["lines"], slide["pictures"], number, is_title=number == 1)
        paths.append(save_figure(figure, out_dir / f"{deck.stem}-slide{number:02d}.png"))
        plt.close(figure)
    return paths, "matplotlib sketch (LibreOffice not installed)"


def demo_deck_spec() -> dict[str, Any]:
    """A hand-written deck request for the blog's task, as a capable model would send it to the slide tool.

    Used only to show a real deck when the model is the tiny one (which cannot write sensible slides); the content
    comes from ``data/qwen3_facts.md``.
    """
    return {
        "title": "The Qwen3 model series",
        "subtitle": "Key features, from an agent running on OpenVINO",
        "slides": [
            {"title": "Eight open models, two kinds", "bullets": [
                "Dense: 0.6B, 1.7B, 4B, 8B, 14B, 32B",
                "Mixture-of-experts: 30B-A3B and 235B-A22B (3B / 22B active per token)",
                "One tokenizer and chat format across sizes: small ones can draft for big ones",
            ]},
            {"title": "Think or answer directly", "bullets": [
                "Hybrid thinking and non-thinking modes in one checkpoint",
                "enable_thinking in the chat template, /think and /no_think per turn",
                "Trade latency for quality: a thinking budget",
            ]},
            {"title": "Context and languages", "bullets": [
                "32K tokens native context; up to 128K with YaRN for 8B and larger",
                "119 languages and dialects",
            ], "chart": {"title": "Parameters (billions, dense)", "labels": ["0.6B", "1.7B", "4B", "8B", "14B", "32B"],
                         "values": [0.6, 1.7, 4, 8, 14, 32]}},
            {"title": "Training and license", "bullets": [
                "About 36 trillion pretraining tokens in three stages",
                "Small models distilled from the large ones",
                "Apache-2.0 license: commercial use allowed",
            ]},
            {"title": "Built for agents", "bullets": [
                "Tool calling in <tool_call> JSON, in both modes",
                "MCP support; works with Qwen-Agent, smolagents, AutoGen",
                "Speculative decoding with a pruned draft: ~1.4x faster Qwen3-8B on Core Ultra",
            ]},
        ],
    }
