"""The from-scratch speculative loop, the t(n) control and the pipeline breakdown, on the tiny pair."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.commands import main
from helpers.errors import ConfigError
from helpers.forward_cost import forward_cost
from helpers.generation import chat_prompt, generation_config, load_pipeline
from helpers.prompts import builtin_prompts
from helpers.sd_breakdown import (
    BreakdownSettings,
    StepParts,
    break_even_acceptance,
    break_even_tokens,
    compare,
    explain,
    loop_parts,
    median_parts,
    pipeline_parts,
    with_control,
)
from helpers.sd_loop import (
    StatefulLM,
    chat_token_ids,
    check_k,
    eos_token_ids,
    greedy_generate,
    speculative_generate,
)
from helpers.speculative import EXACT_PROPERTIES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lms(tiny_models):
    """Exact-arithmetic target, draft, and the target again as a draft that always agrees."""
    return (StatefulLM(tiny_models.target, properties=EXACT_PROPERTIES),
            StatefulLM(tiny_models.draft, properties=EXACT_PROPERTIES),
            StatefulLM(tiny_models.target, properties=EXACT_PROPERTIES))


@pytest.fixture(scope="module")
def prompt_ids(tiny_models):
    return [chat_token_ids(tiny_models.target, p.text) for p in builtin_prompts()[:3]]


def test_import_is_cheap():
    code = ("import sys, helpers.sd_loop, helpers.forward_cost, helpers.sd_breakdown; "
            "print(any(m in sys.modules for m in ('openvino', 'numpy', 'openvino_genai')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_speculative_loop_is_lossless(lms, prompt_ids, tiny_models):
    target, draft, _ = lms
    eos = eos_token_ids(tiny_models.target)
    rejected = accepted = 0
    for ids in prompt_ids:
        reference = greedy_generate(target, ids, 40, eos)
        assert reference.steps == reference.generated - 1
        for k in (1, 3, 5):
            result = speculative_generate(target, draft, ids, k, 40, eos)
            assert result.tokens == reference.tokens, (k, ids[:5])
            assert 0 <= result.accepted <= result.drafted <= k * result.steps
            assert result.steps <= reference.steps
            # the bookkeeping matches the states; the draft lags by the tokens it has still to catch up on
            assert target.state_length() == target.past >= len(ids) + result.generated - 1
            assert draft.state_length() == draft.past and target.past - 2 <= draft.past <= target.past
            rejected += result.drafted - result.accepted
            accepted += result.accepted
    assert rejected > 0 and accepted > 0  # both the trim and the accept path ran


def test_agreeing_draft_accepts_everything_and_catches_up(lms, prompt_ids):
    target, _, same = lms
    reference = greedy_generate(target, prompt_ids[0], 30)
    result = speculative_generate(target, same, prompt_ids[0], 4, 30)
    assert result.tokens == reference.tokens
    # no end-of-sequence cut: the target holds every committed token but the last
    assert target.state_length() == target.past == len(prompt_ids[0]) + result.generated - 1
    assert result.accepted == result.drafted > 0
    assert result.tokens_per_step > 1


def test_kv_trim_keeps_the_right_prefix(lms, prompt_ids):
    target, _, other = lms
    ids = prompt_ids[0]
    target.reset()
    target.forward(ids)
    target.forward([11, 12, 13])
    target.trim(2)
    assert target.state_length() == target.past == len(ids) + 1
    after_trim = target.forward([14])
    other.reset()
    fresh = other.forward([*ids, 11, 14])
    assert int(after_trim[-1]) == int(fresh[-1])
    assert target.state_length() == len(ids) + 2
    with pytest.raises(ConfigError, match="Cannot trim"):
        target.trim(target.past + 1)


@pytest.mark.parametrize("properties", [EXACT_PROPERTIES, {}, {"KV_CACHE_PRECISION": "u8"}],
                         ids=["exact", "cpu-defaults", "u8-kv-cache"])
def test_trimmed_cache_gives_the_same_logits_as_a_fresh_one(tiny_models, prompt_ids, properties):
    """A strided view passed to set_state() breaks a u8 KV cache (OpenVINO 2026.4, CPU): trim() must copy."""
    import numpy as np

    lm = StatefulLM(tiny_models.target, properties=properties)
    ids = prompt_ids[1]
    lm.forward(ids)
    lm.forward([21, 22, 23, 24])
    lm.trim(4)
    lm.forward([21, 22])
    trimmed = lm.request.get_output_tensor(0).data.copy()
    lm.reset()
    lm.forward(ids)
    lm.forward([21, 22])
    fresh = lm.request.get_output_tensor(0).data.copy()
    if properties == EXACT_PROPERTIES or not infers_in_bf16():
        assert np.array_equal(trimmed, fresh)
    else:  # bf16 inference (CPUs with AMX) rounds a 4-token and a 2-token forward differently; a broken cache does not
        assert np.array_equal(trimmed.argmax(-1), fresh.argmax(-1)) and np.abs(trimmed - fresh).max() < 0.25


def infers_in_bf16() -> bool:
    """CPUs with AMX run OpenVINO's CPU plugin in bf16 by default (seen on a 2-core Xeon), others in f32."""
    import openvino as ov

    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name() == "bf16"


