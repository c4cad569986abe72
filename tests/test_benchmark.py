import json

import pytest

from helpers.benchmark import BenchmarkResult, Candidate, harness_overhead, measure, run_interleaved
from helpers.errors import PromptFileError
from helpers.generation import chat_prompt, generation_config, load_pipeline
from helpers.prompts import builtin_prompts, load_prompts


@pytest.fixture(scope="module")
def target_pipe(tiny_models):
    return load_pipeline(tiny_models.target, "CPU")


def test_builtin_prompts_cover_the_agent_work():
    prompts = builtin_prompts()
    categories = {p.category for p in prompts}
    assert {"chat", "coding", "summarise", "reasoning/tool-use"} <= categories
    lengths = sorted(len(p.text) for p in prompts)
    assert lengths[0] < 100 and lengths[-1] > 2000  # short and long inputs


def test_load_prompts_accepts_text_or_prompt(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "text": "hello"}\n{"prompt": "world"}\n')
    prompts = load_prompts(path)
    assert [(p.id, p.text) for p in prompts] == [("a", "hello"), ("p2", "world")]


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "holds no prompts"), ('{"text": ""}\n', "non-empty"), ("not json\n", "line 1"),
     ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "unique")],
)
def test_bad_prompt_files_are_named(tmp_path, content, message):
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(PromptFileError, match=message):
        load_prompts(path)
    with pytest.raises(PromptFileError, match="does not exist"):
        load_prompts(tmp_path / "missing.jsonl")


def test_measure_reads_perf_metrics(target_pipe):
    record = measure(target_pipe, chat_prompt(target_pipe, "hi"), generation_config(16, ignore_eos=True), "base", "p", 0)
    assert record.generated_tokens == 16
    assert record.input_tokens > 5
    assert record.ttft_ms > 0 and record.tpot_ms > 0 and record.throughput_tps > 0
    assert record.generate_ms >= record.ttft_ms
    assert record.load_ms > 0
    assert record.acceptance_rate is None  # no draft


def test_speculative_record_has_acceptance_and_cost(tiny_models):
    pipe = load_pipeline(tiny_models.target, "CPU", draft_dir=tiny_models.draft)
    record = measure(pipe, chat_prompt(pipe, "def f(x):"), generation_config(24, num_assistant_tokens=3, ignore_eos=True))
    assert 0.0 <= record.acceptance_rate <= 1.0
    assert record.accepted_tokens <= record.draft_tokens
    assert record.steps and record.steps < 24 + 1  # at least one step validated more than one token, or equal
    assert record.cost_ratio > 0


