"""Print this repository's Binder and Colab links, derived from `git remote get-url origin` (nothing to edit by hand).

Usage: ``python scripts/cloud_links.py [--branch main] [--remote origin] [--badges]``

Prints the Binder link (JupyterLab on the notebooks folder), one Colab link per notebook, and the first cell to run in
Colab (clone, install). ``--badges`` prints the two README badges as markdown instead.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def github_path(url: str) -> str:
    """``owner/repo`` from a GitHub remote URL (https or ssh form)."""
    match = re.match(r"^(?:https?://(?:[^@/]+@)?github\.com/|git@github\.com:|ssh://git@github\.com/)([^/]+/[^/]+?)(?:\.git)?/?$",
                     url.strip())
    if not match:
        raise SystemExit(f"The remote {url!r} is not a GitHub repository; Binder and Colab links need one "
                         "(push the repository to GitHub, or pass --remote NAME for another remote).")
    return match.group(1)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--remote", default="origin", help="git remote that points at GitHub (default: origin)")
    parser.add_argument("--branch", default="main", help="branch the links open (default: main)")
    parser.add_argument("--badges", action="store_true", help="print the README badges as markdown")
    args = parser.parse_args(argv)
    try:
        url = subprocess.run(["git", "-C", str(ROOT), "remote", "get-url", args.remote], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"No git remote {args.remote!r} here ({exc}); run this in a clone of the repository.") from None
    repo = github_path(url)
    binder = f"https://mybinder.org/v2/gh/{repo}/{args.branch}?urlpath=lab/tree/notebooks"
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    colab = {name: f"https://colab.research.google.com/github/{repo}/blob/{args.branch}/notebooks/{name}" for name in notebooks}
    if args.badges:
        print(f"[![Binder]({BINDER_BADGE})]({binder})")
        print(f"[![Open in Colab]({COLAB_BADGE})]({colab[notebooks[0]]})")
        return 0
    print(f"Binder:  {binder}")
    for link in colab.values():
        print(f"Colab:   {link}")
    name = repo.split("/")[1]
    print("\nFirst cell in Colab:\n"
          f"!git clone --depth 1 --branch {args.branch} https://github.com/{repo} && cd {name} && "
          "pip install -r requirements.txt && pip install --no-deps -e .\n"
          f"%cd {name}   # the repository root: helpers/ imports from here without a restart")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
