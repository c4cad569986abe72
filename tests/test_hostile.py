"""Hostile input and faults (issue 14), one class per section: model-written code cannot escape, no measurement is
lost, every resumable job survives a kill, a damaged model is never reused, limits and interrupts hold, and every
failure is one clear line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from smolagents.models import ChatMessage, MessageRole, Model
from smolagents.monitoring import TokenUsage

from helpers import agent, agent_tools, benchmark, conversion, generation
from helpers.benchmark import BenchmarkResult, RunRecord, median
from helpers.commands import main
from helpers.errors import AgentStoppedError, ConfigError, ModelFolderError
from helpers.prompts import Prompt

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


# --- no measurement lost -----------------------------------------------------------------------------------------------

def _record(label: str, prompt_id: str, repeat: int, tpot: float, acceptance: float | None) -> RunRecord:
    return RunRecord(label=label, prompt_id=prompt_id, repeat=repeat, ttft_ms=10.0, tpot_ms=tpot, throughput_tps=1.0,
                     generate_ms=100.0, input_tokens=5, generated_tokens=8, acceptance_rate=acceptance)


def test_undefined_metrics_are_excluded_not_ordered():
    nan = float("nan")
    base = [_record("base", f"p{i}", 0, 20.0, None) for i in range(3)]
    runs = [_record("sd", "p0", 0, 10.0, 0.5), _record("sd", "p1", 0, nan, nan), _record("sd", "p2", 0, 10.0, 0.7)]
    for order in (runs, runs[::-1], [runs[1], runs[0], runs[2]]):
        row = BenchmarkResult(records=base + order, baseline="base").summary()[1]
        assert row["acceptance_rate"] == pytest.approx(0.6) and row["speedup"] == pytest.approx(2.0)
    assert median([nan, None]) is None and median([3.0, nan, 1.0]) == 2.0
    assert "NaN" not in json.dumps(BenchmarkResult(records=base + runs, baseline="base").to_dict())


def test_a_crash_keeps_every_run_measured_so_far(monkeypatch, tmp_path):
    calls = {"n": 0}

    def flaky_measure(pipe, text, config, label="", prompt_id="", repeat=0, streamer=None):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("the machine ran out of patience")
        return _record(label, prompt_id, repeat, 10.0, None)

    monkeypatch.setattr(benchmark, "measure", flaky_measure)
    monkeypatch.setattr(benchmark, "chat_prompt", lambda pipe, text, thinking: text)
    partial = benchmark.partial_results_path(tmp_path / "bench.json")
    candidates = [benchmark.Candidate("a", None, None), benchmark.Candidate("b", None, None)]
    prompts = [Prompt("p1", "test", "x"), Prompt("p2", "test", "y")]
    with pytest.raises(RuntimeError):
        benchmark.run_interleaved(candidates, prompts, repeats=2, warmup=0, progress=False, partial_path=partial)
    kept = benchmark.read_partial_runs(partial)
    assert [(r.label, r.prompt_id) for r in kept] == [("a", "p1"), ("b", "p1"), ("a", "p2")]
    assert benchmark.keep_earlier_partial(partial) is not None and not partial.exists()  # moved aside, never lost
    with pytest.raises(ConfigError, match="repeats must be at least 1"):
        benchmark.run_interleaved(candidates, prompts, repeats=0)


class _Pair:
    def __init__(self, mean: float) -> None:
        self.mean = mean


class _FakeSDPipe:
    """Test double for a speculative LLMPipeline whose draft proposes nothing: acceptance 0/0, reported as NaN."""

    def __init__(self, speculative: bool) -> None:
        self.speculative = speculative

    def get_tokenizer(self):
        return self

    def apply_chat_template(self, messages, **kwargs):
        return messages[-1]["content"]

    def generate(self, prompts, config, streamer=None):
        nan = float("nan")
        metrics = type("Metrics", (), {
            "get_ttft": lambda s: _Pair(5.0), "get_tpot": lambda s: _Pair(nan if self.speculative else 2.0),
            "get_throughput": lambda s: _Pair(100.0), "get_generate_duration": lambda s: _Pair(50.0),
            "get_num_input_tokens": lambda s: 4, "get_num_generated_tokens": lambda s: 8, "get_load_time": lambda s: 1.0,
        })()
        model = type("Model", (), {"raw_metrics": type("Raw", (), {"m_batch_sizes": []})(),
                                   "get_inference_duration": lambda s: _Pair(0.0)})()
        extended = type("Extended", (), {
            "get_draft_acceptance_rate": lambda s: nan, "get_num_accepted_tokens": lambda s: 0,
            "get_num_draft_tokens": lambda s: 0, "get_draft_to_main_inference_duration_ratio": lambda s: nan,
            "main_model_metrics": model, "draft_model_metrics": model,
        })() if self.speculative else None
        return type("Result", (), {"perf_metrics": metrics, "extended_perf_metrics": extended, "texts": ["x"]})()


def test_bench_where_the_draft_proposes_nothing_writes_its_json(tmp_path, monkeypatch, capsys):
    from helpers import speculative

    folder = tmp_path / "model"
    folder.mkdir()
    for name in (*conversion.MODEL_FILES, *conversion.TOKENIZER_FILES):
        (folder / name).write_bytes(b"")
    monkeypatch.setattr(speculative, "speculative_candidates", lambda setup: [
        benchmark.Candidate("target alone", _FakeSDPipe(False), generation.generation_config(8)),
        benchmark.Candidate("draft k=3", _FakeSDPipe(True), generation.generation_config(8, num_assistant_tokens=3))])
    out = tmp_path / "bench.json"
    code = main(["bench", "--target", str(folder), "--draft", str(folder), "--repeats", "2", "--warmup", "0",
                 "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    data = json.loads(out.read_text())  # valid JSON: no NaN anywhere
    drafted = [r for r in data["runs"] if r["label"] == "draft k=3"]
    assert len(drafted) == 2 * len(data["settings"]["prompts"]) and all(r["acceptance_rate"] is None for r in drafted)
    row = next(r for r in data["summary"] if r["label"] == "draft k=3")
    assert row["acceptance_rate"] is None and row["speedup"] is None and row["tpot_ms"] is None
    assert not benchmark.partial_results_path(out).exists()


# --- a damaged finished model is not reused ----------------------------------------------------------------------------

def _copy_model(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


def test_a_truncated_model_is_remade_or_refused_in_one_line(tiny_models, tmp_path, capsys):
    ours = _copy_model(tiny_models.draft, tmp_path / "ours")
    weights = ours / "openvino_model.bin"
    with weights.open("r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    with pytest.raises(ModelFolderError, match=r"is damaged: openvino_model.bin is truncated"):
        conversion.check_ov_model_dir(ours)
    assert not conversion._finished(ours, {})  # so prepare/export re-make it instead of reporting "reused"
    code = main(["bench", "--target", str(ours), "--no-draft", "--repeats", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err and str(ours) in err
    assert "Convert it again" in err


def test_a_model_that_fails_to_load_names_the_folder(tiny_models, tmp_path):
    broken = _copy_model(tiny_models.draft, tmp_path / "broken")
    xml = broken / "openvino_model.xml"
    xml.write_text(xml.read_text().replace("<layers>", "<layers><junk", 1))
    (broken / conversion.MANIFEST_NAME).unlink()  # a folder of the user's own: no recorded sizes to compare
    with pytest.raises(ModelFolderError, match=r"OpenVINO GenAI could not load .*broken.*Delete it and convert"):
        generation.load_pipeline(broken, "CPU")


def test_overwrite_never_deletes_a_folder_it_did_not_write(tiny_models, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "precious.txt").write_text("mine")
    from helpers.conversion import hf_source
    from helpers.presets import get_preset

    code = main(["convert", "--source", hf_source(get_preset("tiny").draft), "--output", ".", "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and "never replaced" in err and (tmp_path / "precious.txt").read_text() == "mine"


# --- resume after any kill ---------------------------------------------------------------------------------------------

def _heal_stopped_at_step_4(tmp_path: Path, tiny_models) -> tuple[list[str], Path, Path]:
    """A 6-step heal of the tiny draft (checkpoints every 2 steps) stopped after step 4: its command line, output
    folder and checkpoint folder."""
    from helpers.distill import generate_distillation_data
    from helpers.prompts import load_prompt_source
    from helpers.tiny import build_tiny_pair

    data = tmp_path / "d.jsonl"
    generate_distillation_data(tiny_models.target, load_prompt_source("builtin", limit=8), data, max_new_tokens=16,
                               progress=False)
    out = tmp_path / "healed"
    args = ["heal", "--draft", str(build_tiny_pair().draft), "--data", str(data), "--output", str(out), "--steps", "6",
            "--save-steps", "2", "--batch-size", "4", "--max-length", "96", "--lr", "1e-3"]
    assert main([*args, "--stop-after", "4"]) == 0
    return args, out, Path(f"{out}-checkpoints")


def test_heal_skips_a_torn_newest_checkpoint_and_says_which_it_resumed(tmp_path, tiny_models, capsys):
    args, out, checkpoints = _heal_stopped_at_step_4(tmp_path, tiny_models)
    (checkpoints / "checkpoint-4" / "trainer_state.json").unlink()  # killed while saving step 4
    torn = checkpoints / "checkpoint-6"
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"half")
    capsys.readouterr()
    assert main(args) == 0
    said = capsys.readouterr().out
    assert f"resumed from {checkpoints / 'checkpoint-2'} (step 2" in said and (out / "model.safetensors").is_file()


@pytest.mark.parametrize("damaged", ["model.safetensors", "optimizer.pt", "rng_state.pth", "config.json"])
def test_heal_skips_a_checkpoint_whose_files_were_cut_short(tmp_path, tiny_models, capsys, damaged):
    """Every file present (the state file too), one of them shorter than it says: a full disk or a cut copy."""
    from helpers.distill import newest_complete_checkpoint

    args, out, checkpoints = _heal_stopped_at_step_4(tmp_path, tiny_models)
    assert newest_complete_checkpoint(checkpoints) == checkpoints / "checkpoint-4"
    cut = checkpoints / "checkpoint-4" / damaged
    assert cut.is_file()
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # the header survives, the data does not
    assert newest_complete_checkpoint(checkpoints) == checkpoints / "checkpoint-2"
    capsys.readouterr()
    assert main(args) == 0
    said = capsys.readouterr().out
    assert f"resumed from {checkpoints / 'checkpoint-2'} (step 2" in said and (out / "model.safetensors").is_file()


def test_torn_settings_files_and_manifests_give_one_line(tmp_path, tiny_models, capsys):
    from helpers.distill import data_settings_path

    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"id": "q1", "text": "def main():"}) + "\n")
    data = tmp_path / "d.jsonl"
    base = ["distill-data", "--target", str(tiny_models.target), "--prompts", str(prompts), "--output", str(data),
            "--max-new-tokens", "4"]
    assert main(base) == 0
    data_settings_path(data).write_text('{"target": ')  # killed mid-write by an older version, or edited
    capsys.readouterr()
    assert main(base) == 2
    assert "is unreadable" in _one_line(capsys)

    ours = _copy_model(tiny_models.draft, tmp_path / "ours")
    (ours / conversion.MANIFEST_NAME).write_text("{")
    with pytest.raises(ModelFolderError, match="conversion.json is unreadable"):
        conversion._check_destination(ours, {}, overwrite=True)
    assert (ours / "openvino_model.bin").is_file()

    result = tmp_path / "bench.json"
    result.write_text('{"runs": [')
    with pytest.raises(ConfigError, match="not a readable benchmark result"):
        BenchmarkResult.from_json(result)


# --- every failure is one clear line -----------------------------------------------------------------------------------

def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv", [
    ["bench", "--repeats", "0"],
    ["bench", "--max-new-tokens", "0"],
    ["bench", "--confidence-threshold", "1.5"],
    ["bench", "--confidence-threshold", "nan"],
    ["dq", "--lengths", "0"],
    ["dq", "--group-size-on", "0"],
    ["heal", "--draft", "d", "--data", "x", "--lr", "-1"],
    ["heal", "--draft", "d", "--data", "x", "--kl-temperature", "0"],
    ["heal", "--draft", "d", "--data", "x", "--warmup-steps", "-2"],
    ["convert", "--source", "s", "--ratio", "0"],
    ["agent", "--max-steps", "0"],
    ["suite", "--heal-lr", "inf"],
    ["suite", "--heal-neighbour-layers", "-1"],
    ["suite", "--heal-warmup-steps", "x"],
])
def test_nonsense_numbers_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and "Traceback" not in capsys.readouterr().err


def test_library_functions_refuse_nonsense_numbers():
    from helpers.presets import WeightFormat
    from helpers.settings import HealConfig

    with pytest.raises(ConfigError):
        generation.generation_config(max_new_tokens=0)
    with pytest.raises(ConfigError):
        WeightFormat(bits=4, ratio=0.0)
    with pytest.raises(ConfigError):
        HealConfig(kl_temperature=0.0)


@pytest.mark.parametrize(("make", "fix"), [
    (lambda tmp: (tmp / "ro").mkdir(mode=0o500) or tmp / "ro" / "bench.json", "permission denied"),
    (lambda tmp: (tmp / "adir").mkdir() or tmp / "adir", "a folder stands where a file was expected"),
    (lambda tmp: tmp / ("x" * 300 + ".json"), "a file name is too long"),
])
def test_os_errors_are_one_line_naming_the_fix(make, fix, tmp_path, capsys, monkeypatch):
    if fix == "permission denied" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    target = make(tmp_path)

    def write_there(args):
        from helpers.fsutil import write_json

        write_json(target, {"ok": True})
        return 0

    monkeypatch.setattr("helpers.commands.build_parser", _parser_calling(write_there))
    assert main(["bench"]) == 2
    assert fix in _one_line(capsys)


def _parser_calling(handler):
    import argparse

    def build() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser()
        parser.add_argument("command")
        parser.set_defaults(handler=handler)
        return parser

    return build


def test_a_full_disk_is_one_line(capsys, monkeypatch):
    import errno

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/work/models/x.bin")

    monkeypatch.setattr("helpers.commands.build_parser", _parser_calling(full))
    assert main(["bench"]) == 2
    assert "the disk is full" in _one_line(capsys)


def test_a_gguf_without_tokenizer_is_refused_clearly(tmp_path):
    import gguf
    import numpy as np

    from helpers.errors import LocalWeightsError
    from helpers.local_weights import check_gguf_readable

    path = tmp_path / "bare.gguf"
    writer = gguf.GGUFWriter(path, "qwen2")
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(LocalWeightsError, match="carries no tokenizer"):
        check_gguf_readable(path)


# --- limits and interrupts ---------------------------------------------------------------------------------------------

class _Tokens:
    def __init__(self, n: int) -> None:
        self.n = n

    def get_shape(self):
        return [1, self.n]


class _WordPipe:
    """Test double: one token per word."""

    def get_tokenizer(self):
        return self

    def encode(self, text):
        return type("Encoded", (), {"input_ids": _Tokens(len(text.split()))})()


def test_prompts_past_the_context_are_refused_up_front_with_the_numbers():
    with pytest.raises(ConfigError, match=r"is 1,000 tokens; with max_new_tokens 64 that is 1,064, more than the "
                                          r"model's context of 1,024 tokens"):
        generation.check_prompt_fits(_WordPipe(), "w " * 1000, 64, 1024)
    assert generation.check_prompt_fits(_WordPipe(), "w " * 900, 64, 1024) == 900
    assert generation.check_prompt_fits(_WordPipe(), "w " * 5000, 64, None) == 5000  # context unknown: not refused


def test_bench_refuses_an_over_long_prompt_before_running(tiny_models, tmp_path, capsys):
    limit = generation.context_length(tiny_models.target)
    prompts = tmp_path / "long.jsonl"
    prompts.write_text(json.dumps({"id": "huge", "text": "def f(x): return x\n" * limit}) + "\n")
    code = main(["bench", "--target", str(tiny_models.target), "--no-draft", "--prompts", str(prompts), "--repeats", "1",
                 "--json", str(tmp_path / "b.json")])
    err = _one_line(capsys)
    assert code == 2 and "Prompt 'huge' is" in err and f"context of {limit:,} tokens" in err
    assert not (tmp_path / "b.json").exists()


def test_ctrl_c_stops_a_long_generation_at_the_next_token(tiny_models):
    import signal

    pipe = generation.load_pipeline(tiny_models.target, "CPU")
    seen = []

    def interrupt_once(subword):
        seen.append(subword)
        if len(seen) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        benchmark.measure(pipe, generation.chat_prompt(pipe, "hello"),
                          generation.generation_config(2000, ignore_eos=True), streamer=interrupt_once)
    assert 1 <= len(seen) <= 10  # stopped within a few tokens of 2000


def test_the_agent_context_overflow_is_clear_and_keeps_the_run(tmp_path):
    class Overflowing(ScriptedModel):
        def generate(self, messages, stop_sequences=None, **kwargs):
            if len(self.replies) == 1:
                raise ConfigError("The agent's conversation is 9,000 tokens, the model's context is 8,192. Lower "
                                  "max_steps.")
            return super().generate(messages, stop_sequences, **kwargs)

    model = Overflowing([_code("print(web_search('Qwen3 sizes'))"), "never used"])
    tools = agent_tools.default_tools(tmp_path, agent_tools.choose_search_tool("offline"))
    with pytest.raises(AgentStoppedError, match=r"stopped after 2 step\(s\): The agent's conversation is 9,000") as info:
        agent.run_agent(agent.build_agent(model, tools, max_steps=4, verbosity=0), "task")
    run = info.value.run
    log = json.loads(run.to_json(tmp_path / "run.json").read_text())
    assert "Model sizes" in log["steps"][0]["observation"] and "9,000 tokens" in log["error"]


def test_a_path_through_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["convert", "--preset", "tiny", "--workdir", str(blocker / "sub"), "--skip-memory-check"]) == 2
    err = capsys.readouterr().err  # after a progress bar's carriage returns
    assert "Traceback" not in err and "error: a file stands where a folder was expected" in err


def _safetensors_header(header: dict | str) -> str:
    text = header if isinstance(header, str) else json.dumps(header)
    return len(text).to_bytes(8, "little").decode("latin-1") + text


@pytest.mark.parametrize(("files", "fix"), [
    ({"config.json": "{bad json", "model.safetensors": ""}, "config.json is unreadable"),
    ({"config.json": "{}", "model.safetensors": "x" * 16}, "names no model_type"),
    ({"config.json": '{"model_type": "qwen3"}', "model.safetensors": ""}, "damaged (empty file)"),
    ({"config.json": '{"model_type": "qwen3"}', "model.safetensors": "\x10" + "\0" * 7 + "{trunc"},
     "truncated safetensors header"),
    ({"config.json": '{"model_type": "qwen3"}', "model.safetensors": "\x04" + "\0" * 7 + "junk"}, "header is not JSON"),
    ({"config.json": '{"model_type": "qwen3"}',  # a whole header, half the tensor bytes it promises
      "model.safetensors": _safetensors_header({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}) + "\0" * 8},
     "truncated safetensors data"),
    ({"config.json": '{"model_type": "qwen3"}',  # offsets that are not byte counts
      "model.safetensors": _safetensors_header({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1e400]}})},
     "not JSON describing tensors"),
    ({"config.json": '{"model_type": "qwen3"}', "model.safetensors": _safetensors_header("[" * 5000 + "]" * 5000)},
     "header is not JSON"),  # nested deeper than Python's recursion limit
])
@pytest.mark.parametrize("command", [["prune", "--source"], ["convert", "--output", "out", "--source"],
                                     ["heal", "--data", "d.jsonl", "--draft"]])
def test_a_damaged_hugging_face_folder_is_one_line_before_any_load(files, fix, command, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "damaged"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_bytes(text.encode("latin-1"))
    (tmp_path / "d.jsonl").write_text('{"id": "a", "chat_prompt": "p", "answer": "x"}\n')
    monkeypatch.chdir(tmp_path)
    assert main([*command, str(folder)]) == 2
    assert fix in _one_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl", "damaged"]  # nothing written


@pytest.mark.parametrize("argv", [["prune", "--source", ""], ["convert", "--source="], ["bench", "--target", "  "],
                                  ["agent", "--task", ""], ["suite", "--results-dir", ""]])
def test_an_empty_value_is_refused_instead_of_falling_back_to_a_default(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty path would have meant this folder
    assert main(argv) == 2
    assert "is given an empty value" in _one_line(capsys) and not any(tmp_path.iterdir())


def test_paths_of_the_wrong_kind_are_named_before_any_conversion(tmp_path, capsys, monkeypatch):
    a_file, a_folder = tmp_path / "a-file", tmp_path / "a-folder"
    a_file.write_text("x")
    a_folder.mkdir()
    workdir = tmp_path / "work"  # nothing may be converted into it
    cases = {
        ("bench", "--target", str(a_file)): "is a file; a model is a folder",
        ("bench", "--workdir", str(workdir), "--prompts", str(a_folder)): "is a folder; prompts come from a JSONL file",
        ("bench", "--workdir", str(workdir), "--json", str(a_folder)): "--json",
        ("bench", "--workdir", str(workdir), "--device", "NOPE"): "not available",
        ("prefix-reuse", "--workdir", str(workdir), "--device", "NOPE"): "not available",
        ("prefix-reuse", "--workdir", str(workdir), "--json", str(a_folder)): "is a folder: give a file name",
        ("distill-data", "--workdir", str(workdir), "--output", str(a_folder)): "--output",
        ("agent", "--workdir", str(workdir), "--output-dir", str(a_file)): "a file stands where a folder",
        ("suite", "--workdir", str(workdir), "--results-dir", str(a_file)): "a file stands where a folder",
        ("suite", "--steps", "pruned-drafts", "--list"): "need --prune-depths",
    }
    for argv, fix in cases.items():
        assert main(list(argv)) == 2, argv
        assert fix in _one_line(capsys), argv
    assert not workdir.exists()


def test_a_prune_depth_the_draft_cannot_lose_stops_before_the_target_answers(tiny_models, tmp_path):
    from helpers.presets import WeightFormat, get_preset
    from helpers.pruned_drafts import HealingPlan, answers_path, make_pruned_drafts

    plan = HealingPlan(depths=(50,), prompts=4, max_new_tokens=8, heal=None)
    with pytest.raises(ConfigError, match="Cannot remove 50 layers"):
        make_pruned_drafts(get_preset("tiny"), plan, tiny_models.target, [WeightFormat(bits=4)], progress=False)
    assert not answers_path(get_preset("tiny"), plan).exists()


def test_a_full_disk_names_the_option_that_chose_the_place(capsys, monkeypatch, tmp_path):
    import argparse
    import errno

    failing = {"path": tmp_path / "out" / "b.json"}

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(failing["path"]))

    def build() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser()
        parser.add_argument("command")
        parser.add_argument("--json")
        parser.set_defaults(handler=full)
        return parser

    monkeypatch.setattr("helpers.commands.build_parser", build)
    assert main(["bench", "--json", str(tmp_path / "out" / "b.json")]) == 2
    assert "point --json at a larger disk" in _one_line(capsys)
    failing["path"] = tmp_path / "out"  # the folder checked before writing
    assert main(["bench", "--json", str(tmp_path / "out" / "b.json")]) == 2
    assert "point --json at a larger disk" in _one_line(capsys)
    failing["path"] = tmp_path / "elsewhere"
    assert main(["bench", "--json", str(tmp_path / "out" / "b.json")]) == 2
    assert "point --workdir ($TUTORIAL_WORKDIR) at a larger disk" in _one_line(capsys)


@pytest.mark.parametrize("argv", [
    ["bench", "--max-new-tokens", "99999999999999999999"],
    ["dq", "--group-sizes", "99999999999999999999"],
    ["agent", "--max-new-tokens", "3000000000"],
])
def test_counts_past_what_openvino_takes_are_refused(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_info:  # refused by the argument parser
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2 and "must be at most" in err and "Traceback" not in err


def test_results_never_replace_an_input_or_a_model_file(tiny_models, tmp_path, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "a", "text": "hello"}\n')
    before = (tiny_models.target / "config.json").read_bytes()
    cases = {("--prompts", str(prompts), "--json", str(prompts)): "also an input",
             ("--json", str(tiny_models.target / "config.json")): "inside a model folder"}
    for extra, fix in cases.items():
        assert main(["bench", "--preset", "tiny", "--no-draft", *extra]) == 2
        assert fix in _one_line(capsys)
    assert prompts.read_text() == '{"id": "a", "text": "hello"}\n'
    assert (tiny_models.target / "config.json").read_bytes() == before


@pytest.mark.parametrize(("argv", "fix"), [
    (["breakdown", "--context", "100000"], "Lower --context or --ns"),
    (["breakdown", "--ns", "1", "100000"], "Lower --context or --ns"),
    (["breakdown", "--prompts", "1000"], "too many"),
    (["dq", "--no-control", "--lengths", "16", "100000"], "Lower --lengths"),
    (["dq", "--no-control", "--timing", "--timing-lengths", "16400"], "Lower --timing-lengths"),
    (["prefix-reuse", "--no-draft", "--answer-tokens", "20000"], "Lower --answer-tokens"),
])
def test_sizes_past_the_context_are_refused_before_any_work(argv, fix, tiny_models, capsys):
    models = ["--target", str(tiny_models.target)]
    if argv[0] == "breakdown":
        models += ["--draft", str(tiny_models.draft)]
    assert main([*argv, *models]) == 2
    assert fix in _one_line(capsys)


def test_prune_never_writes_over_its_source(tiny_models, tmp_path):
    from helpers.pruning import Block, prune_model
    from helpers.tiny import build_tiny_pair

    source = tmp_path / "draft"
    shutil.copytree(build_tiny_pair().path_for("draft"), source)
    before = sorted(p.name for p in source.iterdir())
    with pytest.raises(ModelFolderError, match="delete its source"):
        prune_model(source, source, Block(1, 1), overwrite=True)
    assert sorted(p.name for p in source.iterdir()) == before


def test_a_source_without_tokenizer_or_with_an_odd_group_size_is_refused(tiny_models, tmp_path):
    from helpers.presets import WeightFormat
    from helpers.tiny import build_tiny_pair

    source = tmp_path / "notok"
    shutil.copytree(build_tiny_pair().path_for("draft"), source)
    for name in conversion.HF_TOKENIZER_FILES:
        (source / name).unlink(missing_ok=True)
    with pytest.raises(ModelFolderError, match="has no tokenizer"):
        conversion.export_model(source, tmp_path / "out", WeightFormat(bits=8))
    with pytest.raises(ConfigError, match="does not divide"):
        conversion.export_model(build_tiny_pair().path_for("draft"), tmp_path / "odd", WeightFormat(bits=4, group_size=7))
    assert not (tmp_path / "out").exists() and not (tmp_path / "odd").exists()


def test_an_unreachable_dataset_is_one_line():
    from helpers.errors import HubUnreachableError
    from helpers.prompts import load_prompt_source

    with pytest.raises(HubUnreachableError, match="Cannot stream"):
        load_prompt_source("no-such-user/no-such-dataset", limit=2)


# --- a second pass of hostile input (tester's report): one line naming the fix, checked once for every caller ----------

LONE_SURROGATE = '{"id": "a", "text": "lone \\ud800"}'


@pytest.mark.parametrize("newline", ["\n", ""])  # a last line without newline is not a torn write to drop
@pytest.mark.parametrize("command", [["bench", "--no-draft", "--prompts"], ["distill-data", "--prompts"],
                                     ["prune", "--source", "no-such-folder", "--calibration"]])
def test_text_that_is_not_unicode_is_refused_naming_file_and_line(command, newline, tmp_path, capsys):
    prompts = tmp_path / "f.jsonl"
    prompts.write_text('{"id": "ok", "text": "fine \\ud83d\\ude00"}\n' + LONE_SURROGATE + newline)
    workdir = tmp_path / "work"
    assert main([*command, str(prompts), "--workdir", str(workdir)]) == 2
    err = _one_line(capsys)
    assert f"{prompts}, line 2: holds a lone surrogate" in err
    assert not workdir.exists() and prompts.read_text().endswith(LONE_SURROGATE + newline)  # nothing cut or made


def test_a_command_line_value_that_is_not_utf8_names_its_option(capsys):
    assert main(["agent", "--task", "bad \udcff"]) == 2  # what Python makes of the byte 0xff in argv
    assert "--task holds bytes that are not UTF-8 text" in _one_line(capsys)
    assert main(["bench", "--json=r\udcff.json"]) == 2
    assert "--json holds bytes" in _one_line(capsys)


def test_every_reader_of_an_openvino_model_names_a_damaged_folder(tiny_models, tmp_path, capsys):
    from helpers.sd_loop import StatefulLM

    broken = _copy_model(tiny_models.target, tmp_path / "broken")
    xml = broken / "openvino_model.xml"
    xml.write_bytes(xml.read_bytes()[:3000])  # truncated mid-element
    (broken / conversion.MANIFEST_NAME).unlink()  # so the sizes cannot tell
    with pytest.raises(ModelFolderError, match=r"could not load .*broken"):
        conversion.read_ir(xml)
    with pytest.raises(ModelFolderError, match=r"could not load .*broken"):
        StatefulLM(broken)
    assert main(["dq", "--target", str(broken), "--no-control"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"error: OpenVINO GenAI could not load {broken}" in err


@pytest.mark.parametrize("device", ["CPU.0", "AUTO:NOPE", "HETERO", "MULTI:", "AUTO:CPU,", "FOO:CPU", "CPU.x"])
def test_device_strings_openvino_would_refuse_are_refused_up_front(device):
    from helpers.devices import check_device
    from helpers.errors import DeviceError

    with pytest.raises(DeviceError, match="Available: CPU"):
        check_device(device)


def test_device_strings_openvino_takes_pass_and_dq_wants_a_physical_one(capsys):
    from helpers.devices import check_device
    from helpers.errors import DeviceError

    assert [check_device(d) for d in ("auto", "AUTO:CPU", "hetero:cpu", "MULTI:CPU")] == [
        "AUTO", "AUTO:CPU", "HETERO:CPU", "MULTI:CPU"]
    with pytest.raises(DeviceError, match="virtual device"):
        check_device("AUTO", physical=True)
    for argv in (["bench", "--device", "CPU.0"], ["dq", "--device", "AUTO:CPU"]):
        assert main(argv) == 2
        assert "Available: CPU" in _one_line(capsys)


@pytest.mark.parametrize(("option", "files"), [("--target", {}), ("--teacher", {}), ("--target", None),
                                               ("--teacher", None), ("--teacher", {"config.json": "{}"})])
def test_heal_names_a_folder_that_is_no_hugging_face_model(option, files, tiny_models, tmp_path, capsys):
    from helpers.tiny import build_tiny_pair

    folder = tmp_path / "other"
    if files is not None:
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a", "chat_prompt": "p", "answer": "x"}\n')
    extra = ["--kl-weight", "0.5"] if option == "--teacher" else []
    assert main(["heal", "--draft", str(build_tiny_pair().draft), "--data", str(data), option, str(folder), *extra,
                 "--workdir", str(tmp_path / "work")]) == 2
    err = _one_line(capsys)
    assert f"{folder} is not a Hugging Face model folder" in err and "save_pretrained" in err


@pytest.mark.parametrize("argv", [
    ["heal", "--draft", "d", "--data", "x", "--seed", "-1"],
    ["heal", "--draft", "d", "--data", "x", "--seed", "99999999999"],
    ["heal", "--draft", "d", "--data", "x", "--held-out", "1"],
    ["heal", "--draft", "d", "--data", "x", "--held-out", "0.5"],
    ["heal", "--draft", "d", "--data", "x", "--kl-weight", "2"],
])
def test_heal_numbers_are_refused_by_the_parser_naming_the_flag(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"argument {argv[-2]}" in err and "Traceback" not in err


def test_a_failed_copy_is_the_disk_error_with_its_path(tmp_path, monkeypatch, capsys):
    import errno

    from helpers import fsutil

    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c"):
        (source / name).write_text("x" * 100)

    def full(src, dst, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write() says it: no file name

    monkeypatch.setattr(shutil, "copy2", full)
    with pytest.raises(OSError) as info:
        fsutil.copy_tree(source, tmp_path / "dest")
    assert info.value.errno == errno.ENOSPC and str(tmp_path / "dest") in info.value.filename

    def copy_error(args):
        raise shutil.Error([(f"/src/{i}", f"/dst/{i}", "[Errno 28] No space left on device") for i in range(50)])

    monkeypatch.setattr("helpers.commands.build_parser", _parser_calling(copy_error))
    assert main(["convert"]) == 2
    err = _one_line(capsys)
    assert "could not copy /src/0 to /dst/0: [Errno 28] No space left on device (and 49 more)" in err
    assert len(err) < 200


def test_a_disk_that_fills_during_a_write_names_the_option_that_chose_the_place(tmp_path, monkeypatch, capsys):
    import argparse
    import errno

    from helpers import fsutil

    class FullHandle:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    def build() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser()
        parser.add_argument("command")
        parser.add_argument("--json")
        parser.add_argument("--output")
        parser.set_defaults(handler=lambda args: fsutil.write_json(Path(args.json or args.output), {}) or 0)
        return parser

    monkeypatch.setattr("helpers.commands.build_parser", build)
    monkeypatch.setattr(fsutil.os, "fdopen", lambda fd, mode: os.close(fd) or FullHandle())
    for option, name in (("--json", "b.json"), ("--output", "answers.jsonl")):
        assert main(["x", option, str(tmp_path / name)]) == 2
        assert f"point {option} at a larger disk ({tmp_path / name})" in _one_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the temporary files are gone
    monkeypatch.undo()
    # a sidecar named after the output (the partial runs of --json, the settings of --output) names the option too
    from helpers.commands import option_naming

    args = argparse.Namespace(json=str(tmp_path / "b.json"), output=str(tmp_path / "d.jsonl"))
    assert option_naming(str(tmp_path / "b.json.partial.jsonl"), args) == "--json"
    assert option_naming(str(tmp_path / "d.jsonl.settings.json"), args) == "--output"


def test_default_outputs_go_under_the_work_folder(tiny_models, tmp_path, monkeypatch, capsys):
    from helpers.tiny import build_tiny_pair

    monkeypatch.chdir(tmp_path)
    workdir = tmp_path / "work"
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "q1", "text": "def main():"}\n')
    assert main(["distill-data", "--target", str(tiny_models.target), "--prompts", str(prompts), "--max-new-tokens",
                 "4", "--workdir", str(workdir)]) == 0
    assert (workdir / "distill.jsonl").is_file() and (workdir / "distill.jsonl.settings.json").is_file()
    assert main(["prune", "--source", str(build_tiny_pair().draft), "--method", "deepest", "--workdir",
                 str(workdir)]) == 0
    assert (workdir / "pruned" / "draft-pruned1" / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl", "work"]  # nothing in the current folder


def test_breakdown_refuses_more_new_tokens_than_the_context_up_front(tiny_models, capsys):
    limit = generation.context_length(tiny_models.target)
    assert main(["breakdown", "--target", str(tiny_models.target), "--draft", str(tiny_models.draft),
                 "--max-new-tokens", str(limit + 1)]) == 2
    assert "Lower --max-new-tokens" in _one_line(capsys)


def test_help_shows_defaults_of_zero_and_heal_takes_the_work_folder(capsys):
    for argv in (["heal", "--help"], ["dq", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
    text = " ".join(capsys.readouterr().out.split())
    assert "random seed (default: 0)" in text and "(default: 0.0)" in text and "--workdir" in text
    assert "always included) (default: [0" in text


def test_contradictions_and_odd_inputs_get_the_right_sentence(tiny_models, tmp_path, capsys):
    from helpers.pruning import Block, prune_model
    from helpers.soft_distill import recorded_settings

    assert main(["bench", "--no-draft", "--draft", str(tiny_models.draft)]) == 2
    assert "--no-draft contradict" in _one_line(capsys)
    assert main(["suite", "--steps", "agent", "--no-agent", "--list"]) == 2
    assert "switched off by --no-agent" in _one_line(capsys)
    assert main(["bench", "--prompts", os.devnull]) == 2
    assert "is not a regular file" in _one_line(capsys)
    topk = tmp_path / "topk.jsonl"
    topk.write_text("{}\n")
    Path(f"{topk}.settings.json").write_text('{"something": "else"}')
    with pytest.raises(Exception, match="names no k and max_length"):
        recorded_settings(topk)
    with pytest.raises(ModelFolderError) as info:  # a model folder of the user's: never replaced, so no --overwrite hint
        prune_model("source", tiny_models.target, Block(1, 1))
    assert "overwrite" not in str(info.value).replace("never replaced", "")
