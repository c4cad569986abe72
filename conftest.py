"""Session set-up shared by the unit tests and the notebook runs (nbmake kernels inherit this environment)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def pytest_configure(config) -> None:
    # One work folder per test session: the tiny pair is built and converted once, then reused by every test and
    # notebook. Set TUTORIAL_TEST_WORKDIR to keep it between sessions while developing.
    workdir = os.environ.get("TUTORIAL_TEST_WORKDIR") or tempfile.mkdtemp(prefix="tutorial-tests-")
    os.environ["TUTORIAL_WORKDIR"] = workdir
    os.environ["TUTORIAL_PRESET"] = "tiny"
    os.environ.setdefault("TUTORIAL_DEVICE", "CPU")
    os.environ["HF_HUB_OFFLINE"] = "1"  # tests never touch the hub, even on a connected machine
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["MPLBACKEND"] = "Agg"
    # Notebook kernels and subprocesses import this checkout's helpers, also when the venv's editable install points at
    # another checkout (a git worktree sharing one venv would otherwise run its notebooks on the other copy's code).
    root = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])


def pytest_collection_modifyitems(config, items) -> None:
    # Notebook runs (nbmake) take most of the suite's time: `-m "not notebook"` skips them while iterating.
    import pytest

    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.notebook)
