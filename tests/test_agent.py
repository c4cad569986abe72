import json
import time
from types import SimpleNamespace

import openvino_genai as og
import pytest
from smolagents import ToolCallingAgent
from smolagents.memory import ActionStep
from smolagents.models import ChatMessage, MessageRole, Model
from smolagents.monitoring import TokenUsage

from helpers import agent, agent_model, agent_tools, slides
from helpers.commands import main
from helpers.errors import ConfigError, ToolInputError

CODE_STOPS = ["Observation:", "Calling tools:", "</code>"]


def _user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=[{"type": "text", "text": text}])]


# --- pure text handling ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "opens", "thinking", "answer"), [
    ("plain answer", False, "", "plain answer"),
    ("<think>\nplan it\n</think>\n\nThe answer", False, "plan it", "The answer"),
    ("  <think>\n\n</think>\n\nanswer", False, "", "answer"),
    ("<think>cut off by the token limit", False, "cut off by the token limit", ""),
    ("reasoning here</think>answer", True, "reasoning here", "answer"),
])
def test_split_thinking(text, opens, thinking, answer):
    assert agent_model.split_thinking(text, opens) == (thinking, answer)


TEXT = ("<think>\nCall the search. Observation: inside thinking is fine\n</think>\n\n"
        "Thought: go\n<code>x = 1</code>Observation: junk")


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 1000])
def test_answer_stream_is_chunking_independent(chunk_size):
    stream = agent_model.AnswerStream(CODE_STOPS)
    thinking, answer = "", ""
    for i in range(0, len(TEXT), chunk_size):
        t, a = stream.feed(TEXT[i:i + chunk_size])
        thinking, answer = thinking + t, answer + a
        assert "Observation" not in answer and "</co" not in answer, "no stop text is ever shown, not even half of it"
    t, a = stream.finish()
    assert (thinking + t, answer + a) == ("Call the search. Observation: inside thinking is fine", "Thought: go\n<code>x = 1")
    assert stream.stop_hit == "</code>" and stream.stopped


def test_answer_stream_releases_held_text_at_the_end():
    stream = agent_model.AnswerStream(["Observation:"])
    assert stream.feed("value: Obs") == ("", "value: ")  # 'Obs' might start a stop sequence
    assert stream.finish() == ("", "Obs")
    assert stream.stop_hit is None


def test_extract_tool_calls_skips_malformed_blocks():
    text = ('<tool_call>\n{"name": "web_search", "arguments": {"query": "Qwen3"}}\n</tool_call>'
            '<tool_call>{"name": broken json</tool_call>'
            '<tool_call>{"arguments": {}}</tool_call>'
            '<tool_call>{"name": "final_answer", "arguments": "{\\"answer\\": \\"done\\"}"}')
    calls = agent_model.extract_tool_calls(text)
    assert [c.function.name for c in calls] == ["web_search", "final_answer"]
    assert calls[0].function.arguments == {"query": "Qwen3"} and calls[1].function.arguments == {"answer": "done"}
    assert agent_model.extract_tool_calls("no calls at all") == []


# --- the model against a stand-in pipeline (deterministic text, so thinking and stops can be checked exactly) --------

class FakePipe:
    """Test double for LLMPipeline: streams a fixed text in chunks and reports PerfMetrics-like numbers."""

    def __init__(self, text: str, chunk: int = 4, prompt_tokens: int = 321, pause_s: float = 0.0) -> None:
        self.text, self.chunk, self.prompt_tokens, self.pause_s = text, chunk, prompt_tokens, pause_s
        self.templates: list[dict] = []

    def get_tokenizer(self):
        return self

    def apply_chat_template(self, history, add_generation_prompt, tools=None, extra_context=None):
        self.templates.append({"history": history, "tools": tools, "extra_context": extra_context})
        return "PROMPT " + json.dumps(history)

    def encode(self, prompt):
        return SimpleNamespace(input_ids=SimpleNamespace(get_shape=lambda: [1, self.prompt_tokens]))

    def generate(self, prompts, config, streamer):
        emitted = 0
        for i in range(0, len(self.text), self.chunk):
            emitted += 1
            if streamer(self.text[i:i + self.chunk]) == og.StreamingStatus.STOP:
                break
            time.sleep(self.pause_s)
        mean = lambda v: SimpleNamespace(mean=v)  # noqa: E731
        metrics = SimpleNamespace(
            get_ttft=lambda: mean(5.0), get_tpot=lambda: mean(2.0), get_throughput=lambda: mean(500.0),
            get_generate_duration=lambda: mean(50.0), get_num_input_tokens=lambda: self.prompt_tokens,
            get_num_generated_tokens=lambda: emitted, get_load_time=lambda: 1.0)
        # Like the real speculative pipeline after a STOP, the result may hold text the streamer never saw.
        return SimpleNamespace(texts=[self.text + " unvalidated"], perf_metrics=metrics, extended_perf_metrics=None)


