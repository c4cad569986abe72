"""Files written so that an interrupted run is never mistaken for a finished one."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PARTIAL_MARKER = ".partial-"


@contextmanager
def atomic_directory(final: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `final`; rename it to `final` only if the block finishes.

    An exception (or a killed process) leaves `final` untouched; the half-written temporary folder is removed, or,
    after a hard kill, left with a ``.partial-`` name that no reader treats as a model.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}{PARTIAL_MARKER}", dir=final.parent))
    with errors_name(final):
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    if final.exists():
        if not replace:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(f"{final} already exists; pass replace=True to overwrite it.")
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def with_path(exc: OSError, path: str | Path) -> OSError:
    """`exc` with `path` as its file name when it has an error number but names no file: a ``write()`` that fills the
    disk raises ENOSPC without a path, and the message could then not say which option chose the place."""
    if exc.errno is None or exc.filename is not None:
        return exc
    return type(exc)(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


@contextmanager
def errors_name(path: str | Path) -> Iterator[None]:
    """Re-raise an OSError of the block that names no file (see `with_path`) as one that names `path`."""
    try:
        yield
    except OSError as exc:
        located = with_path(exc, path)
        if located is exc:
            raise
        raise located from exc


class _CopyFailed(Exception):
    """Carries the first failed file copy out of `shutil.copytree`, which would otherwise swallow it."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def copy_tree(source: Path, dest: Path) -> None:
    """`shutil.copytree` (into `dest`, which may exist) that stops at the first file it cannot copy and raises that
    file's OSError with its error number and path. shutil.copytree copies on after a failure and then raises one
    `shutil.Error` listing every failure as text (on a full disk, a line of tuples with no error number)."""

    def copy(src: str, dst: str) -> object:
        try:
            return shutil.copy2(src, dst)
        except OSError as exc:
            raise _CopyFailed(with_path(exc, dst)) from exc

    try:
        shutil.copytree(source, dest, copy_function=copy, dirs_exist_ok=True)
    except _CopyFailed as failed:
        raise failed.error from failed.__cause__


def describe_copy_error(exc: shutil.Error) -> str:
    """One line for a `shutil.Error` (its argument is a list of (source, destination, reason) tuples)."""
    failures = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
    if not failures or not isinstance(failures[0], tuple) or len(failures[0]) != 3:
        return str(exc)[:300]
    source, dest, why = failures[0]
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return f"could not copy {source} to {dest}: {why}{more}"


def check_writable(folder: Path) -> None:
    """Raise the operating system's error now if `folder` cannot be created or written (read-only, a file in the
    way, no permission), rather than after minutes of work whose result could not be saved. Nothing is created: a
    missing folder is checked where it would be made (its nearest existing parent), so a run that fails later leaves
    no empty folders behind."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():  # a file where a folder must go
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:  # name the folder, not the probe file
        raise OSError(exc.errno, exc.strerror, str(folder)) from exc


def raise_if_disk_full(folder: Path, exc: BaseException, margin_bytes: int = 16 * 2**20) -> None:
    """Raise ENOSPC (from `exc`) if the disk under `folder` is (nearly) full: C++ libraries such as OpenVINO report a
    full disk as a generic stream error ("basic_ios::clear: iostream error"). Call it before cleaning up."""
    if shutil.disk_usage(folder).free < margin_bytes:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder)) from exc


def remove_stale_partials(parent: Path, name: str) -> list[Path]:
    """Delete temporary folders left by killed writes of `parent/name`; returns what was removed."""
    removed = []
    if parent.is_dir():
        for path in parent.glob(f".{name}{PARTIAL_MARKER}*"):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` through a temporary file and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename (for binary files such as .pptx or .png)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with errors_name(path):
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_json(path: Path, data: Any) -> None:
    """Atomically write `data` as indented JSON."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None if it is missing, unreadable or not an object (a manifest not to trust)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def append_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Append whole lines and flush them to disk, so a crash leaves at most one torn last line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with errors_name(path), path.open("a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: Path, drop_torn_tail: bool = True) -> list[dict[str, Any]]:
    """Read a JSONL file. A torn final line (from an interrupted append) is dropped and cut off the file.

    A malformed line anywhere else raises ``ValueError`` naming the line number.
    """
    path = Path(path)
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    records: list[dict[str, Any]] = []
    good_bytes = 0
    for number, line in enumerate(lines, start=1):
        is_last = number == len(lines)
        if not line.strip():
            good_bytes += len(line) + (0 if is_last else 1)
            continue
        try:
            # decoded here, not by json.loads, which would guess UTF-16 or UTF-32 from the bytes
            record = json.loads(line.decode("utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            torn = is_last or (number == len(lines) - 1 and not lines[-1])
            if torn and drop_torn_tail and not raw.endswith(b"\n"):
                with path.open("r+b") as handle:
                    handle.truncate(good_bytes)
                break
            if isinstance(exc, UnicodeDecodeError):
                raise ValueError(f"{path}, line {number}: not UTF-8 text (a binary file, or saved in another encoding "
                                 "such as UTF-16): save it as UTF-8 JSONL.") from exc
            raise ValueError(f"{path}, line {number}: not a JSON object ({exc}).") from exc
        if b"\\u" in line and not is_text(json.dumps(record, ensure_ascii=False)):
            raise ValueError(f"{path}, line {number}: holds a lone surrogate escape (\\ud800-\\udfff without its "
                             "pair), which is not Unicode text: fix or remove that escape.")
        records.append(record)
        good_bytes += len(line) + (0 if is_last else 1)
    return records


def not_a_readable_file(path: Path) -> str | None:
    """Why `path` cannot be read as an input file, as the end of a sentence ("does not exist", "is a folder", "is not a
    regular file ..."), or None. /dev/null or a pipe exists but is no file of records."""
    path = Path(path)
    if path.is_dir():
        return "is a folder"
    if path.is_file():
        return None
    if path.exists():
        return "is not a regular file (a device or a pipe)"
    return "does not exist"


def is_text(text: str) -> bool:
    """True if `text` is valid Unicode that can be written as UTF-8. A lone surrogate (from a JSON escape such as
    ``\\ud800``, or a non-UTF-8 byte on the command line, which Python keeps as ``\\udcff``) is not: tokenizers and
    OpenVINO fail on it deep inside with a traceback."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def file_digest(path: Path) -> str:
    """A short sha256 of a file's bytes (what decides whether data changed under a finished result)."""
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]
