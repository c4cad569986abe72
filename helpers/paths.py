"""Where the tutorial keeps models and results: everything generated goes below one work folder.

The work folder is a parameter of every function that writes (``workdir=``). Left out, it is the default of
`settings.env_workdir` (``$TUTORIAL_WORKDIR``, else ``artifacts/`` at the repository root), resolved here and
only here.
"""

from __future__ import annotations

import os
from pathlib import Path

from .settings import REPO_ROOT, env_downloads, env_workdir

__all__ = ["REPO_ROOT", "default_output", "downloads_dir", "models_dir", "outputs_dir", "pruned_dir", "resolve_workdir"]

PathLike = str | os.PathLike[str]


def resolve_workdir(workdir: PathLike | None = None) -> Path:
    """`workdir` as an absolute folder (created on first use); None: the default work folder."""
    root = Path(workdir).expanduser().resolve() if workdir is not None else env_workdir()
    root.mkdir(parents=True, exist_ok=True)
    return root


def default_output(workdir: PathLike | None, *parts: str) -> Path:
    """Where a command writes when its output option is left out: `parts` below the work folder (nothing is created
    here, so a command refused before its work leaves no folder behind)."""
    root = Path(workdir).expanduser().resolve() if workdir is not None else env_workdir()
    return root.joinpath(*parts)


def pruned_dir(workdir: PathLike | None = None) -> Path:
    """Hugging Face folders of pruned and healed drafts (``<workdir>/pruned``, as notebook 05 keeps them); not created."""
    return default_output(workdir, "pruned")


def models_dir(workdir: PathLike | None = None) -> Path:
    """OpenVINO models, one sub-folder per model and weight format."""
    return resolve_workdir(workdir) / "models"


def outputs_dir(workdir: PathLike | None, name: str) -> Path:
    """A folder for one notebook's or command's outputs (tables, plots, decks)."""
    path = resolve_workdir(workdir) / "outputs" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def downloads_dir(workdir: PathLike | None = None, cache: PathLike | None = None) -> Path:
    """Fetched wheels and joined GGUF files: `cache`, else ``$TUTORIAL_DOWNLOADS`` (a cache shared by a room of
    laptops), else ``<workdir>/downloads`` (created)."""
    cache = cache if cache is not None else env_downloads()
    root = Path(cache).expanduser().resolve() if cache is not None else resolve_workdir(workdir) / "downloads"
    root.mkdir(parents=True, exist_ok=True)
    return root