@pytest.mark.parametrize("enable_thinking", [True, False])
def test_thinking_stays_out_of_the_answer_and_stops_trim_it(enable_thinking):
    pipe = FakePipe(TEXT)
    seen = []
    model = agent_model.OpenVINOGenAIModel(pipe, max_new_tokens=64, enable_thinking=enable_thinking, on_thinking=seen.append)
    message = model.generate(_user("make slides"), stop_sequences=[*CODE_STOPS, ""])
    assert message.content == "Thought: go\n<code>x = 1"
    assert "".join(seen) == message.raw["thinking"] == "Call the search. Observation: inside thinking is fine"
    assert message.token_usage.input_tokens == 321 and message.token_usage.output_tokens == model.calls[0].run.generated_tokens
    assert model.calls[0].stop == "</code>" and model.calls[0].thinking
    assert pipe.templates[0]["extra_context"] == {"enable_thinking": enable_thinking}
    assert pipe.templates[0]["history"] == [{"role": "user", "content": "make slides"}]


def test_stream_yields_the_same_answer_and_usage_last():
    model = agent_model.OpenVINOGenAIModel(FakePipe(TEXT, chunk=3), max_new_tokens=64)
    deltas = list(model.generate_stream(_user("go"), stop_sequences=CODE_STOPS))
    assert "".join(d.content or "" for d in deltas) == "Thought: go\n<code>x = 1"
    assert all(d.token_usage is None for d in deltas[:-1]) and deltas[-1].token_usage.input_tokens == 321
    assert model.calls[-1].streamed


def test_closing_the_stream_early_stops_generation():
    pipe = FakePipe("word " * 200, chunk=5, pause_s=0.02)  # 4 s if it ran to the end
    model = agent_model.OpenVINOGenAIModel(pipe, max_new_tokens=64)
    stream = model.generate_stream(_user("go"))
    assert next(stream).content
    stream.close()
    assert model.calls[-1].run.generated_tokens < 200


def test_tool_calls_are_parsed_and_tools_reach_the_template():
    pipe = FakePipe('<tool_call>{"name": "web_search", "arguments": {"query": "Qwen3"}}</tool_call>')
    model = agent_model.OpenVINOGenAIModel(pipe)
    tool = agent_tools.OfflineSearchTool()
    message = model.generate(_user("search"), tools_to_call_from=[tool])
    assert message.tool_calls[0].function.name == "web_search"
    assert pipe.templates[0]["tools"][0]["function"]["name"] == "web_search"


def test_context_overflow_and_bad_settings_are_clear():
    model = agent_model.OpenVINOGenAIModel(FakePipe("x", prompt_tokens=5000), context_length=4096)
    with pytest.raises(ConfigError, match="context"):
        model.generate(_user("hi"))
    with pytest.raises(ConfigError, match="need a draft"):
        agent_model.OpenVINOGenAIModel(FakePipe("x"), num_assistant_tokens=3)
    with pytest.raises(ConfigError, match="num_assistant_tokens"):
        agent_model.OpenVINOGenAIModel(FakePipe("x"), speculative=True, num_assistant_tokens=99)


# --- search tools ------------------------------------------------------------------------------------------------------

