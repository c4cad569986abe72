"""ReplaceMe repair of a pruned draft: the fold is exact, and the repair helps on a trained tiny model."""

import copy
import json

import pytest

from helpers import replaceme
from helpers.errors import ConfigError, ModelFolderError
from helpers.hf import load_causal_lm
from helpers.pruning import Block, decoder_layers, remove_block
from helpers.tiny import build_tiny_pair, local_corpus


def _random_model(seed: int = 0, bias: bool = False):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=4, num_attention_heads=2,
                         num_key_value_heads=1, head_dim=16)
    model = Qwen3ForCausalLM(config).eval()
    if bias:  # Qwen has no bias in down_proj; other layouts do, and the fold must carry it
        layer = decoder_layers(model)[0]
        old = layer.mlp.down_proj
        layer.mlp.down_proj = torch.nn.Linear(old.in_features, old.out_features, bias=True)
        layer.mlp.down_proj.weight.data.copy_(old.weight.data)
    return model


@pytest.mark.parametrize("bias", [False, True])
def test_folded_map_equals_the_map_applied_after_the_mlp(bias):
    import torch

    model = _random_model(bias=bias)
    transform = torch.eye(32) + 0.3 * torch.randn(32, 32)
    explicit = copy.deepcopy(model)
    decoder_layers(explicit)[0].mlp.register_forward_hook(lambda mod, args, out: out @ transform)
    replaceme.fold_into_down_proj(decoder_layers(model)[0], transform)
    ids = torch.randint(0, 64, (2, 9))
    with torch.no_grad():
        folded, reference = model(input_ids=ids).logits, explicit(input_ids=ids).logits
    assert torch.allclose(folded, reference, atol=1e-5)
    assert not torch.allclose(folded, _random_model(bias=bias)(input_ids=ids).logits, atol=1e-3)  # T did something


def test_least_squares_fit_recovers_a_known_map_and_beats_identity():
    import torch

    torch.manual_seed(0)
    m = torch.randn(500, 16, dtype=torch.float64)
    true_map = torch.randn(16, 16, dtype=torch.float64)
    r = m @ true_map + 0.01 * torch.randn(500, 16, dtype=torch.float64)
    stats = replaceme.BlockStatistics(mtm=m.T @ m, mtr=m.T @ r, rtr=float((r * r).sum()), tokens=500)
    fitted = replaceme.fit_linear_map(stats, ridge=0.0)
    assert torch.allclose(fitted.double(), true_map, atol=1e-2)
    assert stats.error(fitted.double()) < 0.01 < stats.error(torch.eye(16, dtype=torch.float64))
    direct = float(((r - m @ fitted.double()) ** 2).sum() / 500)
    assert stats.error(fitted.double()) == pytest.approx(direct, rel=1e-6)
    with pytest.raises(ConfigError):
        replaceme.fit_linear_map(stats, ridge=-1.0)


def test_statistics_match_the_hidden_states_they_summarise():
    """With T = I the statistics' error is exactly ||y - h_i||^2 per token, measured with output_hidden_states."""
    import torch

    model = _random_model()
    batch = {"input_ids": torch.randint(0, 64, (1, 12)), "attention_mask": torch.ones(1, 12, dtype=torch.long)}
    stats = replaceme.collect_block_statistics(model, Block(1, 2), [batch])
    with torch.no_grad():
        states = model(**batch, output_hidden_states=True).hidden_states  # [embeddings, after layer 0, ...]
    direct = float(((states[3] - states[1]) ** 2).sum() / 12)
    assert stats.tokens == 12
    assert stats.error(torch.eye(32, dtype=torch.float64)) == pytest.approx(direct, rel=1e-5)
    with pytest.raises(ConfigError, match="layer 0"):
        replaceme.collect_block_statistics(model, Block(0, 1), [batch])


@pytest.fixture(scope="module")
def target_hf():
    return build_tiny_pair().target


def _texts():
    corpus = "\n".join(local_corpus(60))
    chunks = [corpus[i:i + 600] for i in range(0, 120 * 600, 600)]
    return chunks[:80], chunks[80:120]  # calibration, held out


