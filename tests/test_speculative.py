import math

import pytest

from helpers.commands import main
from helpers.errors import ConfigError, ModelFolderError, TokenizerMismatchError
from helpers.generation import check_same_tokenizer, generation_config, load_pipeline
from helpers.prompts import builtin_prompts
from helpers.speculative import (
    SpeculativeSetup,
    best_k,
    expected_tokens_per_step,
    first_difference,
    lossless_check,
    predicted_speedup,
    run_speculative_benchmark,
    with_predictions,
)


def test_formula_limits():
    assert expected_tokens_per_step(0.0, 5) == 1.0  # every guess rejected: one token per pass
    assert expected_tokens_per_step(1.0, 5) == 6.0  # every guess accepted: k + 1
    assert math.isclose(expected_tokens_per_step(0.5, 2), 1 + 0.5 + 0.25)
    assert predicted_speedup(1.0, 4, 0.0) == 5.0
    assert predicted_speedup(0.0, 4, 0.1) < 1.0  # a useless draft only costs time
    # the blog's point: a cheaper draft beats a slightly more accurate one
    assert predicted_speedup(0.7, 4, 0.05) > predicted_speedup(0.75, 4, 0.12)
    assert 1 <= best_k(0.8, 0.05) <= 16
    with pytest.raises(ConfigError):
        expected_tokens_per_step(1.5, 3)
    with pytest.raises(ConfigError):
        predicted_speedup(0.5, 3, -1)


def test_generation_config_validation():
    with pytest.raises(ConfigError, match="between 1 and"):
        generation_config(num_assistant_tokens=0)
    with pytest.raises(ConfigError, match="not both"):
        generation_config(num_assistant_tokens=3, assistant_confidence_threshold=0.4)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        generation_config(assistant_confidence_threshold=1.5)


def test_tokenizer_mismatch_is_refused(tiny_models, tmp_path):
    import shutil

    import openvino as ov
    import openvino_tokenizers

    from helpers.tiny import local_corpus, train_tokenizer

    other = tmp_path / "other-draft"
    shutil.copytree(tiny_models.draft, other)
    (other / "conversion.json").unlink()  # someone else's draft: no manifest of ours recording its file sizes
    tok = train_tokenizer(local_corpus(3))  # a tokenizer trained on other text splits differently
    ov_tok, ov_detok = openvino_tokenizers.convert_tokenizer(tok, with_detokenizer=True)
    ov.save_model(ov_tok, other / "openvino_tokenizer.xml")
    ov.save_model(ov_detok, other / "openvino_detokenizer.xml")
    check_same_tokenizer(tiny_models.target, tiny_models.draft)
    with pytest.raises(TokenizerMismatchError, match="same model family"):
        load_pipeline(tiny_models.target, "CPU", draft_dir=other)


def test_not_a_model_folder(tiny_models, tmp_path):
    with pytest.raises(ModelFolderError):
        load_pipeline(tmp_path, "CPU")
    with pytest.raises(ModelFolderError):
        load_pipeline(tiny_models.target, "CPU", draft_dir=tmp_path)


def test_threshold_needs_a_draft(tiny_models):
    with pytest.raises(ConfigError, match="needs a draft"):
        run_speculative_benchmark(SpeculativeSetup(tiny_models.target, confidence_thresholds=(0.3,)), builtin_prompts()[:1])


def test_sweep_reports_acceptance_and_prediction(tiny_models):
    setup = SpeculativeSetup(tiny_models.target, tiny_models.draft, assistant_tokens=(2, 4), confidence_thresholds=(0.3,),
                             prompt_lookup=True, max_new_tokens=16)
    result = run_speculative_benchmark(setup, builtin_prompts()[:2], repeats=1, warmup=0)
    rows = {r["label"]: r for r in with_predictions(result.summary())}
    assert set(rows) == {"target alone", "draft k=2", "draft k=4", "draft threshold=0.3", "prompt lookup k=4"}
    for label in ("draft k=2", "draft k=4"):
        assert 0.0 <= rows[label]["acceptance_rate"] <= 1.0
        assert rows[label]["predicted_speedup"] > 0
        assert 1.0 <= rows[label]["tokens_per_step"] <= rows[label]["k"] + 1
    assert rows["prompt lookup k=4"]["acceptance_rate"] is None


def test_a_confidence_threshold_decides_how_many_tokens_the_draft_proposes(tiny_models):
    # Under greedy sampling OpenVINO GenAI scores a drafted token only when log-probs are requested; unscored, every
    # threshold drafted exactly one token per step. A low threshold must now draft more per step than a high one.
    pipe = load_pipeline(tiny_models.target, "CPU", draft_dir=tiny_models.draft)
    prompt = builtin_prompts()[0].text
    drafted = {}
    for threshold in (0.02, 0.95):
        result = pipe.generate([prompt], generation_config(48, assistant_confidence_threshold=threshold))
        metrics = result.extended_perf_metrics
        drafted[threshold] = metrics.get_num_draft_tokens() / len(metrics.main_model_metrics.raw_metrics.m_batch_sizes)
    assert drafted[0.95] <= 1.0 < drafted[0.02], drafted
    plain = pipe.generate([prompt], generation_config(48, num_assistant_tokens=2))
    assert plain.extended_perf_metrics.get_num_draft_tokens() > 0


def test_lossless_under_exact_settings(tiny_models):
    rows = lossless_check(tiny_models.target, tiny_models.draft, builtin_prompts(), exact=True, max_new_tokens=32)
    assert all(r["identical"] for r in rows), rows
    assert first_difference("abc", "abd") == 2 and first_difference("ab", "ab") is None


def test_bench_cli_writes_json(tiny_models, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--target", str(tiny_models.target), "--draft", str(tiny_models.draft), "-k", "3",
                 "--repeats", "1", "--warmup", "0", "--max-new-tokens", "8", "--json", str(out)])
    assert code == 0 and out.is_file()
    assert "draft k=3" in capsys.readouterr().out
    assert main(["bench", "--target", str(tiny_models.target), "--draft", str(tiny_models.draft), "-k", "99"]) == 2
    assert "between 1 and" in capsys.readouterr().err
