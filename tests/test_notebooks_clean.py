"""Committed notebooks carry no outputs, and each opens with the lesson structure the README promises."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_stripped(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    dirty = [i for i, c in enumerate(notebook["cells"])
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; run `python scripts/clean_notebooks.py`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_structure(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    intro = "".join(cells[0]["source"])
    assert "You will learn" in intro and "costs" in intro
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert "TUTORIAL_PRESET" in code[0], "the first code cell is the parameters cell"
    assert "Recipe" in "".join(cells[-1]["source"]), "the last cell is a copy-paste recipe"
