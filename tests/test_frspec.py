"""FR-Spec trimmed draft head: same ranking inside the subset, nothing outside it wins, exports and runs in GenAI."""

from collections import Counter

import pytest

from helpers import frspec
from helpers.errors import ConfigError, ModelFolderError
from helpers.tiny import build_tiny_pair, local_corpus, train_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(local_corpus(60))


def test_trimmed_head_keeps_the_argmax_inside_the_subset_and_never_picks_outside():
    import torch

    torch.manual_seed(0)
    head = torch.nn.Linear(32, 500, bias=False)
    subset = sorted(torch.randperm(500)[:120].tolist())
    trimmed = frspec.trimmed_head(head, subset)
    hidden = torch.randn(4, 300, 32) * 3
    with torch.no_grad():
        full, cheap = head(hidden), trimmed(hidden)
    assert cheap.shape == full.shape
    inside = torch.zeros(500, dtype=torch.bool)
    inside[subset] = True
    assert torch.allclose(cheap[..., inside], full[..., inside], atol=1e-5)
    assert (cheap[..., ~inside] == frspec.FILL_VALUE).all()
    full_top, cheap_top = full.argmax(-1), cheap.argmax(-1)
    assert inside[cheap_top].all()  # ids outside the subset never win
    hit = inside[full_top]
    assert hit.any() and (~hit).any()  # both cases occur in this sample
    assert (cheap_top[hit] == full_top[hit]).all()


def test_subset_always_holds_required_ids_then_the_most_frequent():
    counts = frspec.count_token_frequencies([[5, 5, 5, 7, 7, 9], [7, 11]])
    assert counts == Counter({5: 3, 7: 3, 9: 1, 11: 1})
    assert frspec.frequent_token_subset(counts, 3, vocab_size=20, always=[0]) == [0, 5, 7]
    assert frspec.frequent_token_subset(counts, 4, vocab_size=20, always=[0]) == [0, 5, 7, 9]  # tie 9/11: lower id
    assert len(frspec.frequent_token_subset(counts, 8, vocab_size=20)) == 8  # padded when the counts run out
    with pytest.raises(ConfigError, match="subset size"):
        frspec.frequent_token_subset(counts, 1, vocab_size=20, always=[0, 1])
    with pytest.raises(ConfigError, match="lie in"):
        frspec.frequent_token_subset(counts, 3, vocab_size=20, always=[25])
    with pytest.raises(ConfigError, match="tokenizer"):
        frspec.count_token_frequencies(["text"])


def test_required_ids_cover_special_tokens_and_the_chat_template(tokenizer):
    required = frspec.required_token_ids(tokenizer)
    for token in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>", "</tool_call>"):
        assert tokenizer.convert_tokens_to_ids(token) in required
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "u"}], tokenize=False, add_generation_prompt=True)
    assert set(tokenizer(prompt, add_special_tokens=False)["input_ids"]) <= required
    counts = frspec.count_token_frequencies(local_corpus(5)[:2], tokenizer)
    subset = frspec.frequent_token_subset(counts, 400, len(tokenizer), always=required)
    assert required <= set(subset) and len(subset) == 400


@pytest.fixture(scope="module")
def draft_hf():
    return build_tiny_pair().draft


def test_trimmed_tiny_draft_agrees_with_the_full_one_inside_the_subset(draft_hf):
    import torch

    from helpers.hf import load_causal_lm

    model, tok = load_causal_lm(draft_hf)
    texts = local_corpus(60)[40:44]
    counts = frspec.count_token_frequencies(local_corpus(30), tok)
    subset = frspec.frequent_token_subset(counts, 512, model.config.vocab_size, always=frspec.required_token_ids(tok))
    batch = tok([t[:800] for t in texts], return_tensors="pt", padding=True, truncation=True, max_length=128)
    with torch.no_grad():
        full = model(**batch).logits
        frspec.trim_lm_head(model, subset)
        cheap = model(**batch).logits
    inside = torch.zeros(full.shape[-1], dtype=torch.bool)
    inside[subset] = True
    full_top, cheap_top = full.argmax(-1), cheap.argmax(-1)
    hit = inside[full_top]
    assert inside[cheap_top].all() and (cheap_top[hit] == full_top[hit]).all()
    assert hit.float().mean() > 0.5  # frequent tokens cover most greedy choices on held-out code
    print(f"greedy token inside the 512-token subset: {hit.float().mean():.3f}")


