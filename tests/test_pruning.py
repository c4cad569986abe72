import json

import pytest

from helpers import pruning
from helpers.commands import main
from helpers.errors import ConfigError, ModelFolderError
from helpers.hf import load_causal_lm
from helpers.prompts import builtin_prompts
from helpers.pruning import Block, angular_distances, check_block, deepest_block, prune_model
from helpers.tiny import build_tiny_pair

TEXTS = ["def main():\n    return 0\n", "import os\nprint(os.getcwd())", "class A:\n    pass", "x = [i * i for i in range(10)]"]


@pytest.fixture(scope="module")
def draft_dir():
    return build_tiny_pair().draft


@pytest.fixture(scope="module")
def pruned(tmp_path_factory, draft_dir):
    return prune_model(draft_dir, tmp_path_factory.mktemp("pruned") / "draft-pruned", Block(1, 1), method="manual")


def test_check_block_refuses_what_cannot_be_removed():
    with pytest.raises(ConfigError, match="at least one must stay"):
        check_block(4, 0, 4)
    with pytest.raises(ConfigError, match="would remove the first or last layer"):
        check_block(4, 1, 3)
    with pytest.raises(ConfigError, match="first layer"):
        check_block(4, 0, 1)
    with pytest.raises(ConfigError, match="last layer"):
        check_block(4, 3, 1)
    with pytest.raises(ConfigError, match="does not fit"):
        check_block(4, 3, 2, allow_last=True)
    with pytest.raises(ConfigError, match="at least one layer"):
        check_block(4, 1, 0)
    assert check_block(4, 0, 1, allow_first=True).layers == [0]
    assert check_block(4, 3, 1, allow_last=True).layers == [3]


def test_deepest_block_keeps_the_last_layer():
    assert deepest_block(4, 1) == Block(2, 1)
    assert deepest_block(28, 6).layers == [21, 22, 23, 24, 25, 26]
    with pytest.raises(ConfigError):
        deepest_block(4, 3)


def test_angular_distances_shape_range_and_choice(draft_dir):
    result = angular_distances(draft_dir, TEXTS, progress=False)
    layers = result.num_layers
    assert layers == 4 and result.num_texts == len(TEXTS) and result.num_tokens == len(TEXTS)
    assert len(result.matrix) == layers - 1
    for size, row in enumerate(result.matrix, start=1):
        assert [v is None for v in row] == [start + size > layers for start in range(layers)]
        assert all(0.0 <= v <= 1.0 for v in row if v is not None)
    best = result.best_block(1)
    assert best.start in (1, 2)  # neither the first nor the last layer by default
    assert best.distance == min(result.distance(s, 1) for s in (1, 2))
    assert result.best_block(1, allow_first=True, allow_last=True).distance == min(v for v in result.matrix[0] if v is not None)
    with pytest.raises(ConfigError):
        result.best_block(3)  # 3 of 4 layers cannot go while first and last stay
    assert [r["n (layers removed)"] for r in result.best_blocks()] == [1, 2]


@pytest.mark.parametrize("mode", ["last", "all"])
def test_padding_does_not_change_distances(draft_dir, mode):
    """Texts of different lengths padded into one batch give the same distances as one text per batch."""
    model, tokenizer = load_causal_lm(draft_dir)
    batched = angular_distances(model, TEXTS, token_mode=mode, batch_size=len(TEXTS), tokenizer=tokenizer, progress=False)
    single = angular_distances(model, TEXTS, token_mode=mode, batch_size=1, tokenizer=tokenizer, progress=False)
    assert batched.num_tokens == single.num_tokens
    if mode == "all":
        assert batched.num_tokens == sum(len(tokenizer(t)["input_ids"]) for t in TEXTS)
    for row_b, row_s in zip(batched.matrix, single.matrix, strict=True):
        for b, s in zip(row_b, row_s, strict=True):
            assert (b is None and s is None) or abs(b - s) < 1e-5


def test_hooks_see_the_raw_last_layer_output(draft_dir):
    """transformers' hidden_states[-1] is normalised; our hooks are not, and agree with it everywhere else."""
    import math

    import torch

    model, tokenizer = load_causal_lm(draft_dir)
    text = TEXTS[0]
    ours = angular_distances(model, [text], tokenizer=tokenizer, progress=False)
    with torch.no_grad():
        states = model(**tokenizer(text, return_tensors="pt"), output_hidden_states=True).hidden_states
    last = [h[0, -1] for h in states]

    def d(a, b):
        return math.acos(max(-1.0, min(1.0, torch.nn.functional.cosine_similarity(a, b, dim=0).item()))) / math.pi

    assert abs(ours.distance(1, 1) - d(last[1], last[2])) < 1e-4
    assert abs(ours.distance(3, 1) - d(last[3], last[4])) > 1e-3  # last entry differs: it went through the final norm