@pytest.mark.parametrize("k", [0, -1, 33, 2.5, True])
def test_bad_k_is_refused(lms, k):
    target, draft, _ = lms
    for call in (lambda: check_k(k), lambda: speculative_generate(target, draft, [1, 2, 3], k, 8)):
        with pytest.raises(ConfigError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and "between 1 and 32" in message and repr(k) in message


def test_forward_cost_control(lms, prompt_ids):
    target = lms[0]
    context = (prompt_ids[0] * 4)[:48]
    cost = forward_cost(target, context, ns=(2, 4), repeats=3, warmup=1)
    assert [r.n for r in cost.rows] == [1, 2, 4]
    assert cost.ratio(1) == 1.0
    for row in cost.rows:
        assert all(math.isfinite(v) and v > 0 for v in (row.t_ms, row.t_lo_ms, row.t_hi_ms, row.ratio))
        assert row.t_lo_ms <= row.t_ms <= row.t_hi_ms and row.context == 48
    assert all(math.isfinite(v) and v > 0 for v in (*cost.t1_steady_ms, *cost.trim_ms))
    assert target.past == target.state_length() == 48  # every timed call was trimmed away again
    assert json.dumps(cost.to_dict())
    with pytest.raises(ConfigError):
        forward_cost(target, context, ns=(0,), repeats=1)


def _parts_add_up(parts, tolerance=1e-6):
    total = parts.draft_ms + parts.verify_ms + parts.trim_ms + parts.draft_prefill_ms + parts.rest_ms
    assert total == pytest.approx(parts.step_ms, rel=tolerance, abs=1e-6)


def test_pipeline_breakdown_parts(tiny_models):
    base = load_pipeline(tiny_models.target, **EXACT_PROPERTIES)
    sd = load_pipeline(tiny_models.target, draft_dir=tiny_models.draft, **EXACT_PROPERTIES)
    text = chat_prompt(base, builtin_prompts()[2].text)
    plain_result = base.generate([text], generation_config(32))
    sd_result = sd.generate([text], generation_config(32, num_assistant_tokens=3))
    plain = pipeline_parts(plain_result, "plain")
    spec = pipeline_parts(sd_result, "sd k=3", 3)
    for parts in (plain, spec):
        numbers = {k: v for k, v in parts.row().items() if isinstance(v, float)}
        assert all(v >= 0 for v in numbers.values()), numbers
        _parts_add_up(parts)
        # the decode wall time the parts split is the one GenAI's TPOT divides
        assert parts.step_ms * parts.steps == pytest.approx(parts.tpot_ms * (parts.generated - 1), rel=1e-3)
        assert parts.tokens_per_step * parts.steps == pytest.approx(parts.generated - 1)
        assert parts.verify_infer_ms <= parts.verify_ms
    assert plain.tokens_per_step == 1 and plain.draft_ms == 0 and plain.sampling_ms > 0
    assert spec.draft_calls_per_step > 0 and spec.draft_token_ms > 0 and 0 <= spec.acceptance_rate <= 1
    assert spec.draft_calls_per_step <= 3
    assert spec.draft_prefill_ms > 0  # the draft's prefill runs after the first token and TPOT counts it
    assert spec.draft_infer_ms <= spec.draft_ms
    breakdown = explain(spec, plain, (0.9, 1.0, 1.1))
    assert sum(breakdown.shares().values()) == pytest.approx(1.0)
    # with every part measured, the formula is the measured TPOT ratio of this run
    assert breakdown.predicted == pytest.approx(plain.tpot_ms / spec.tpot_ms, rel=1e-3)
    assert math.isfinite(breakdown.blog_predicted) and breakdown.c > 0


def test_loop_parts_add_up(lms, prompt_ids):
    target, draft, _ = lms
    runs = [loop_parts(speculative_generate(target, draft, ids, 3, 24)) for ids in prompt_ids[:2]]
    for parts in runs:
        assert all(v >= 0 for v in parts.row().values() if isinstance(v, float))
        _parts_add_up(parts)
    median = median_parts(runs)
    assert median.runs == 2 and median.k == 3
    plain = loop_parts(greedy_generate(target, prompt_ids[0], 24))
    _parts_add_up(plain)
    breakdown = explain(runs[0], plain, (1.0, 1.0, 1.0))
    assert breakdown.predicted > 0 and breakdown.verify_ratio > 0


def test_breakdown_command_end_to_end(tiny_models, tmp_path, capsys):
    out = tmp_path / "breakdown.json"
    assert main(["breakdown", "--target", str(tiny_models.target), "--draft", str(tiny_models.draft), "-k", "2",
                 "--prompts", "1", "--max-new-tokens", "12", "--repeats", "1", "--warmup", "0", "--forward-repeats", "2",
                 "--ns", "1", "3", "--context", "32", "--exact", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {"settings", "parts", "breakdown", "control", "runs", "identical_to_baseline"} <= data.keys()
    assert data["identical_to_baseline"]["loop SD k=2"] == 1.0
    assert [b["label"] for b in data["breakdown"]] == ["pipeline SD k=2", "loop SD k=2"]
    pipeline_runs = [r for r in data["runs"] if r["label"].startswith("pipeline")]
    assert all(r["raw"]["token_infer_durations"] for r in pipeline_runs)
    assert "breakdown" in data["settings"]["command"]
    assert "Breakdown and the formula" in capsys.readouterr().out


@pytest.mark.parametrize("k", ["0", "-2"])
def test_the_command_refuses_bad_k(k, capsys):
    with pytest.raises(SystemExit) as refused:
        main(["breakdown", "--target", "t", "--draft", "d", "-k", k])
    assert refused.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_the_command_refuses_a_k_too_large(capsys):
    assert main(["breakdown", "--target", "t", "--draft", "d", "-k", "40"]) == 2
    assert "between 1 and 32" in capsys.readouterr().err


def test_settings_refuse_bad_k():
    with pytest.raises(ConfigError, match="between 1 and 32"):
        BreakdownSettings(target=Path("t"), draft=Path("d"), ks=(40,))


def test_at_the_break_even_acceptance_the_formula_predicts_no_gain():
    plain = StepParts("plain", step_ms=50.0, verify_ms=50.0, tpot_ms=50.0)
    # k=3: three draft calls of 30 ms (c = 0.6), a verify of 65 ms (1.3 plain steps), 5 ms of the rest
    sd = StepParts("sd", k=3, step_ms=160.0, draft_ms=90.0, draft_calls_per_step=3.0, draft_token_ms=30.0,
                   verify_ms=65.0, rest_ms=5.0)
    alpha = break_even_acceptance(explain(sd, plain, (1.0, 1.0, 1.0)))
    assert alpha == pytest.approx(0.6 + (1.3 + 0.1 - 1) / 3)  # c + (verify_ratio + rest_ratio - 1) / draft calls
    assert break_even_tokens(explain(sd, plain, (1.0, 1.0, 1.0))) == pytest.approx(160 / 50)
    sd.tokens_per_step = 1 + alpha * 3  # each step: the target's own token plus the accepted drafts
    assert explain(sd, plain, (1.0, 1.0, 1.0)).predicted == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="No draft call was measured"):  # a configuration without a draft has no break-even
        break_even_acceptance({"draft_ms": 0.0, "draft_token_ms": 0.0, "verify_ratio": 1.0, "rest_ratio": 0.0,
                               "t_plain_ms": 1.0})


def test_control_ratio_sits_beside_each_breakdown():
    control = [{"n": 1, "ratio": 1.0}, {"n": 2, "ratio": 1.1}, {"n": 4, "ratio": 1.3}]
    rows = [{"label": f"sd k={k}", "k": k, "t_plain_ms": 1.0, "draft_ms": 1.0, "draft_token_ms": 0.5, "verify_ratio": 1.2,
             "rest_ratio": 0.1} for k in (1, 2, 5)]
    ratios = [r["control_t(k+1)/t(1)"] for r in with_control(rows, control)]
    assert ratios == [1.1, None, 1.3]  # k=2 wants n=3 (not measured); k=5 is capped at the largest n, 4


def test_compare_refuses_mismatched_prompts():
    with pytest.raises(ConfigError, match="same prompts"):
        compare(None, None, None, None, {"a": "text"}, {"b": [1, 2]})
    with pytest.raises(ConfigError, match="between 1 and 32"):
        compare(None, None, None, None, {"a": "text"}, {"a": [1, 2]}, ks=(0,))
