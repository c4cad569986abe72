"""Unbalanced brackets and escaped quotes in model-written code are repaired only when that makes the code parse."""

import ast

import pytest

from helpers.code_repair import balance_brackets, repair_code

# The slip measured on the offline pair: one '}' too many after a long list of slide dicts.
EXTRA_CLOSER = ("make_slide_deck(title=\"Qwen3\", slides=[{'title': 'A', 'bullets': ['x (1)', 'y']}, "
                "{'title': 'B', 'bullets': ['None']}]}, filename=\"q.pptx\")")


@pytest.mark.parametrize(("code", "expected"), [
    (EXTRA_CLOSER, EXTRA_CLOSER.replace("]}]}, filename", "]}], filename")),
    ("x = [{'a': 1, 'b': [2, 3]]\nprint(x)", "x = [{'a': 1, 'b': [2, 3]}]\nprint(x)"),  # a skipped '}'
    ("result = f(g(1, 2)\nprint(result)", None),  # missing ')' mid-code: closing it at the end would not parse
    ("items = [1, 2, (3, 4\n", "items = [1, 2, (3, 4\n)]"),  # left open at the end
    ("s = ')]}'\nt = \"{[(\"  # )]}\nu = [1]]", "s = ')]}'\nt = \"{[(\"  # )]}\nu = [1]"),  # strings, comments skipped
    ("doc = '''a ) b\n} c'''\nv = (1))", "doc = '''a ) b\n} c'''\nv = (1)"),
])
def test_repairs_only_brackets_and_only_when_the_result_parses(code, expected):
    repair = balance_brackets(code)
    if expected is None:
        assert repair is None
        return
    assert repair is not None and repair.code == expected
    ast.parse(repair.code)
    assert repair.changes and "did not parse" in repair.note()


@pytest.mark.parametrize("code", ["print('fine')", "x = {'a': [1, (2, 3)]}", "def f(:\n    pass", "x = 'open"])
def test_leaves_valid_code_and_other_syntax_errors_alone(code):
    assert balance_brackets(code) is None


def test_contained_executor_runs_the_repaired_code_and_tells_the_model():
    from helpers.agent_executor import ContainedPythonExecutor

    executor = ContainedPythonExecutor()
    executor.send_tools({})
    output = executor("values = [{'n': 1}, {'n': 2}]]\nprint(sum(v['n'] for v in values))")
    assert "3" in output.logs and "removed an unmatched ']'" in output.logs
    assert len(executor.repairs) == 1


# The second slip measured on the offline pair (greedy, so every retry repeated it): the quotes that delimit the later
# strings written escaped, and one '}' too many at the end.
ESCAPED_QUOTES = ("make_slide_deck(title=\"Qwen3\", slides=[{'title': 'Overview', 'bullets': ['Qwen3 is new.', "
                  "'Drafts share the tokenizer.\\']}, {'title': 'Sizes', 'bullets': [\\'Dense: 0.6B to 32B.\\']}, "
                  "{'title': 'Last', 'bullets': [\\'None\\']}]}, filename=\"q.pptx\", subtitle=\"S\")")


def test_escaped_delimiting_quotes_are_unescaped_then_brackets_balanced():
    assert balance_brackets(ESCAPED_QUOTES) is None  # brackets alone cannot fix it
    repair = repair_code(ESCAPED_QUOTES)
    assert repair is not None and repair.changes[0].startswith("unescaped 5 quote(s)")
    assert "removed an unmatched '}'" in repair.changes[1]
    call = ast.parse(repair.code).body[0].value
    slides = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "slides"))
    assert [s["title"] for s in slides] == ["Overview", "Sizes", "Last"] and slides[1]["bullets"] == ["Dense: 0.6B to 32B."]


@pytest.mark.parametrize("code", ["x = 'don\\'t' + (", "print('fine')", "s = 'it\\'s'"])
def test_quotes_that_are_meant_escaped_are_left_alone(code):
    repair = repair_code(code)
    assert repair is None or "unescaped" not in " ".join(repair.changes)