def test_pruned_model_is_consistent_and_reused(pruned, draft_dir):
    from safetensors.torch import load_file

    assert pruned.action == "pruned" and pruned.removed == [1] and pruned.kept == [0, 2, 3]
    assert pruned.params_after < pruned.params_before
    config = json.loads((pruned.path / "config.json").read_text())
    assert config["num_hidden_layers"] == 3 and len(config["layer_types"]) == 3
    assert (pruned.path / "tokenizer.json").is_file() and (pruned.path / pruning.MANIFEST_NAME).is_file()
    before, after = load_file(draft_dir / "model.safetensors"), load_file(pruned.path / "model.safetensors")
    assert after["model.layers.1.mlp.up_proj.weight"].equal(before["model.layers.2.mlp.up_proj.weight"])
    assert not any(key.startswith("model.layers.3.") for key in after)
    again = prune_model(draft_dir, pruned.path, Block(1, 1))
    assert again.action == "reused" and again.kept == pruned.kept


def test_prune_refuses_bad_requests(tmp_path, pruned, draft_dir, tiny_models):
    with pytest.raises(ConfigError, match="first layer"):
        prune_model(draft_dir, tmp_path / "a", Block(0, 1))
    with pytest.raises(ConfigError, match="removed|at least one"):
        prune_model(draft_dir, tmp_path / "b", Block(0, 4), allow_first=True, allow_last=True)
    with pytest.raises(ModelFolderError, match="another model"):
        prune_model(draft_dir, pruned.path, Block(2, 1))
    with pytest.raises(ModelFolderError, match="config.json"):
        prune_model(tmp_path, tmp_path / "c", Block(1, 1))
    with pytest.raises(ModelFolderError, match="is an OpenVINO model"):
        prune_model(tiny_models.draft, tmp_path / "d", Block(1, 1))
    assert not any(p.name.startswith((".a", ".b", "a", "b")) for p in tmp_path.iterdir())


def test_pruned_draft_exports_and_assists_the_target(tmp_path, pruned, tiny_models, monkeypatch):
    from helpers.presets import get_preset

    weights = pruning.draft_weights(get_preset("tiny"), 8)
    exported = pruning.export_draft(pruned.path, weights, tmp_path / "pruned-int8")
    assert exported.action == "exported"
    result = pruning.compare_drafts(tiny_models.target, {"pruned": exported.path}, builtin_prompts()[:1],
                                    max_new_tokens=8, repeats=1, warmup=0)
    rows = pruning.comparison_rows(result)
    assert [r["candidate"] for r in rows] == ["target alone", "pruned k=3"]
    assert 0.0 <= rows[1]["acceptance"] <= 1.0 and rows[1]["predicted"] > 0
    grouped = pruning.compare_drafts(tiny_models.target, {"a": tiny_models.draft, "b": exported.path}, builtin_prompts()[:1],
                                     max_new_tokens=8, repeats=1, warmup=0, one_draft_at_a_time=True)
    assert [r["label"] for r in grouped.summary()] == ["target alone", "a k=3", "b k=3"]
    assert all(len(grouped.pairs(label)) == 1 for label in ("a k=3", "b k=3"))  # each paired with its own baseline run

    # A checkpoint changed after its export is exported again, not silently reused.
    seen = []
    monkeypatch.setattr("helpers.conversion.export_model", lambda *a, overwrite=False, **k: seen.append(overwrite))
    pruning.export_draft(pruned.path, weights, tmp_path / "pruned-int8")
    (pruned.path / "model.safetensors").touch()
    pruning.export_draft(pruned.path, weights, tmp_path / "pruned-int8")
    assert seen == [False, True]


def test_draft_weights():
    from helpers.presets import get_preset

    preset = get_preset("tiny")
    assert pruning.draft_weights(preset, 8) == preset.draft.weights
    assert pruning.draft_weights(preset, 4).bits == 4
    with pytest.raises(ConfigError):
        pruning.draft_weights(preset, 3)


def test_cli_prune(tmp_path, capsys, draft_dir):
    out = tmp_path / "cli-pruned"
    assert main(["prune", "--source", str(draft_dir), "--output", str(out), "--layers", "1", "--samples", "8"]) == 0
    text = capsys.readouterr().out
    assert "best block" in text and "removed layer" in text and (out / "config.json").is_file()
    assert main(["prune", "--source", str(draft_dir), "--output", str(tmp_path / "x"), "--layers", "4"]) == 2
    err = capsys.readouterr().err
    assert "error: Cannot remove 4 layers" in err and "Traceback" not in err  # (stderr also holds loading bars)