def test_offline_search_finds_the_right_section():
    search = agent_tools.OfflineSearchTool()
    assert "mixture-of-experts" in search("MoE experts active parameters").split("\n\n")[1]
    assert "License" in search("Which license allows commercial use?").split("\n\n")[1]
    assert search("Qwen3").startswith("## Search Results (offline notes")  # broad query: overview sections
    with pytest.raises(ToolInputError, match="non-empty query"):
        search.forward("  ")


def test_search_choice_without_network_is_offline_and_says_so():
    assert agent_tools.internet_reachable("https://name.invalid", timeout_s=2)[0] is False  # .invalid never resolves


def test_the_network_probe_gives_up_on_time(monkeypatch):
    monkeypatch.setattr(agent_tools.urllib.request, "urlopen", lambda *args, **kwargs: time.sleep(30))
    assert agent_tools.internet_reachable(timeout_s=0.2) == (False, "no answer within 0.2 s")
    choice = agent_tools.choose_search_tool("auto", timeout_s=0.2)
    assert not choice.online and "no internet" in choice.message and "offline notes" in choice.message


def test_search_choice_can_be_forced_offline():
    choice = agent_tools.choose_search_tool("offline")
    assert not choice.online and isinstance(choice.tool, agent_tools.OfflineSearchTool) and "offline" in choice.message
    with pytest.raises(ConfigError):
        agent_tools.choose_search_tool("sometimes")


def test_web_search_falls_back_to_the_notes_when_a_search_fails():
    class Failing:
        def forward(self, query):
            raise ConnectionError("rate limited")

    tool = agent_tools.WebSearchWithFallback(Failing(), agent_tools.OfflineSearchTool())
    answer = tool("Qwen3 languages")
    assert answer.startswith("(web search failed: ConnectionError: rate limited") and "119 languages" in answer


# --- scripted end-to-end run: a test double drives the real tools -----------------------------------------------------

class ScriptedModel(Model):
    """Test double: replies with fixed CodeAgent actions, good and bad, in order."""

    def __init__(self, replies):
        super().__init__()
        self.replies = list(replies)

    def generate(self, messages, stop_sequences=None, **kwargs):
        return ChatMessage(role=MessageRole.ASSISTANT, content=self.replies.pop(0), token_usage=TokenUsage(100, 20))


def test_scripted_agent_builds_a_deck_through_the_real_tools(tmp_path):
    spec = slides.demo_deck_spec()
    replies = [
        "Thought: search first.\n<code>print(web_search('Qwen3 model sizes'))</code>",
        "Thought: many slides.\n<code>make_slide_deck(title='Q', slides=[{'title': 't', 'bullets': ['b']}] * 30)</code>",
        "Thought: save elsewhere.\n<code>make_slide_deck(title='Q', slides=[{'title': 't', 'bullets': ['b']}], "
        "filename='../../escape.pptx')</code>",
        "I will now write the slides, without any code block",
        "Thought: fix the syntax.\n<code>def (:</code>",
        "Thought: pptx is not for model code.\n<code>from pptx.util import Inches\nprint(Inches(1))</code>",
        f"Thought: write it.\n<code>path = make_slide_deck(title={spec['title']!r}, slides={spec['slides']!r}, "
        f"filename='qwen3.pptx', subtitle={spec['subtitle']!r})\nfinal_answer(path)</code>",
    ]
    tools = agent_tools.default_tools(tmp_path, agent_tools.choose_search_tool("offline"))
    run = agent.run_agent(agent.build_agent(ScriptedModel(replies), tools, max_steps=10, verbosity=0), agent.BLOG_TASK)
    deck = tmp_path.resolve() / "qwen3.pptx"
    assert run.final_answer == str(deck) and run.decks == [deck]
    errors = [s["error"] for s in run.steps]
    assert "Model sizes" in run.steps[0]["observation"]
    assert "keep at most 15" in errors[1] and "refused" in errors[2] and "regex pattern" in errors[3]
    assert "SyntaxError" in errors[4] and "Import from pptx.util is not allowed" in errors[5] and errors[6] == ""
    read = slides.read_deck(deck)
    assert [s["title"] for s in read] == [spec["title"]] + [s["title"] for s in spec["slides"]]
    assert not list(tmp_path.glob("*escape*")) and not (tmp_path.parent.parent / "escape.pptx").exists()


