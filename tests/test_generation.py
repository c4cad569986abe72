import pytest

from helpers.errors import ConfigError, DeviceError
from helpers.generation import chat_prompt, generation_config, load_pipeline, quick_generate


@pytest.fixture(scope="module")
def pipe(tiny_models):
    return load_pipeline(tiny_models.target, "CPU")


def test_chat_prompt_switches_thinking(pipe):
    off = chat_prompt(pipe, "hello", enable_thinking=False)
    on = chat_prompt(pipe, "hello", enable_thinking=True)
    assert off.endswith("<think>\n\n</think>\n\n") and not on.endswith("</think>\n\n")
    assert "<|im_start|>user\nhello<|im_end|>" in off
    with_system = chat_prompt(pipe, "hello", system="Be brief.")
    assert with_system.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    tools = [{"type": "function", "function": {"name": "web_search", "description": "search", "parameters": {}}}]
    assert "web_search" in chat_prompt(pipe, "hello", tools=tools)


def test_generation_config_is_greedy_and_explicit():
    config = generation_config(12, num_assistant_tokens=3, stop_strings={"</code>"}, logprobs=1)
    assert config.max_new_tokens == 12 and not config.do_sample and not config.apply_chat_template
    assert config.num_assistant_tokens == 3 and config.stop_strings == {"</code>"} and config.logprobs == 1
    with pytest.raises(ConfigError, match="at least 1"):
        generation_config(0)


def test_quick_generate_streams_text(tiny_models, capsys):
    text = quick_generate(tiny_models.draft, "def f():", max_new_tokens=8)
    assert text and text in capsys.readouterr().out


def test_pipeline_input_checks(tiny_models):
    with pytest.raises(ConfigError, match="not both"):
        load_pipeline(tiny_models.target, "CPU", draft_dir=tiny_models.draft, prompt_lookup=True)
    with pytest.raises(DeviceError):
        load_pipeline(tiny_models.target, "NPU7")


def test_properties_reach_the_pipeline(tiny_models):
    # f32 inference changes the arithmetic, so log-probabilities differ from the bf16 default: the property was applied.
    config = generation_config(4, logprobs=1)
    prompt = "def parse(self):"
    default = load_pipeline(tiny_models.target, "CPU").generate([prompt], config).scores[0]
    exact = load_pipeline(tiny_models.target, "CPU", INFERENCE_PRECISION_HINT="f32").generate([prompt], config).scores[0]
    assert default != exact


def test_prefix_caching_is_off_for_benchmarks_unless_asked(tiny_models, monkeypatch):
    """OpenVINO GenAI's paged-attention pipelines (plain and assisted) cache prefixes by default, which would let a
    benchmark's repeated prompt skip its prefill: every pipeline gets it switched off unless asked for, and None leaves
    the library default alone (the agent's reference)."""
    import openvino_genai as og

    seen = []

    class Recorder:
        def __init__(self, path, device, **kwargs):
            seen.append(kwargs.get("scheduler_config"))

    monkeypatch.setattr(og, "LLMPipeline", Recorder)
    load_pipeline(tiny_models.target, "CPU")
    load_pipeline(tiny_models.target, "CPU", draft_dir=tiny_models.draft)
    load_pipeline(tiny_models.target, "CPU", prompt_lookup=True)
    load_pipeline(tiny_models.target, "CPU", prefix_caching=True)
    load_pipeline(tiny_models.target, "CPU", draft_dir=tiny_models.draft, prefix_caching=True)
    load_pipeline(tiny_models.target, "CPU", prefix_caching=None)
    assert [s.enable_prefix_caching for s in seen[:5]] == [False, False, False, True, True]
    assert seen[5] is None
    assert all(s.max_num_batched_tokens > 100_000 for s in seen[:5])  # prompts are not split into chunks
