"""The contained executor for model-written code: what a CodeAgent's code may import, call and reach, and how long and
how much memory one code step may use.

smolagents' `LocalPythonExecutor` interprets the code itself (no ``exec``) and refuses dunder attributes, ``open``,
``eval``, ``__import__`` and modules outside its authorized list. Three gaps remain, closed here:

- Tools are handed to the code wrapped with ``functools.wraps``, which copies the tool object's attributes onto the
  wrapper: a tool holding a ``Path`` (or another tool) would give the code a way to the file system. Here the code sees
  each tool as a bare function with no attributes.
- ``str.format`` walks attributes (``'{0.__globals__}'.format(f)``) without the executor's dunder check; it is refused.
- Its time limit waits for the runaway code anyway (the thread pool's exit joins the thread), and there is no memory
  limit. Here the code runs in a thread that is abandoned and interrupted after `time_limit_s`, under a data-segment
  limit (Linux ``RLIMIT_DATA``: a huge allocation raises MemoryError instead of swapping the machine).

The authorized modules are pure computation: none of them reaches the file system, the network or other processes.
This is containment for a cooperative model, not a security boundary for hostile code: for that, run the agent in a
container or a remote executor (smolagents' ``executor_type="docker"`` / ``"e2b"``).
"""

from __future__ import annotations

import ast
import ctypes
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from smolagents.local_python_executor import BASE_PYTHON_TOOLS, CodeOutput, InterpreterError, LocalPythonExecutor

from .code_repair import CodeRepair, repair_code
from .settings import AGENT

# What model-written code may import: computation only. smolagents' defaults minus `time` (time.sleep blocks the
# interpreter thread beyond any interrupt), `queue` (a blocking get() waits forever) and `stat` (file-mode constants,
# useless without file access).
AUTHORIZED_MODULES = ("collections", "datetime", "itertools", "math", "random", "re", "statistics", "unicodedata")
# Attributes that read other attributes by name at run time, past the executor's check on dunder names.
FORBIDDEN_ATTRIBUTES = frozenset(("format", "format_map"))
CODE_TIME_LIMIT_S = AGENT.code_time_limit_s
CODE_MEMORY_LIMIT_MB = AGENT.code_memory_limit_mb


class CodeLimitError(InterpreterError):
    """Model-written code that ran out of time or memory; the message is what the model reads back."""


def _tool_function(tool: Callable[..., Any]) -> Callable[..., Any]:
    """`tool` as a plain function without attributes, so model code cannot reach the tool object's state."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return tool(*args, **kwargs)

    return call


def _checked_getattr(obj: Any, name: str, default: Any = None) -> Any:
    """``getattr`` for model code: no dunder names and no format methods (see `FORBIDDEN_ATTRIBUTES`)."""
    if (name.startswith("__") and name.endswith("__")) or name in FORBIDDEN_ATTRIBUTES:
        raise InterpreterError(f"Forbidden access to attribute: {name}")
    return getattr(obj, name, default)


def refuse_forbidden_attributes(code: str) -> None:
    """Raise `InterpreterError` if `code` names an attribute in `FORBIDDEN_ATTRIBUTES` (checked before it runs)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return  # the executor reports syntax errors itself, with the line
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            raise InterpreterError(f"'.{node.attr}(...)' is not allowed here: use an f-string instead.")


def _data_usage_bytes() -> int | None:
    """This process's data segment (VmData: what RLIMIT_DATA counts), or None where /proc is unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@contextmanager
def memory_cap(extra_mb: int | None) -> Iterator[None]:
    """Let this process grow its data segment by at most `extra_mb` MiB while the block runs (Linux only).

    The limit is the soft RLIMIT_DATA, restored afterwards; while it holds, a large allocation anywhere in the process
    raises MemoryError, so it only wraps the model's code, never the LLM. Elsewhere (no ``resource`` or /proc) it does
    nothing.
    """
    try:
        import resource
    except ImportError:  # Windows
        yield
        return
    used = _data_usage_bytes()
    if not extra_mb or used is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = used + extra_mb * 2**20
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _interrupt(thread: threading.Thread) -> None:
    """Raise SystemExit in `thread` at its next Python instruction (interpreted model code runs many of them)."""
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit))


class ContainedPythonExecutor(LocalPythonExecutor):
    """`LocalPythonExecutor` with only `AUTHORIZED_MODULES`, attribute-free tools, and a time and memory cap per step."""

    def __init__(self, time_limit_s: float = CODE_TIME_LIMIT_S, memory_limit_mb: int | None = CODE_MEMORY_LIMIT_MB,
                 max_print_outputs_length: int | None = None) -> None:
        super().__init__([], max_print_outputs_length=max_print_outputs_length,
                         additional_functions={"getattr": _checked_getattr}, timeout_seconds=None)
        self.authorized_imports = list(AUTHORIZED_MODULES)  # replaces smolagents' defaults instead of adding to them
        self.time_limit_s = time_limit_s
        self.memory_limit_mb = memory_limit_mb
        self.repairs: list[CodeRepair] = []  # code steps run after `code_repair.repair_code` fixed them

    def send_tools(self, tools: dict[str, Any]) -> None:
        functions = {name: _tool_function(tool) for name, tool in tools.items()}
        self.static_tools = {**functions, **BASE_PYTHON_TOOLS.copy(), **self.additional_functions}

    def __call__(self, code_action: str) -> CodeOutput:
        repair = repair_code(code_action)  # None unless the code does not parse and the repair makes it parse
        if repair is not None:
            code_action = repair.code
            self.repairs.append(repair)
        refuse_forbidden_attributes(code_action)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["output"] = LocalPythonExecutor.__call__(self, code_action)
            except BaseException as exc:  # handed to the caller below; SystemExit is our own interrupt
                outcome["error"] = exc

        worker = threading.Thread(target=run, name="agent-code", daemon=True)
        with memory_cap(self.memory_limit_mb):
            worker.start()
            worker.join(self.time_limit_s)
            if worker.is_alive():
                _interrupt(worker)
                worker.join(1.0)  # a single long C call (a huge power, a sort) only stops when it returns
        if "output" in outcome:
            output = outcome["output"]
            if repair is not None:  # the model sees what was fixed in its observation
                output.logs = repair.note() + "\n" + output.logs
            return output
        error = outcome.get("error")
        if error is None or isinstance(error, SystemExit):
            raise CodeLimitError(f"The code ran longer than {self.time_limit_s:g} s and was stopped: make it do less "
                                 "work per step.")
        if isinstance(error, MemoryError) or isinstance(error.__cause__, MemoryError) or "MemoryError" in str(error):
            raise CodeLimitError(f"The code needed more than {self.memory_limit_mb} MiB of memory and was stopped: "
                                 "work on smaller data.") from error
        raise error