def test_trimmed_draft_exports_and_drafts_for_genai_losslessly(tmp_path, draft_hf, tiny_models):
    from transformers import AutoTokenizer

    from helpers.generation import generation_config, load_pipeline
    from helpers.presets import get_preset

    tok = AutoTokenizer.from_pretrained(str(draft_hf))
    counts = frspec.count_token_frequencies(local_corpus(30), tok)
    subset = frspec.frequent_token_subset(counts, 512, len(tok), always=frspec.required_token_ids(tok))
    dest = frspec.export_trimmed_draft(draft_hf, subset, tmp_path / "trimmed", get_preset("tiny").draft.weights)
    assert (dest / "openvino_model.xml").is_file() and (dest / "openvino_tokenizer.xml").is_file()
    # The graph ends in the scatter, so GenAI's gather-before-lm_head pattern does not match; the plain draft's does.
    chain = frspec.output_producer(dest)
    assert chain[0] == "ScatterElementsUpdate" and not frspec.genai_gathers_before_lm_head(dest)
    assert frspec.genai_gathers_before_lm_head(tiny_models.draft)

    exact = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0}
    prompt = "def fibonacci(n):"
    alone = load_pipeline(tiny_models.target, **exact).generate([prompt], generation_config(24))
    assisted = load_pipeline(tiny_models.target, draft_dir=dest, **exact).generate(
        [prompt], generation_config(24, num_assistant_tokens=3))
    assert assisted.texts == alone.texts  # greedy speculative decoding stays lossless with the trimmed draft
    metrics = assisted.extended_perf_metrics
    assert metrics.get_num_draft_tokens() > 0 and 0.0 <= metrics.get_draft_acceptance_rate() <= 1.0

    # With the Gather on `sampled_tokens_indices` inserted by hand, GenAI feeds that input and stays lossless.
    import shutil

    gathered = tmp_path / "trimmed-gathered"
    shutil.copytree(dest, gathered)
    frspec.add_sampled_tokens_gather(gathered)
    frspec.add_sampled_tokens_gather(gathered)  # idempotent
    import openvino as ov

    inputs = [p.get_any_name() for p in ov.Core().read_model(gathered / "openvino_model.xml").inputs]
    assert inputs.count("sampled_tokens_indices") == 1
    edited = load_pipeline(tiny_models.target, draft_dir=gathered, **exact).generate(
        [prompt], generation_config(24, num_assistant_tokens=3))
    assert edited.texts == alone.texts
    # Same proposals as the unedited trimmed draft: the runner filled the new input (an unfed one would break drafting).
    for name in ("get_num_draft_tokens", "get_num_accepted_tokens"):
        assert getattr(edited.extended_perf_metrics, name)() == getattr(metrics, name)()
    print(f"trimmed draft: {metrics.get_num_accepted_tokens()}/{metrics.get_num_draft_tokens()} draft tokens accepted, "
          "the same with the gather edit")


def test_gather_edit_selects_the_same_logits(tmp_path):
    """On a random model exported from memory: the edited IR returns exactly the unedited logits at the given rows."""
    import numpy as np
    import openvino as ov
    import torch
    from optimum.exporters.openvino import export_from_model
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(vocab_size=300, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=1, head_dim=16)).eval()
    frspec.trim_lm_head(model, range(0, 300, 3))
    export_from_model(model, tmp_path / "plain", task="text-generation-with-past", stateful=True)
    import shutil

    shutil.copytree(tmp_path / "plain", tmp_path / "edited")
    frspec.add_sampled_tokens_gather(tmp_path / "edited")
    core = ov.Core()
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}
    plain = core.compile_model(tmp_path / "plain" / "openvino_model.xml", "CPU", f32).create_infer_request()
    edited = core.compile_model(tmp_path / "edited" / "openvino_model.xml", "CPU", f32).create_infer_request()
    ids = np.random.default_rng(0).integers(0, 300, (1, 9))
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "position_ids": np.arange(9)[None],
            "beam_idx": np.zeros(1, np.int32)}
    rows = np.array([8, 0, 4], np.int64)
    full = plain.infer(feed)[0]
    picked = edited.infer({**feed, "sampled_tokens_indices": rows})[0]
    assert picked.shape == (3, 1, 300)
    np.testing.assert_allclose(picked[:, 0], full[0, rows], atol=1e-5)
    with pytest.raises(ModelFolderError, match="export_trimmed_draft"):
        frspec.add_sampled_tokens_gather(tmp_path)  # no model there