def test_repair_writes_a_reloadable_folder_and_lowers_the_error(tmp_path, target_hf):
    calibration, held_out = _texts()
    block = Block(2, 2)
    result = replaceme.repair_pruned_model(target_hf, tmp_path / "repaired", block, calibration, max_length=128)
    assert result.action == "repaired" and result.removed == [2, 3] and result.kept == [0, 1, 4, 5]
    assert result.mse_repaired < result.mse_pruned
    manifest = json.loads((tmp_path / "repaired" / replaceme.MANIFEST_NAME).read_text())
    assert manifest["removed"] == [2, 3] and manifest["mse_repaired"] == result.mse_repaired
    assert json.loads((tmp_path / "repaired" / "config.json").read_text())["num_hidden_layers"] == 4
    assert replaceme.repair_pruned_model(target_hf, tmp_path / "repaired", block, calibration,
                                         max_length=128).action == "reused"

    # Held-out text: the repaired model agrees with the unpruned one at least as often as plain pruning does, and its
    # last hidden state is closer.
    import torch

    full, tokenizer = load_causal_lm(target_hf)
    plain = remove_block(copy.deepcopy(full), block)
    repaired, _ = load_causal_lm(result.path)
    batches = replaceme.token_batches(tokenizer, held_out, max_length=128)
    agree_plain = replaceme.top1_agreement(full, plain, batches)
    agree_repaired = replaceme.top1_agreement(full, repaired, batches)
    print(f"held-out top-1 agreement with the unpruned model: plain {agree_plain:.3f}, repaired {agree_repaired:.3f}; "
          f"calibration MSE {result.mse_pruned:.4f} -> {result.mse_repaired:.4f}")
    assert agree_repaired >= agree_plain

    def last_hidden_error(model):
        with torch.no_grad():
            total = 0.0
            for batch in batches:
                keep = batch["attention_mask"].bool()
                ref = full.model(**batch).last_hidden_state[keep]
                total += float(((model.model(**batch).last_hidden_state[keep] - ref) ** 2).sum())
            return total
    assert last_hidden_error(repaired) < last_hidden_error(plain)


def test_repair_refuses_what_it_cannot_do(tmp_path, target_hf):
    texts = ["def f():\n    return 1\n"]
    with pytest.raises(ConfigError, match="layer 0"):
        replaceme.repair_pruned_model(target_hf, tmp_path / "a", Block(0, 1), texts)
    with pytest.raises(ConfigError, match="last layer"):
        replaceme.repair_pruned_model(target_hf, tmp_path / "b", Block(5, 1), texts)
    with pytest.raises(ConfigError, match="non-empty"):
        replaceme.repair_pruned_model(target_hf, tmp_path / "c", Block(2, 1), ["", "  "])
    (tmp_path / "taken").mkdir()
    with pytest.raises(ModelFolderError, match="already exists"):
        replaceme.repair_pruned_model(target_hf, tmp_path / "taken", Block(2, 1), texts)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_repaired_tiny_draft_equals_the_pruned_draft_with_the_map_applied_explicitly(tmp_path):
    """On the tiny draft: the saved repair (T folded into down_proj, block removed) gives the logits of the pruned
    draft with the same T applied after the MLP before the cut (unfolded)."""
    import torch

    draft_hf = build_tiny_pair().draft
    model, tokenizer = load_causal_lm(draft_hf)
    calibration, held_out = _texts()
    calibration = calibration[:16]
    block = Block(1, 1)
    batches = replaceme.token_batches(tokenizer, calibration, max_length=128)
    transform = replaceme.fit_linear_map(replaceme.collect_block_statistics(model, block, batches))
    unfolded = remove_block(copy.deepcopy(model), block)
    decoder_layers(unfolded)[block.start - 1].mlp.register_forward_hook(lambda mod, args, out: out @ transform)
    result = replaceme.repair_pruned_model(draft_hf, tmp_path / "repaired", block, calibration, max_length=128)
    folded, _ = load_causal_lm(result.path)
    assert len(decoder_layers(folded)) == len(decoder_layers(model)) - 1  # no extra layer in the saved model
    probe = tokenizer(held_out[:4], return_tensors="pt", padding=True, truncation=True, max_length=128)
    with torch.no_grad():
        expected, actual = unfolded(**probe).logits, folded(**probe).logits
        plain = remove_block(copy.deepcopy(model), block)(**probe).logits
    print(f"max |folded - unfolded| = {(actual - expected).abs().max():.1e}; "
          f"max |plain - unfolded| = {(plain - expected).abs().max():.1e}")
    assert torch.allclose(actual, expected, atol=1e-4)
    assert not torch.allclose(plain, expected, atol=1e-2)  # the map changed the model
