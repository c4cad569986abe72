"""Where the tutorial keeps models and results.

Everything generated goes below one work folder: ``$TUTORIAL_WORKDIR`` if set, else ``artifacts/`` at the root of the
repository (ignored by git). CI and the tests point the variable at a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

WORKDIR_ENV = "TUTORIAL_WORKDIR"
PRESET_ENV = "TUTORIAL_PRESET"
DEVICE_ENV = "TUTORIAL_DEVICE"

REPO_ROOT = Path(__file__).resolve().parent.parent


def workdir() -> Path:
    """The folder that holds converted models, datasets and results (created on first use)."""
    configured = os.environ.get(WORKDIR_ENV)
    root = Path(configured).expanduser() if configured else REPO_ROOT / "artifacts"
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def models_dir() -> Path:
    """OpenVINO models, one sub-folder per model and weight format."""
    return workdir() / "models"


def outputs_dir(name: str) -> Path:
    """A folder for one notebook's or command's outputs (tables, plots, decks)."""
    path = workdir() / "outputs" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def use_workdir(path: str | os.PathLike[str] | None) -> Path:
    """Point every helper at `path` (the notebooks' parameters cell calls this); None keeps the default."""
    if path:
        os.environ[WORKDIR_ENV] = str(Path(path).expanduser().resolve())
    return workdir()