def test_a_step_that_writes_a_deck_tells_the_model_to_answer(tmp_path):
    replies = [
        "Thought: write it.\n<code>make_slide_deck(title='Q', slides=[{'title': 't', 'bullets': ['b']}])</code>",
        "Thought: done.\n<code>print('no deck here')</code>",
        "Thought: done.\n<code>final_answer('ok')</code>",
    ]
    tools = agent_tools.default_tools(tmp_path, agent_tools.choose_search_tool("offline"))
    run = agent.run_agent(agent.build_agent(ScriptedModel(replies), tools, max_steps=5, verbosity=0), agent.BLOG_TASK)
    deck = tmp_path.resolve() / slides.DEFAULT_FILENAME
    assert run.decks == [deck] and run.final_answer == "ok"
    note = f"The deck is written: {deck}. The task is done: the next code must be only final_answer("
    assert note in run.steps[0]["observation"]
    assert "deck is written" not in run.steps[1]["observation"]  # only the step that wrote one


# --- the real OpenVINO GenAI model on the tiny pair --------------------------------------------------------------------

@pytest.fixture(scope="module")
def sd_model(tiny_models):
    return agent_model.OpenVINOGenAIModel.from_folders(tiny_models.target, "CPU", draft_dir=tiny_models.draft, max_new_tokens=24)


def test_tiny_code_agent_runs_to_max_steps_without_crashing(sd_model, tmp_path):
    sd_model.reset_calls()
    tools = agent_tools.default_tools(tmp_path, agent_tools.choose_search_tool("offline"))
    run = agent.run_agent(agent.build_agent(sd_model, tools, max_steps=2, stream=True, verbosity=0), agent.BLOG_TASK)
    assert [s["kind"] for s in run.steps] == ["action", "action", "final answer"]
    assert "AgentMaxStepsError" in run.steps[-1]["error"]
    assert [c.step for c in run.calls] == [1, 2, 3] and all(c.streamed for c in run.calls[:2])
    assert all(s["input_tokens"] > 0 and 0 < s["output_tokens"] <= 24 for s in run.steps)
    assert run.steps[0]["input_tokens"] > 1000, "the CodeAgent system prompt is thousands of tokens"
    assert all(0.0 <= s["acceptance_rate"] <= 1.0 for s in run.steps)
    record = run.record()
    assert record.generated_tokens == sum(c.run.generated_tokens for c in run.calls)
    assert record.draft_tokens >= record.accepted_tokens >= 0
    log = json.loads(run.to_json(tmp_path / "log.json").read_text())
    assert len(log["steps"]) == 3 and "pptx" not in str(log["settings"]["authorized_imports"])


def test_tiny_stream_and_generate_agree(sd_model):
    messages = _user("def add(a, b):")
    full = sd_model.generate(messages)
    deltas = list(sd_model.generate_stream(messages))
    assert "".join(d.content or "" for d in deltas) == full.content
    assert deltas[-1].token_usage.output_tokens == full.token_usage.output_tokens > 0
    assert deltas[-1].token_usage.input_tokens == full.token_usage.input_tokens > 0


