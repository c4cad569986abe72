"""Committed notebooks carry no outputs, each opens with the lesson structure the README promises, and each ends with
a recipe: a code cell that uses the libraries only (nbmake runs it with the rest of the notebook)."""

import ast
import builtins
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
    assert "settings.env_preset()" in code[0], "the first code cell is the parameters cell"


# What a recipe may import: the libraries the tutorial teaches, their dependencies and the standard library.
RECIPE_LIBRARIES = {"openvino", "openvino_genai", "openvino_tokenizers", "optimum", "nncf", "transformers", "torch",
                    "smolagents", "pptx", "numpy", "huggingface_hub", "datasets"}


def recipe_cells(cells: list[dict]) -> tuple[str, list[str]]:
    """The markdown cell that opens the recipe (the last one with a "Recipe" heading) and the code cells after it."""
    starts = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "## Recipe" in "".join(c["source"])]
    assert starts, "no '## Recipe' heading"
    start = starts[-1]
    return "".join(cells[start]["source"]), ["".join(c["source"]) for c in cells[start + 1:] if c["cell_type"] == "code"]


def free_names(tree: ast.AST) -> set[str]:
    """Names a piece of code reads without defining them itself (an approximation good enough for short recipes)."""
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store | ast.Del) else read).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return read - bound - set(dir(builtins))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_recipe_is_code_with_library_imports_only(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    heading, code = recipe_cells(cells)
    assert code, f"{path.name}: the recipe is markdown only; make it a code cell (nbmake runs it)"
    assert cells[-1]["cell_type"] == "code", f"{path.name}: the notebook ends with the recipe's code cell"
    assert "```python" not in heading, f"{path.name}: Python in the recipe belongs in a code cell, not in markdown"
    tree = ast.parse("\n".join(code))
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    import sys

    outside = {m for m in modules if m not in RECIPE_LIBRARIES and m not in sys.stdlib_module_names}
    assert not outside, f"{path.name}: the recipe imports {sorted(outside)}; use the libraries only (no helpers)"
    # Besides what it imports and defines, a recipe reads only the notebook's parameters and model paths (UPPER_CASE).
    borrowed = {name for name in free_names(tree) if not name.isupper()}
    assert not borrowed, f"{path.name}: the recipe uses {sorted(borrowed)} from earlier cells; define them in the recipe"


def _is_plot_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("plot_")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_is_displayed(path):
    """A cell that makes a figure shows it: the cell ends with an expression (the figure) or calls display().
    A figure made only to be saved (``plots.save_figure(plots.plot_...(...), path)``) is a copy of one shown before."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for number, cell in enumerate(cells):
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or "plot_" not in source:
            continue
        tree = ast.parse("\n".join(line for line in source.splitlines() if not line.startswith("%")))
        saved_only = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
                      and isinstance(node.func, ast.Attribute) and node.func.attr == "save_figure" for arg in node.args}
        made = [node for node in ast.walk(tree) if _is_plot_call(node) and id(node) not in saved_only]
        if not made:
            continue
        last = tree.body[-1]
        ends_with_value = isinstance(last, ast.Expr) and not (
            isinstance(last.value, ast.Call) and isinstance(last.value.func, ast.Name) and last.value.func.id == "print")
        assert ends_with_value or "display(" in source, f"{path.name} cell {number}: a figure is made but not shown"
