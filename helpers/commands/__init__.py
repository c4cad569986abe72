"""``python -m helpers ...``: one sub-command per job, grouped by concern in this package.

The domain modules (`helpers.benchmark`, `helpers.pruning`, ...) are library code only; every argparse line lives here.
A command module imports the heavy libraries (torch, smolagents) inside its handler, so `--help` and light commands
start fast. Our own errors and operating-system errors print as one line naming the fix, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import TutorialError
from ..fsutil import describe_copy_error, is_text
from ..settings import WORKDIR_ENV
from . import agent, bench, draft, models, suite
from .common import HelpFormatter

COMMAND_GROUPS = (models, bench, draft, agent, suite)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers", formatter_class=HelpFormatter,
        description="The tutorial's jobs from the command line: the same functions the notebooks call.",
        epilog="Run `python -m helpers COMMAND --help` for a command's options, defaults and examples.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


OUTPUT_OPTIONS = ("json", "output", "output_dir", "results_dir", "cache")  # options that name where results go


def option_naming(path: str | None, args: argparse.Namespace | None) -> str:
    """The command-line option whose value is `path` or a folder holding it (``--json``, ``--output``...), else the
    work folder's option: the place the user can change."""
    if path and args is not None:
        target = Path(path).expanduser().absolute()
        for name, value in vars(args).items():
            if isinstance(value, (str, Path)) and str(value).strip() and name not in ("command", "argv", "workdir"):
                given = Path(value).expanduser().absolute()
                # the file itself, a file below it, the folder it goes into (checked before writing), the
                # temporary sibling an atomic write goes through, or a sidecar named after it (b.json.partial.jsonl,
                # d.jsonl.settings.json)
                beside = name in OUTPUT_OPTIONS and (given.parent == target or (
                    target.parent == given.parent and target.name.startswith((f".{given.name}", f"{given.name}."))))
                if given == target or given in target.parents or beside:
                    return "--" + name.replace("_", "-")
    return f"--workdir (${WORKDIR_ENV})"


def os_error_hint(exc: OSError, args: argparse.Namespace | None = None) -> str:
    """What to do about an operating-system error, in one sentence."""
    option = option_naming(exc.filename2 or exc.filename, args)
    hints = {
        errno.ENOSPC: f"the disk is full: free some space or point {option} at a larger disk",
        errno.EROFS: f"the file system is read-only: point {option} at a writable folder",
        errno.EACCES: "permission denied: choose a folder you can write to (--workdir, --output)",
        errno.EPERM: "permission denied: choose a folder you can write to (--workdir, --output)",
        errno.EISDIR: "a folder stands where a file was expected: pass a file path",
        errno.ENOTDIR: "a file stands where a folder was expected: pass a folder path",
        # mkdir(parents=True, exist_ok=True) says EEXIST when a file sits where a folder of the path should be
        errno.EEXIST: "a file stands where a folder was expected: pass a folder path",
        errno.ENAMETOOLONG: "a file name is too long: choose a shorter path",
        errno.ENOENT: "a file or folder does not exist: check the path",
    }
    if exc.errno is None:  # raised by our own code or a library with a sentence of its own
        if isinstance(exc, shutil.Error):  # a list of (source, destination, reason) tuples, not a sentence
            return describe_copy_error(exc) + "."
        return str(exc) or type(exc).__name__
    path = exc.filename2 or exc.filename  # for a rename, the destination is the path the user named
    where = f" ({path})" if path else ""
    return f"{hints.get(exc.errno, exc.strerror or type(exc).__name__)}{where}."


def blank_argument(argv: Sequence[str]) -> str | None:
    """The option given an empty value (``--source ""``), or None.

    Without this check an empty path falls back to the preset's default, or means the current folder, and the command
    quietly works on something the user did not name.
    """
    for index, token in enumerate(argv):
        if token.startswith("--") and "=" in token and not token.split("=", 1)[1].strip():
            return token.split("=", 1)[0]
        if not token.strip():
            option = next((t for t in reversed(argv[:index]) if t.startswith("-") and len(t) > 1), None)
            return option or "a positional argument"
    return None


def undecodable_argument(argv: Sequence[str]) -> str | None:
    """The option whose value is not UTF-8 text (``--task $'\\xff'``), or None.

    Python keeps such bytes as lone surrogates, on which tokenizers, OpenVINO and the JSON result files fail later
    with a traceback."""
    for index, token in enumerate(argv):
        if not is_text(token):
            if token.startswith("--") and "=" in token and is_text(token.split("=", 1)[0]):
                return token.split("=", 1)[0]
            option = next((t for t in reversed(argv[:index]) if t.startswith("-") and len(t) > 1), None)
            return option or "a positional argument"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    undecodable = undecodable_argument(given)
    if undecodable:
        print(f"error: {undecodable} holds bytes that are not UTF-8 text: type it again in UTF-8 (check the "
              "terminal's encoding, e.g. LANG=C.UTF-8).", file=sys.stderr)
        return 2
    args = build_parser().parse_args(given)
    args.argv = given  # for `common.invocation`: the command as given
    blank = blank_argument(given)
    if blank:
        print(f"error: {blank} is given an empty value: give it a value, or leave it out to use the default.",
              file=sys.stderr)
        return 2
    try:
        return args.handler(args)
    except TutorialError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {os_error_hint(exc, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; run the same command again to continue.", file=sys.stderr)
        return 130
