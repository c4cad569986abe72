"""Hostile input and faults (issue 14), one class per section: model-written code cannot escape, no measurement is
lost, every resumable job survives a kill, a damaged model is never reused, limits and interrupts hold, and every
failure is one clear line."""

from __future__ import annotations

from pathlib import Path

from smolagents.models import ChatMessage, MessageRole, Model
from smolagents.monitoring import TokenUsage

from helpers import agent, agent_tools

# --- containment of model-written code ---------------------------------------------------------------------------------


class ScriptedModel(Model):
    """Test double: replies with fixed CodeAgent actions, in order."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies = list(replies)

    def generate(self, messages, stop_sequences=None, **kwargs):
        return ChatMessage(role=MessageRole.ASSISTANT, content=self.replies.pop(0), token_usage=TokenUsage(100, 20))


def _code(text: str) -> str:
    return f"Thought: try it.\n<code>{text}</code>"


def _run_script(tmp_path: Path, codes: list[str], **limits) -> agent.AgentRun:
    out = tmp_path / "decks"
    out.mkdir(exist_ok=True)
    tools = agent_tools.default_tools(out, agent_tools.choose_search_tool("offline"))
    replies = [_code(c) for c in codes] + [_code("final_answer('done')")]
    built = agent.build_agent(ScriptedModel(replies), tools, max_steps=len(replies), verbosity=0, **limits)
    return agent.run_agent(built, "hostile")


def test_model_code_cannot_reach_the_file_system(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    outside = tmp_path / "outside"
    attacks = {
        f"import pptx\npptx.Presentation().save({str(victim)!r})": "Import of pptx is not allowed",
        "import pptx.parts.image\nprint(pptx.parts.image.Image.from_file('/etc/passwd').blob)":
            "Import of pptx.parts.image is not allowed",
        "print(open('/etc/passwd').read())": "'open' is not among the explicitly allowed tools",
        f"import os\nos.remove({str(victim)!r})": "Import of os is not allowed",
        f"__import__('os').remove({str(victim)!r})": "'__import__' is not among",
        f"import random\nrandom._os.remove({str(victim)!r})": "Forbidden access to module: os",
        "make_slide_deck.output_dir.joinpath('x').write_text('x')": "has no attribute 'output_dir'",
        f"getattr(make_slide_deck, 'forward')({str(outside)!r}, [])": "'NoneType' object is not callable",
        "print('{0.__globals__}'.format(make_slide_deck))": "'.format(...)' is not allowed",
        "f = getattr('{0.__globals__}', 'format')": "Forbidden access to attribute: format",
        "import io, pathlib, shutil, subprocess": "Import of io is not allowed",
        "import time\ntime.sleep(1000)": "Import of time is not allowed",
        "web_search.sections.clear()": "has no attribute 'sections'",
    }
    run = _run_script(tmp_path, list(attacks))
    for step, (code, expected) in zip(run.steps, attacks.items(), strict=False):
        assert expected in step["error"], (code, step["error"])
        assert "root:" not in step["observation"]
    assert run.final_answer == "done"
    assert victim.read_text() == "keep me" and not outside.exists() and not (tmp_path / "decks" / "x").exists()


def test_the_slide_tool_writes_only_new_files_inside_its_folder(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "decks"
    out.mkdir()
    (out / "link.pptx").symlink_to(victim)
    (out / "folder.pptx").mkdir()
    deck = "title='Q', slides=[{'title': 't', 'bullets': ['b']}]"
    attacks = {
        f"make_slide_deck({deck}, filename={str(victim)!r})": "refused",
        f"make_slide_deck({deck}, filename='../victim.txt')": "refused",
        f"make_slide_deck({deck}, filename='link.pptx')": "resolves outside the output folder",
        f"make_slide_deck({deck}, filename='folder.pptx')": "to a folder",
        f"make_slide_deck({deck}, filename='a' * 300)": "keep it under 100",
        f"make_slide_deck({deck}, filename=['x'])": "filename must be a string",
    }
    run = _run_script(tmp_path, list(attacks))
    for step, (code, expected) in zip(run.steps, attacks.items(), strict=False):
        assert expected in step["error"], (code, step["error"])
    assert victim.read_text() == "keep me" and sorted(p.name for p in out.iterdir()) == ["folder.pptx", "link.pptx"]
    assert run.decks == []


def test_model_code_has_a_time_and_memory_cap(tmp_path):
    codes = ["total = 0\nfor i in range(10**9):\n    total += i",
             "big = 'a' * (3 * 1024**3)"]
    run = _run_script(tmp_path, codes, code_time_limit_s=1.0, code_memory_limit_mb=256)
    assert "ran longer than 1 s and was stopped" in run.steps[0]["error"]
    assert "more than 256 MiB of memory" in run.steps[1]["error"]
    assert run.final_answer == "done"
    big = bytearray(300 * 2**20)  # the cap is lifted after the step
    assert len(big) == 300 * 2**20