def test_interleaved_order_and_ratios(target_pipe, tmp_path):
    prompts = builtin_prompts()[:2]
    a = Candidate("a", target_pipe, generation_config(8, ignore_eos=True))
    b = Candidate("b", target_pipe, generation_config(8, ignore_eos=True))
    result = run_interleaved([a, b], prompts, repeats=2, warmup=0, progress=False)
    order = [(r.repeat, r.prompt_id, r.label) for r in result.records]
    assert order[:4] == [(0, prompts[0].id, "a"), (0, prompts[0].id, "b"), (0, prompts[1].id, "a"), (0, prompts[1].id, "b")]
    assert order[4][2] == "b"  # the order rotates on the next repeat
    rows = {r["label"]: r for r in result.summary()}
    assert rows["a"]["speedup"] == 1.0
    assert rows["b"]["identical_to_baseline"] == 1.0  # same pipeline, greedy: same text
    assert rows["b"]["speedup_lo"] <= rows["b"]["speedup"] <= rows["b"]["speedup_hi"]
    per_prompt = result.summary(by_prompt=True)
    assert len(per_prompt) == 4
    path = result.to_json(tmp_path / "r.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and len(data["runs"]) == 8 and data["machine"]["openvino"]
    again = BenchmarkResult.from_json(path)
    assert again.summary() == result.summary()


def test_pooled_acceptance_weighs_runs_by_what_they_drafted():
    from helpers.benchmark import RunRecord

    def run(prompt, accepted, drafted):
        return RunRecord("d", prompt, 0, 1.0, 1.0, 1.0, 1.0, 1, 1, acceptance_rate=accepted / drafted,
                         accepted_tokens=accepted, draft_tokens=drafted)

    runs = [run("short", 1, 2), run("long", 90, 100), run("other", 30, 100)]
    row = BenchmarkResult(records=runs, baseline="d").summary()[0]
    assert row["acceptance_rate"] == 0.5  # the median run
    assert row["acceptance_pooled"] == pytest.approx(121 / 202)
    assert BenchmarkResult(records=[run("x", 0, 1)], baseline="d").summary()[0]["acceptance_pooled"] == 0.0


def test_two_configurations_are_compared_pair_by_pair():
    from helpers.benchmark import RunRecord

    def run(label, prompt, repeat, tpot):
        return RunRecord(label, prompt, repeat, 1.0, tpot, 1.0, 1.0, 1, 1)

    # the machine slows down for the second repeat: both candidates slow with the reference, their gap stays
    runs = [run("ref", "a", 0, 100.0), run("fast", "a", 0, 50.0), run("slow", "a", 0, 80.0),
            run("ref", "a", 1, 200.0), run("fast", "a", 1, 100.0), run("slow", "a", 1, 160.0),
            run("ref", "b", 0, 100.0), run("fast", "b", 0, 100.0), run("slow", "b", 0, 50.0),
            run("ref", "c", 0, 100.0), run("fast", "c", 0, 50.0)]  # "slow" never ran on c: no pair
    result = BenchmarkResult(records=runs, baseline="ref")
    difference = result.speedup_difference("fast", "slow")
    assert difference["pairs"] == 3 and difference["wins"] == 2
    assert difference["difference"] == pytest.approx(0.75)  # 2.0 - 1.25 twice, 1.0 - 2.0 once
    assert difference["difference_lo"] == pytest.approx(-0.125) and difference["difference_hi"] == pytest.approx(0.75)
    assert result.speedup_difference("slow", "fast")["wins"] == 1
    assert result.speedup_difference("fast", "missing") is None


def test_interleaved_rejects_bad_input(target_pipe):
    a = Candidate("a", target_pipe, generation_config(4))
    with pytest.raises(ValueError, match="unique"):
        run_interleaved([a, a], builtin_prompts()[:1], repeats=1, warmup=0)
    with pytest.raises(PromptFileError):
        run_interleaved([a], [], repeats=1)
    with pytest.raises(ValueError, match="Baseline"):
        run_interleaved([a], builtin_prompts()[:1], repeats=1, warmup=0, baseline="zzz")


def test_harness_overhead_is_reported(target_pipe):
    overhead = harness_overhead(target_pipe, chat_prompt(target_pipe, "hi"), generation_config(8), repeats=3)
    assert overhead["overhead_lo"] <= overhead["overhead"] <= overhead["overhead_hi"]


def test_prefix_reuse_times_a_follow_up_against_a_control_for_each_mode(tiny_models, tmp_path, capsys):
    from helpers.commands import main
    from helpers.prefix_reuse import ReuseRun, prefilled_again

    path = tmp_path / "reuse.json"
    assert main(["prefix-reuse", "--preset", "tiny", "--answer-tokens", "24", "--repeats", "1", "--json",
                 str(path)]) == 0
    assert "answer_prefilled_again" in capsys.readouterr().out
    record = json.loads(path.read_text())
    assert [row["mode"] for row in record["summary"]] == ["plain", "prompt lookup", "draft"]
    for run in record["runs"]:  # the follow-up holds the answer, the control does not: more tokens, same first prompt
        assert run["own_answer_prompt_tokens"] > run["control_prompt_tokens"] > 0 and run["answer_tokens"] >= 1
    assert "python -m helpers prefix-reuse --preset tiny" in record["settings"]["command"]
    # the share is in units of prefilling the answer anew: reused -> 0, read again -> 1
    base = {"mode": "x", "repeat": 0, "first_prompt_tokens": 1000, "first_ttft_ms": 1000.0, "answer_tokens": 300,
            "own_answer_prompt_tokens": 1320, "control_prompt_tokens": 1020, "control_ttft_ms": 20.0}
    assert prefilled_again(ReuseRun(**base, own_answer_ttft_ms=20.0)) == 0.0
    assert prefilled_again(ReuseRun(**base, own_answer_ttft_ms=320.0)) == pytest.approx(1.0)
