"""Every prompt source in one place: the benchmark prompts, the distillation prompts, coding tasks made offline from
Python's standard library, your own JSONL files, and Hugging Face datasets (streamed).

A `Prompt` is plain user text; the model's chat template is applied at run time (`generation.chat_prompt`).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import textwrap
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError, HubUnreachableError, MissingPackageError, PromptFileError
from .fsutil import not_a_readable_file, read_jsonl
from .hf import is_closed_client_error, network_errors


@dataclass(frozen=True)
class Prompt:
    """One benchmark prompt (plain user text; the model's chat template is applied at run time)."""

    id: str
    category: str
    text: str


def builtin_prompts() -> list[Prompt]:
    """The agent's real work in miniature: chat, coding, a code edit, a long summary, a tool-use plan."""
    path = resources.files("helpers").joinpath("data/prompts.jsonl")
    return [Prompt(**record) for record in (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())]


def load_prompts(path: str | Path) -> list[Prompt]:
    """Load prompts from JSONL: one object per line with ``text`` (or ``prompt``), optional ``id`` and ``category``."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise PromptFileError(f"{path} is a folder; prompts come from a JSONL file with one {{\"text\": ...}} per line.")
    problem = not_a_readable_file(path)
    if problem:
        raise PromptFileError(f"Prompts file {path} {problem}. Give a JSONL file with one {{\"text\": ...}} per line.")
    try:
        records = read_jsonl(path, drop_torn_tail=False)
    except ValueError as exc:
        raise PromptFileError(f"{exc} Each line must be a JSON object such as {{\"id\": \"q1\", \"text\": \"...\"}}.") from exc
    prompts = []
    for number, record in enumerate(records, start=1):
        text = record.get("text", record.get("prompt"))
        if not isinstance(text, str) or not text.strip():
            raise PromptFileError(f"{path}, record {number}: needs a non-empty \"text\" (or \"prompt\") string.")
        prompts.append(Prompt(id=str(record.get("id", f"p{number}")), category=str(record.get("category", "custom")), text=text))
    if not prompts:
        raise PromptFileError(f"{path} holds no prompts. Add lines like {{\"text\": \"What is OpenVINO?\"}}.")
    if len({p.id for p in prompts}) != len(prompts):
        raise PromptFileError(f"{path}: prompt ids must be unique.")
    return prompts


BUILTIN = "builtin"
STDLIB = "stdlib"
BUILTIN_THEN_STDLIB = "builtin+stdlib"  # the benchmark suite's distillation prompts
# Where a prompt sits in common instruction datasets: Infinity-Instruct/ShareGPT ("conversations": [{"from", "value"}]),
# chat-style ("messages": [{"role", "content"}]) and flat columns.
CONVERSATION_FIELDS = ("conversations", "messages")
TEXT_FIELDS = ("prompt", "instruction", "question", "query", "input", "text")
USER_ROLES = ("human", "user")


def builtin_distill_prompts() -> list[Prompt]:
    """120 varied prompts (coding, code completion, code questions, chat, summaries, reasoning, tool use)."""
    with resources.as_file(resources.files("helpers").joinpath("data/distill_prompts.jsonl")) as path:
        return load_prompts(path)


def _looks_like_dataset_id(source: str) -> bool:
    parts = source.split("/")
    return len(parts) == 2 and all(parts) and not source.endswith((".jsonl", ".json")) and not source.startswith((".", "~"))


def load_prompt_source(source: str, limit: int | None = None, split: str = "train", config_name: str | None = None,
                       field: str | None = None) -> list[Prompt]:
    """Prompts from ``builtin``, ``stdlib``, ``builtin+stdlib`` (the built-in ones, then standard-library tasks), a
    JSONL file (``{"id", "text"}`` per line), or a Hugging Face dataset id (streamed)."""
    if limit is not None and limit < 1:
        raise ConfigError(f"The number of prompts must be at least 1, got {limit}.")
    if source == BUILTIN:
        prompts = builtin_distill_prompts()
    elif source == STDLIB:
        return stdlib_prompts(limit)
    elif source == BUILTIN_THEN_STDLIB:
        return distillation_prompts(limit) if limit else builtin_distill_prompts() + stdlib_prompts()
    elif Path(source).expanduser().exists() or source.endswith(".jsonl"):
        prompts = load_prompts(source)
    elif _looks_like_dataset_id(source):
        return dataset_prompts(source, limit=limit or 1000, split=split, config_name=config_name, field=field)
    else:
        raise PromptFileError(f"Prompt source {source!r} is neither 'builtin', 'stdlib', 'builtin+stdlib', an existing "
                              "JSONL file, nor a Hugging Face dataset id like 'BAAI/Infinity-Instruct'.")
    return prompts[:limit] if limit else prompts


# Pure-Python standard-library modules whose functions make good coding prompts; importing them has no side effects.
STDLIB_MODULES = (
    "argparse", "base64", "bisect", "calendar", "colorsys", "configparser", "contextlib", "copy", "csv", "dataclasses",
    "difflib", "enum", "filecmp", "fnmatch", "fractions", "ftplib", "functools", "getopt", "gettext", "glob", "graphlib",
    "gzip", "heapq", "hmac", "html", "html.parser", "http.cookies", "imaplib", "inspect", "ipaddress", "json.decoder",
    "json.encoder", "keyword", "linecache", "locale", "logging", "mailbox", "mimetypes", "netrc", "ntpath", "nturl2path",
    "numbers", "operator", "optparse", "pathlib", "pdb", "pickletools", "platform", "plistlib", "poplib", "posixpath",
    "pprint", "pydoc", "queue", "quopri", "random", "reprlib", "sched", "secrets", "selectors", "shlex", "shutil", "smtplib",
    "socketserver", "statistics", "string", "subprocess", "tabnanny", "tarfile", "tempfile", "textwrap", "threading",
    "timeit", "tokenize", "trace", "traceback", "types", "typing", "urllib.parse", "urllib.request", "uuid", "warnings",
    "wave", "weakref", "webbrowser", "zipapp", "zipfile",
)
# One task per function, rotating, so the answers mix writing, explaining, testing, editing and reviewing code.
STDLIB_TASKS = (
    ("write", "Write a Python function `{name}{signature}`. What it must do: {summary} Include type hints and a docstring."),
    ("explain", "Explain step by step what this function from Python's `{module}` module does.\n\n```python\n{source}```"),
    ("test", "Write pytest unit tests for this function, covering normal use and edge cases.\n\n```python\n{source}```"),
    ("edit", "Rewrite this function with type hints, clearer names and a short docstring. Return the whole function.\n\n"
             "```python\n{source}```"),
    ("review", "Review this code: list likely bugs or unhandled edge cases, then suggest one improvement.\n\n"
               "```python\n{source}```"),
)


@dataclass(frozen=True)
class StdlibFunction:
    """A documented function of the standard library, read from its source file (never imported)."""

    module: str
    qualname: str
    name: str
    signature: str
    docstring: str
    source: str


def _stdlib_functions(max_lines: int = 40) -> list[StdlibFunction]:
    """Public, documented functions and methods of `STDLIB_MODULES` of 4 to `max_lines` lines.

    Read with `ast` from the source files, so the result depends only on the Python version: importing the modules
    and inspecting live objects gave a different set once other libraries had patched some of them.
    """
    found = []
    for module_name in STDLIB_MODULES:
        spec = importlib.util.find_spec(module_name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue  # missing from this build, or a C module
        text = Path(spec.origin).read_text(encoding="utf-8")
        tree = ast.parse(text)
        scopes: list[tuple[str, list[ast.stmt]]] = [("", tree.body)]
        scopes += [(node.name + ".", node.body) for node in tree.body
                   if isinstance(node, ast.ClassDef) and not node.name.startswith("_")]
        seen = set()
        for prefix, body in scopes:
            for node in body:
                if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                    continue
                docstring = ast.get_docstring(node)
                source = ast.get_source_segment(text, node, padded=True)
                qualname = prefix + node.name
                if not docstring or not source or qualname in seen or not 4 <= source.count("\n") + 1 <= max_lines:
                    continue
                seen.add(qualname)
                found.append(StdlibFunction(module_name, qualname, node.name, f"({ast.unparse(node.args)})", docstring,
                                            source.rstrip() + "\n"))
    return found


def _stable_hash(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def stdlib_prompts(limit: int | None = None, seed: int = 0) -> list[Prompt]:
    """Coding prompts made offline from this Python's standard library: each short documented function becomes one
    task (write it from its docstring, explain, test, edit or review it).

    The task and the order come from a hash of each function's name, so ids are stable for a given Python version and
    adding or losing one function does not reshuffle the others (a resumed data file keeps its answers).
    """
    prompts = []
    for function in _stdlib_functions():
        key = f"{function.module}.{function.qualname}"
        task, template = STDLIB_TASKS[_stable_hash(key) % len(STDLIB_TASKS)]
        summary = " ".join(function.docstring.split("\n\n")[0].split())
        text = template.format(name=function.name, signature=function.signature, summary=summary, module=function.module,
                               source=textwrap.dedent(function.source))
        prompts.append(Prompt(id=f"stdlib:{key}:{task}", category=f"stdlib-{task}", text=text))
    prompts.sort(key=lambda p: _stable_hash(f"{seed}:{p.id}"))
    return prompts[:limit] if limit else prompts


def user_text(row: dict[str, Any], field: str | None = None) -> str | None:
    """The first user turn of a dataset row, whatever the dataset's layout (None if there is none)."""
    if field:
        value = row.get(field)
        return value if isinstance(value, str) and value.strip() else None
    for name in CONVERSATION_FIELDS:
        turns = row.get(name)
        if isinstance(turns, list):
            for turn in turns:
                if isinstance(turn, dict) and str(turn.get("from", turn.get("role", ""))).lower() in USER_ROLES:
                    text = turn.get("value", turn.get("content"))
                    if isinstance(text, str) and text.strip():
                        return text
    for name in TEXT_FIELDS:
        value = row.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def dataset_prompts(dataset_id: str, limit: int, split: str = "train", config_name: str | None = None,
                    field: str | None = None) -> list[Prompt]:
    """The first `limit` prompts of a Hugging Face dataset, streamed (nothing is downloaded beyond what is read)."""
    try:
        import datasets
    except ImportError as exc:
        raise MissingPackageError(
            f"Reading the Hugging Face dataset {dataset_id!r} needs the `datasets` package, which is not installed. "
            "Run `pip install datasets` (or use 'builtin' / a JSONL file of prompts)."
        ) from exc
    from tqdm.auto import tqdm

    prompts: list[Prompt] = []
    skipped = 0
    try:
        stream = datasets.load_dataset(dataset_id, name=config_name, split=split, streaming=True)
        with tqdm(total=limit, desc=f"reading {dataset_id}", leave=False) as bar:
            for index, row in enumerate(stream):
                text = user_text(row, field)
                if text is None:
                    skipped += 1
                    if skipped >= 100 and not prompts:
                        raise PromptFileError(
                            f"No prompt found in the first 100 rows of {dataset_id} (columns: {', '.join(row)}). "
                            "Name the column that holds the prompt with field=... (--field)."
                        )
                    continue
                prompts.append(Prompt(id=f"{dataset_id}:{row.get('id', index)}",
                                      category=str(row.get("category", "dataset")), text=text))
                bar.update()
                if len(prompts) >= limit:
                    break
    except (*network_errors(), FileNotFoundError, RuntimeError) as exc:  # streaming fetches lazily: errors surface late
        if isinstance(exc, RuntimeError) and not is_closed_client_error(exc):
            raise
        raise HubUnreachableError(
            f"Cannot stream {dataset_id!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}). Check the connection "
            "and the dataset id and config (--dataset-config), or use 'builtin' or a JSONL file of prompts."
        ) from exc
    return prompts


def distillation_prompts(count: int) -> list[Prompt]:
    """The built-in distillation prompts, then standard-library coding tasks, `count` in all."""
    builtin = builtin_distill_prompts()
    return builtin[:count] + (stdlib_prompts(count - len(builtin)) if count > len(builtin) else [])


