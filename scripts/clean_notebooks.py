"""Strip outputs, execution counts and editor metadata from notebooks, so git diffs stay readable.

Usage: ``python scripts/clean_notebooks.py [NOTEBOOK ...]`` (default: every notebook in notebooks/).
The test suite fails on a committed notebook with outputs; run this before committing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def clean(path: Path) -> bool:
    """Clean one notebook in place; True if it changed."""
    original = path.read_text(encoding="utf-8")
    notebook = json.loads(original)
    notebook["metadata"] = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    for cell in notebook["cells"]:
        cell["metadata"] = {}
        cell.pop("id", None)
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    notebook["nbformat"], notebook["nbformat_minor"] = 4, 4
    cleaned = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    if cleaned != original:
        path.write_text(cleaned, encoding="utf-8")
        return True
    return False


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv] or sorted(Path(__file__).resolve().parent.parent.glob("notebooks/*.ipynb"))
    for path in paths:
        if clean(path):
            print(f"cleaned {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
