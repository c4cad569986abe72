import json

from transformers import AutoConfig, AutoTokenizer

from helpers.tiny import DRAFT_SIZE, TARGET_SIZE, build_tiny_pair


def test_tiny_pair_is_cached_and_shares_a_tokenizer(tiny_models):
    pair = build_tiny_pair()  # second call: reused from the session build
    manifest = json.loads((pair.root / "tiny_pair.json").read_text())
    assert manifest["final_loss"]["target"] < 6.5  # trained, not random (random is ~ln(2057) = 7.6)
    target_cfg, draft_cfg = AutoConfig.from_pretrained(pair.target), AutoConfig.from_pretrained(pair.draft)
    assert (target_cfg.num_hidden_layers, draft_cfg.num_hidden_layers) == (
        TARGET_SIZE.num_hidden_layers, DRAFT_SIZE.num_hidden_layers)
    assert target_cfg.vocab_size == draft_cfg.vocab_size
    assert (pair.target / "tokenizer.json").read_bytes() == (pair.draft / "tokenizer.json").read_bytes()


def test_tokenizer_has_qwen_markup_and_thinking_template(tiny_models):
    tok = AutoTokenizer.from_pretrained(build_tiny_pair().target)
    for token in ("<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>"):
        assert len(tok(token, add_special_tokens=False)["input_ids"]) == 1, token
    messages = [{"role": "user", "content": "hi"}]
    off = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    on = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=True)
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert on.endswith("<|im_start|>assistant\n")
    tools = [{"type": "function", "function": {"name": "web_search", "parameters": {}}}]
    with_tools = tok.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    assert "<tools>" in with_tools and "web_search" in with_tools