def test_tiny_native_stop_strings_cut_the_answer(sd_model):
    messages = _user("def add(a, b):")
    full = sd_model.generate(messages).content
    words = full.split()
    assert len(words) >= 3, f"tiny output too short to test stops: {full!r}"
    stop = words[len(words) // 2]
    cut = sd_model.generate(messages, stop_sequences=[stop]).content
    assert full.startswith(cut) and stop not in cut and len(cut) < len(full)
    assert sd_model.calls[-1].stop == stop


def test_tiny_confidence_threshold_and_thinking_mode(tiny_models):
    model = agent_model.OpenVINOGenAIModel.from_folders(tiny_models.target, "CPU", draft_dir=tiny_models.draft, max_new_tokens=16,
                                                  assistant_confidence_threshold=0.3, enable_thinking=True)
    message = model.generate(_user("def add(a, b):"), stop_sequences=["Observation:"])
    assert model.label == "draft threshold=0.3" and model.num_assistant_tokens is None
    assert message.token_usage.output_tokens == model.calls[-1].run.generated_tokens <= 16
    assert 0.0 <= model.calls[-1].run.acceptance_rate <= 1.0


def test_tiny_tool_calling_agent_survives_unparsable_output(sd_model, tmp_path):
    tools = agent_tools.default_tools(tmp_path, agent_tools.choose_search_tool("offline"))
    tool_agent = ToolCallingAgent(tools=tools, model=sd_model, max_steps=1, verbosity_level=0)
    answer = tool_agent.run("Make slides about Qwen3")
    errors = [type(s.error).__name__ for s in tool_agent.memory.steps if isinstance(s, ActionStep)]
    assert errors == ["AgentParsingError", "AgentMaxStepsError"], "gibberish is a parsing error the agent logs, not a crash"
    assert isinstance(answer, str)
    assert sd_model.calls[-2].answer and sd_model.calls[-2].stop is None


def test_compare_with_and_without_draft_is_interleaved(sd_model, tiny_models, tmp_path):
    base = agent_model.OpenVINOGenAIModel.from_folders(tiny_models.target, "CPU", max_new_tokens=16)
    sd_model.max_new_tokens = 16
    comparison = agent.compare_agents([base, sd_model], agent.BLOG_TASK, lambda: agent_tools.default_tools(
        tmp_path, agent_tools.choose_search_tool("offline")), repeats=2, max_steps=1, progress=False)
    assert [r.label for r in comparison.runs] == ["target alone", "draft k=3", "draft k=3", "target alone"]
    rows = {r["label"]: r for r in comparison.summary()}
    assert rows["target alone"]["acceptance_rate"] is None and 0 <= rows["draft k=3"]["acceptance_rate"] <= 1
    assert rows["draft k=3"]["speedup"] > 0 and rows["target alone"]["agent_steps"] >= 1
    assert {r["label"] for r in comparison.step_rows()} == {"target alone", "draft k=3"}
    work = comparison.work_rows()
    assert [r["label"] for r in work][:2] == ["target alone", "draft k=3"], "the baseline first within a kind of step"
    data = json.loads(comparison.to_json(tmp_path / "compare.json").read_text())
    assert len(data["agent_runs"]) == 4 and data["baseline"] == "target alone"
    split = {row["label"]: row for row in data["agent_time_split"]}
    for row in split.values():  # the parts add up to the wall time, none negative
        assert min(row["prefill_s"], row["decode_s"], row["other_s"]) >= 0
        assert row["prefill_s"] + row["decode_s"] + row["other_s"] == pytest.approx(row["wall_s"], rel=0.25)
    baseline = split["target alone"]
    assert baseline["decode_free_ceiling"] == pytest.approx(
        baseline["wall_s"] / (baseline["prefill_s"] + baseline["other_s"]))


def test_a_lazy_model_gets_a_fresh_pipeline_for_each_run(sd_model, tiny_models, tmp_path):
    loaded = []

    def load():
        loaded.append(agent_model.OpenVINOGenAIModel.from_folders(tiny_models.target, "CPU", max_new_tokens=8))
        return loaded[-1]

    sd_model.max_new_tokens = 8
    comparison = agent.compare_agents([agent.LazyModel("fresh target", load), sd_model], agent.BLOG_TASK,
                                      lambda: agent_tools.default_tools(tmp_path, agent_tools.choose_search_tool("offline")),
                                      repeats=2, max_steps=1, progress=False)
    assert len(loaded) == 2 and loaded[0] is not loaded[1]  # one load per run
    assert [r.label for r in comparison.runs] == ["fresh target", "draft k=3", "draft k=3", "fresh target"]
    assert comparison.result.settings["models"]["fresh target"]["pipeline per run"] is True
    assert comparison.result.settings["models"]["draft k=3"]["pipeline per run"] is False
    fresh_runs = [r for r in comparison.runs if r.label == "fresh target"]
    assert [len(m.calls) for m in loaded] == [len(r.calls) for r in fresh_runs]  # the warm-up call is not in a run


def test_cli_agent_writes_a_run_log(tiny_models, tmp_path, capsys):
    assert main(["agent", "--preset", "tiny", "--max-steps", "1", "--max-new-tokens", "8", "--search", "offline",
                 "--quiet", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "offline notes" in out and "run log:" in out
    log = json.loads(next(tmp_path.glob("run-*.json")).read_text())
    assert log["settings"]["preset"] == "tiny" and log["steps"][0]["input_tokens"] > 0


def test_cli_agent_runs_several_tasks_on_one_pipeline(tiny_models, tmp_path, capsys):
    assert main(["agent", "--preset", "tiny", "--max-steps", "1", "--max-new-tokens", "8", "--search", "offline",
                 "--quiet", "--no-draft", "--output-dir", str(tmp_path), "--task", "First deck", "--task",
                 "Second deck"]) == 0
    out = capsys.readouterr().out
    assert out.count("model setup:") == 1, "one pipeline for both tasks"
    assert "task 1 of 2: First deck" in out and "task 2 of 2 (same pipeline" in out
    logs = [json.loads(path.read_text()) for path in tmp_path.glob("run-*.json")]
    assert sorted(log["task"] for log in logs) == ["First deck", "Second deck"]


def test_an_earlier_task_leaves_only_the_shared_prefix_in_the_cache(sd_model, tiny_models, tmp_path):
    prompts: list[str] = []
    loaded = []

    def load():
        model = agent_model.OpenVINOGenAIModel.from_folders(tiny_models.target, "CPU", max_new_tokens=8)
        render = model.render_prompt
        model.render_prompt = lambda *a, **k: prompts.append(render(*a, **k)) or prompts[-1]
        loaded.append(model)
        return model

    sd_model.max_new_tokens = 8
    task, earlier = agent.AGENT_TASKS[1], agent.EARLIER_TASK
    comparison = agent.compare_agents([agent.LazyModel("warm target", load), sd_model], task,
                                      lambda: agent_tools.default_tools(tmp_path, agent_tools.choose_search_tool("offline")),
                                      repeats=1, max_steps=1, progress=False, earlier_task=earlier)
    served = next(p for p in prompts if earlier in p)
    timed = next(p for p in prompts if task in p)
    assert prompts.index(served) < prompts.index(timed) and task not in served
    shared = served[:served.index(earlier)]  # everything before the task: system prompt, tools, chat framing
    assert timed.startswith(shared) and agent.AGENT_INSTRUCTIONS in shared and "make_slide_deck" in shared
    assert earlier not in timed
    run = next(r for r in comparison.runs if r.label == "warm target")
    assert len(loaded[0].calls) == len(run.calls) >= 1, "the served call is not part of the timed run"
    assert comparison.result.settings["earlier task"] == earlier
    assert comparison.result.settings["models"]["warm target"]["earlier task served"] is True


def test_the_earlier_task_must_differ_from_the_measured_ones():
    never = [agent.LazyModel(label, lambda: pytest.fail("nothing loads before the settings are checked"))
             for label in ("a", "b")]
    with pytest.raises(ConfigError, match="must differ"):
        agent.compare_agents(never, agent.BLOG_TASK, lambda: [], earlier_task=f" {agent.BLOG_TASK} ")
    with pytest.raises(ConfigError, match="earlier task some text"):  # refused before any pipeline loads too
        agent.compare_agents(never, agent.BLOG_TASK, lambda: [], earlier_task="  ")


def test_an_empty_task_is_refused_in_one_line(sd_model, tmp_path, capsys):
    with pytest.raises(ConfigError, match="Give the agent a task"):
        agent.run_agent(agent.build_agent(sd_model, [], max_steps=1, verbosity=0), "   ")
    assert main(["agent", "--preset", "tiny", "--quiet", "--output-dir", str(tmp_path), "--task", "Slides", "--task",
                 " "]) != 0
    err = capsys.readouterr().err
    # refused by the command line's check of empty values, before any model loads
    assert err.count("\n") == 1 and "--task is given an empty value" in err and not list(tmp_path.glob("run-*.json"))
