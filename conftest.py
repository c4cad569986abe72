"""Session set-up shared by the unit tests and the notebook runs (nbmake kernels inherit this environment)."""

from __future__ import annotations

import os
import tempfile


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
    # Notebook kernels import `helpers` from this checkout, not from wherever the package was installed in editable
    # mode (a git worktree shares the main checkout's venv, whose editable install points at the main checkout).
    root = os.path.dirname(os.path.abspath(__file__))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)


def pytest_collection_modifyitems(config, items) -> None:
    # Notebook runs (nbmake) take most of the suite's time: `-m "not notebook"` skips them while iterating.
    import pytest

    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.notebook)
