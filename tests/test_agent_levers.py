"""The agent's speed levers on the tiny pair: validation, the pipeline each setup builds, and prefix caching."""

import pytest

from helpers.agent_levers import AgentSetup, combined_setups, lever_setups, load_agent_model
from helpers.errors import ConfigError
from helpers.generation import generation_config

LONG_PROMPT = "\n".join(f"def function_{i}(x):\n    return x * {i} + {i * i}" for i in range(200))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"draft": True, "prompt_lookup": True}, "not both"),
    ({"num_assistant_tokens": 3}, "need a draft or prompt lookup"),
    ({"prompt_lookup": True, "assistant_confidence_threshold": 0.4}, "fixed k"),
    ({"kv_cache_precision": "int3"}, "KV-cache precision"),
    ({"num_threads": 0}, "num_threads"),
    ({"dq_group_size": -1}, "dq_group_size"),
    ({"cache_size_gb": 2, "prefix_caching": False}, "prefix caching off"),
])
def test_bad_setups_are_refused_in_one_sentence(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        AgentSetup("bad", **kwargs)


def test_setups_say_what_they_change():
    assert AgentSetup().describe() == {}
    assert AgentSetup("x", dq_group_size=0, kv_cache_precision="f16").properties() == {
        "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0, "KV_CACHE_PRECISION": "f16"}
    labels = [s.label for s in [*lever_setups(), *combined_setups()]]
    assert len(set(labels)) == len(labels) and labels[0] == AgentSetup().label


def test_a_draft_setup_needs_the_draft_folder(tiny_models):
    with pytest.raises(ConfigError, match="draft_dir"):
        load_agent_model(AgentSetup("d", draft=True, num_assistant_tokens=2), tiny_models.target)


def test_each_lever_builds_a_working_model(tiny_models):
    for setup in [*lever_setups(k=2, lookup_k=3), *combined_setups(k=2)]:
        model = load_agent_model(setup, tiny_models.target, draft_dir=tiny_models.draft, max_new_tokens=8)
        config = model.generation_config(8)
        assert model.label == setup.label
        assert (config.num_assistant_tokens or None) == setup.num_assistant_tokens
        if setup.prompt_lookup:
            assert config.max_ngram_size == setup.max_ngram_size
        record = model.pipe.generate(["def f(x):"], generation_config(4, num_assistant_tokens=setup.num_assistant_tokens,
                                                                      max_ngram_size=model.max_ngram_size))
        assert record.perf_metrics.get_num_generated_tokens() >= 1


def _ttfts(pipe, runs=3):
    config = generation_config(2)
    return [pipe.generate([LONG_PROMPT], config).perf_metrics.get_ttft().mean for _ in range(runs)]


def test_prefix_caching_is_on_where_the_setup_says_and_off_where_it_says(tiny_models):
    """Behaviour, not speed: with the cache a repeated 4k-token prompt is served from it (its prefill shrinks by far more
    than timing noise, ~60x here); without it every repeat pays the prefill again."""
    default = load_agent_model(AgentSetup(), tiny_models.target)
    off = load_agent_model(AgentSetup("off", prefix_caching=False), tiny_models.target)
    first, *again = _ttfts(default.pipe)
    assert max(again) < first / 5, (first, again)
    first, *again = _ttfts(off.pipe)
    assert min(again) > first / 3, (first, again)


def _agent_result(path, speedups, decks):
    """A suite agent result with the given task speedups and decks per label (the reference first)."""
    import json

    from helpers.agent_levers import lookup_sweep_setups

    setups = {f"agent: {s.label}": s.describe() for s in [*lever_setups(), *combined_setups(), *lookup_sweep_setups()]}
    setups["agent: pruned4-healed int4 draft k=3"] = {"draft": True, "num_assistant_tokens": 3}
    rows = [{"label": label, "runs": 3, "task_speedup": value, "task_speedup_lo": value - 0.1,
             "task_speedup_hi": value + 0.1, "agent_seconds": 60 / value} for label, value in speedups.items()]
    runs = [{"label": label, "repeat": r, "decks": ["d.pptx"] * (r < count)} for label, count in decks.items()
            for r in range(3)]
    path.write_text(json.dumps({"baseline": "target int4 alone", "agent_summary": rows, "agent_runs": runs,
                                "settings": {"suite": {"signature": {"agent": {"setups": setups}}}}}))
    return path


def test_the_cpu_default_is_the_fastest_measured_lever_that_wrote_every_deck(tmp_path):
    from helpers.agent_levers import default_setup

    speedups = {"target int4 alone": 1.0, "agent: draft k=3": 1.1, "agent: prompt lookup k=5": 1.3,
                "agent: combined: prompt lookup k=5, DQ off": 1.5,  # fastest, but it wrote one deck fewer
                "agent: pruned4-healed int4 draft k=3": 1.4}  # needs a pruned draft the preset does not have
    decks = {label: 3 for label in speedups} | {"agent: combined: prompt lookup k=5, DQ off": 2}
    setup, reason = default_setup("CPU", results=_agent_result(tmp_path / "agent.json", speedups, decks))
    assert setup == AgentSetup("prompt lookup k=5", prompt_lookup=True, num_assistant_tokens=5)
    assert "1.30x" in reason and "IQR 1.20-1.40" in reason and "median of 3 runs" in reason

    slower = {"target int4 alone": 1.0, "agent: draft k=3": 0.9}
    setup, reason = default_setup("CPU", results=_agent_result(tmp_path / "slow.json", slower, dict.fromkeys(slower, 3)))
    assert setup == AgentSetup() and "no lever was faster" in reason
    setup, reason = default_setup("CPU", results=tmp_path / "missing.json")
    assert setup == AgentSetup() and "not measured the levers yet" in reason
    damaged = tmp_path / "damaged.json"
    damaged.write_text("{not json")
    setup, reason = default_setup("CPU", results=damaged)
    assert setup == AgentSetup() and str(damaged) in reason and "cannot be read" in reason

    # several agent steps (the lever sweep and the prompt-lookup sweep): the fastest row of any of them
    from helpers.agent_levers import lookup_sweep_setups

    sweep = tmp_path / "agent-lookup-sweep.json"
    _agent_result(sweep, {"target int4 alone": 1.0, "agent: prompt lookup k=5, n-gram 2": 1.45},
                  {"target int4 alone": 3, "agent: prompt lookup k=5, n-gram 2": 3})
    setup, reason = default_setup("CPU", results=[tmp_path / "agent.json", sweep])
    assert setup == lookup_sweep_setups(5)[3] and setup.max_ngram_size == 2 and "1.45x" in reason
    setup, reason = default_setup("GPU")
    assert setup.draft and setup.num_assistant_tokens == 3 and "not measured on GPU" in reason
