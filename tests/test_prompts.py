"""Prompt sources: built-in sets, standard-library coding tasks, JSONL files and (stand-in) Hugging Face datasets."""

import sys

import pytest

from helpers.errors import ConfigError, HubUnreachableError, MissingPackageError, PromptFileError
from helpers.prompts import STDLIB_TASKS, load_prompt_source, stdlib_prompts, user_text


def test_builtin_prompts_are_varied():
    prompts = load_prompt_source("builtin")
    assert len(prompts) >= 100 and len({p.id for p in prompts}) == len(prompts)
    assert {"coding", "code-completion", "chat", "summarise", "reasoning"} <= {p.category for p in prompts}
    assert len(load_prompt_source("builtin", limit=5)) == 5


def test_prompt_sources_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed, even where it is
    with pytest.raises(MissingPackageError, match="pip install datasets"):
        load_prompt_source("BAAI/Infinity-Instruct", limit=10)
    with pytest.raises(PromptFileError, match="neither"):
        load_prompt_source("no-such-thing")
    with pytest.raises(PromptFileError, match="does not exist"):
        load_prompt_source(str(tmp_path / "missing.jsonl"))
    with pytest.raises(ConfigError):
        load_prompt_source("builtin", limit=0)


def test_dataset_prompts_are_streamed_and_extracted(monkeypatch):
    """A stand-in for `datasets` (nothing leaves the machine): rows in the Infinity-Instruct layout."""
    import types

    calls = []

    def load_dataset(path, **kwargs):
        calls.append((path, kwargs))
        rows = [{"id": i, "conversations": [{"from": "human", "value": f"question {i}"}, {"from": "gpt", "value": "a"}]}
                for i in range(100)]
        rows.insert(2, {"id": "empty", "conversations": []})
        return iter(rows)

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    prompts = load_prompt_source("BAAI/Infinity-Instruct", limit=5, config_name="0625")
    assert [p.text for p in prompts] == [f"question {i}" for i in range(5)]
    assert prompts[0].id == "BAAI/Infinity-Instruct:0" and calls[0][1] == {"name": "0625", "split": "train", "streaming": True}

    def offline(path, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(HubUnreachableError, match="Cannot stream"):
        load_prompt_source("BAAI/Infinity-Instruct", limit=5)


def test_user_text_understands_common_layouts():
    assert user_text({"conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello"}]}) == "Hi?"
    assert user_text({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "Q"}]}) == "Q"
    assert user_text({"instruction": "Do it", "output": "done"}) == "Do it"
    assert user_text({"question": "", "weird": 3}) is None
    assert user_text({"body": "text"}, field="body") == "text"


def test_stdlib_prompts_are_many_varied_and_stable():
    prompts = stdlib_prompts()
    assert len(prompts) > 500 and len({p.id for p in prompts}) == len(prompts)
    assert {p.category for p in prompts} == {f"stdlib-{task}" for task, _ in STDLIB_TASKS}
    assert [p.id for p in stdlib_prompts(20)] == [p.id for p in prompts[:20]]  # same order every time
    explain = next(p for p in prompts if p.category == "stdlib-explain")
    assert "```python\ndef " in explain.text or "```python\n    def " in explain.text
    assert [p.id for p in load_prompt_source("stdlib", limit=7)] == [p.id for p in prompts[:7]]


def test_builtin_then_stdlib_is_the_suites_distillation_set():
    from helpers.prompts import builtin_distill_prompts, distillation_prompts

    builtin = builtin_distill_prompts()
    for count in (5, len(builtin), 360):
        assert load_prompt_source("builtin+stdlib", limit=count) == distillation_prompts(count)
    assert len(load_prompt_source("builtin+stdlib", limit=360)) == 360
    every = load_prompt_source("builtin+stdlib")
    assert every[:len(builtin)] == builtin and every[len(builtin):] == stdlib_prompts()
