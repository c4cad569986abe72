import json
import sys
from dataclasses import replace

import pytest

from helpers import distill, distill_training
from helpers.commands import main
from helpers.distill import HealConfig, generate_distillation_data, heal, read_distillation_data, split_held_out
from helpers.errors import (
    ConfigError,
    ModelFolderError,
    PromptFileError,
    TokenizerMismatchError,
)
from helpers.prompts import Prompt, load_prompt_source
from helpers.tiny import build_tiny_pair

QUICK = HealConfig(steps=8, learning_rate=2e-3, batch_size=4, max_length=128, warmup_steps=0, save_steps=4)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory, tiny_models):
    path = tmp_path_factory.mktemp("distill") / "distill.jsonl"
    generate_distillation_data(tiny_models.target, load_prompt_source("builtin", limit=16), path, max_new_tokens=24,
                               batch_size=8, progress=False)
    return path


def test_generation_resumes_without_duplicates_or_torn_lines(tmp_path, tiny_models):
    prompts = load_prompt_source("builtin", limit=7)
    path = tmp_path / "data.jsonl"
    first = generate_distillation_data(tiny_models.target, prompts[:3], path, max_new_tokens=8, batch_size=2, progress=False)
    assert (first.generated, first.skipped, first.total) == (3, 0, 3) and first.generated_tokens > 0
    # An interrupted append leaves half a line; the next run drops it and carries on.
    with path.open("a") as handle:
        handle.write('{"id": "' + prompts[3].id + '", "chat_prompt": "x", "ans')
    second = generate_distillation_data(tiny_models.target, prompts, path, max_new_tokens=8, batch_size=2, progress=False)
    assert (second.generated, second.skipped, second.total) == (4, 3, 7)
    records = read_distillation_data(path)
    assert [r["id"] for r in records] == [p.id for p in prompts]
    assert all(r["answer_tokens"] <= 8 and r["chat_prompt"].startswith("<|im_start|>") for r in records)
    third = generate_distillation_data(tiny_models.target, prompts, path, max_new_tokens=8, progress=False)
    assert third.generated == 0 and len(read_distillation_data(path)) == 7
    assert third.tokens_per_second > 0  # the rate measured by the earlier calls, kept next to the file
    with pytest.raises(ConfigError, match="other settings"):
        generate_distillation_data(tiny_models.target, prompts, path, max_new_tokens=16, progress=False)
    with pytest.raises(PromptFileError, match="unique"):
        generate_distillation_data(tiny_models.target, [Prompt("a", "c", "x"), Prompt("a", "c", "y")], tmp_path / "d.jsonl")


def test_bad_data_files_are_named(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(PromptFileError, match="no records"):
        read_distillation_data(empty)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "chat_prompt": "p", "answer": "x"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(PromptFileError, match="line 2"):
        read_distillation_data(broken)
    partial = tmp_path / "partial.jsonl"
    partial.write_text('{"id": "a", "prompt": "p"}\n')
    with pytest.raises(PromptFileError, match="missing chat_prompt, answer"):
        read_distillation_data(partial)
    with pytest.raises(PromptFileError, match="does not exist"):
        read_distillation_data(tmp_path / "nothing.jsonl")


def test_reading_data_with_a_torn_last_line_leaves_the_file_alone(tmp_path):
    torn = tmp_path / "torn.jsonl"
    original = b'{"id": "a", "chat_prompt": "p", "answer": "x"}\n{"id": "b", "chat_pro'
    torn.write_bytes(original)
    with pytest.raises(PromptFileError, match="line 2.*distill-data"):
        read_distillation_data(torn)
    assert torn.read_bytes() == original  # the file may be the user's own: a reader never cuts it


def test_examples_learn_the_answer_only():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(build_tiny_pair().draft)
    record = {"chat_prompt": "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "answer": "def f():", "finished": True}
    (example,) = distill_training.build_examples([record], tokenizer, max_length=64)
    prompt_len = len(tokenizer(record["chat_prompt"], add_special_tokens=False)["input_ids"])
    assert example["labels"][:prompt_len] == [-100] * prompt_len
    assert example["labels"][prompt_len:] == example["input_ids"][prompt_len:]
    assert example["labels"][-1] == tokenizer.eos_token_id  # finished answers teach where to stop
    long = {**record, "answer": "x = 1\n" * 200, "finished": False}
    (cut,) = distill_training.build_examples([long], tokenizer, max_length=32)
    assert len(cut["input_ids"]) == 32 and cut["labels"][-1] != tokenizer.eos_token_id


def test_heal_stops_resumes_and_matches_an_uninterrupted_run(tmp_path, data_file):
    from safetensors.torch import load_file

    draft = build_tiny_pair().draft
    stopped = heal(draft, data_file, tmp_path / "healed", QUICK, stop_after_steps=4, progress=False)
    assert stopped.action == "stopped" and stopped.steps_done == 4 and not (tmp_path / "healed").exists()
    resumed = heal(draft, data_file, tmp_path / "healed", QUICK, progress=False)
    assert resumed.action == "resumed" and resumed.resumed_from_step == 4 and resumed.steps_done == 8
    assert [step for step, _ in resumed.losses] == sorted({step for step, _ in resumed.losses})  # no step trained twice
    assert (tmp_path / "healed" / "tokenizer.json").is_file() and (tmp_path / "healed" / distill.HEALED_MANIFEST).is_file()

    straight = heal(draft, data_file, tmp_path / "straight", QUICK, progress=False)
    assert straight.action == "trained"
    # held-out agreement at the start and at each checkpoint survives the interruption, and picks the same step
    assert [step for step, _ in resumed.agreement_by_step] == [0, 4, 8]
    assert resumed.agreement_by_step == straight.agreement_by_step and resumed.kept_step == straight.kept_step
    a, b = load_file(tmp_path / "healed" / "model.safetensors"), load_file(tmp_path / "straight" / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] - b[k]).abs().max() < 1e-5 for k in a)
    assert any(not t.equal(load_file(draft / "model.safetensors")[k]) for k, t in a.items())  # it did learn something

    again = heal(draft, data_file, tmp_path / "healed", QUICK, progress=False)
    assert again.action == "reused" and again.tokens_per_second > 0 and again.losses == resumed.losses
    assert again.agreement_by_step == resumed.agreement_by_step and again.kept_step == resumed.kept_step
    with pytest.raises(ModelFolderError, match="other settings"):
        heal(draft, data_file, tmp_path / "healed", HealConfig(steps=8, learning_rate=1e-3, save_steps=4), progress=False)


def test_healing_that_lowers_agreement_keeps_the_starting_weights(tmp_path, data_file):
    """A learning rate far too high wrecks the draft: the guard measures held-out agreement falling and saves the
    starting weights, so healing never hands on a draft that agrees less than the one it started from."""
    from safetensors.torch import load_file

    from helpers.distill import agreement

    draft = build_tiny_pair().draft
    wrecking = replace(QUICK, learning_rate=0.5, held_out=0.25, max_grad_norm=100.0)
    result = heal(draft, data_file, tmp_path / "wrecked", wrecking, progress=False)
    by_step = dict(result.agreement_by_step)
    print(f"held-out agreement by step with a wrecking learning rate: {by_step}")
    assert sorted(by_step) == [0, 4, 8] and max(by_step[4], by_step[8]) < by_step[0]  # training did lower it
    assert result.kept_step == 0
    start, kept = load_file(draft / "model.safetensors"), load_file(tmp_path / "wrecked" / "model.safetensors")
    assert start.keys() == kept.keys() and all(start[k].equal(kept[k]) for k in start)
    held = split_held_out(read_distillation_data(data_file), 0.25)[1]
    assert round(agreement(tmp_path / "wrecked", held, QUICK.max_length), 4) == by_step[0]
    manifest = json.loads((tmp_path / "wrecked" / distill.HEALED_MANIFEST).read_text())
    assert manifest["kept_step"] == 0 and dict(manifest["agreement_by_step"]) == by_step


def test_heal_resumes_after_a_crash(tmp_path, data_file):
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 6:
                raise KeyboardInterrupt

    draft = build_tiny_pair().draft
    with pytest.raises(KeyboardInterrupt):
        heal(draft, data_file, tmp_path / "h", QUICK, callbacks=[Crash()], progress=False)
    assert not (tmp_path / "h").exists()
    result = heal(draft, data_file, tmp_path / "h", QUICK, progress=False)
    assert result.resumed_from_step == 4 and result.steps_done == 8
    heal(draft, data_file, tmp_path / "h2", QUICK, stop_after_steps=4, progress=False)
    with pytest.raises(ConfigError, match="other settings"):  # checkpoints made with other settings are not resumed
        heal(draft, data_file, tmp_path / "h2", HealConfig(steps=8, learning_rate=1e-3, save_steps=4), progress=False)


def test_heal_refuses_bad_input(tmp_path, data_file, tiny_models):
    from helpers.tiny import local_corpus, train_tokenizer

    draft = build_tiny_pair().draft
    other = tmp_path / "other-tokenizer"
    train_tokenizer(local_corpus(3)).save_pretrained(other)
    with pytest.raises(TokenizerMismatchError, match="same family"):
        heal(draft, data_file, tmp_path / "x", QUICK, target_dir=other, progress=False)
    with pytest.raises(ConfigError, match="teacher"):
        heal(draft, data_file, tmp_path / "x", HealConfig(kl_weight=0.5), progress=False)
    with pytest.raises(ModelFolderError, match="is an OpenVINO model"):
        heal(tiny_models.draft, data_file, tmp_path / "x", QUICK, progress=False)
    for bad in ({"steps": 0}, {"learning_rate": 2.0}, {"kl_weight": 1.5}, {"max_length": 4}):
        with pytest.raises(ConfigError):
            HealConfig(**bad)


def test_heal_with_kl_to_the_teacher_and_agreement(tmp_path, data_file):
    import math

    pair = build_tiny_pair()
    config = HealConfig(steps=2, learning_rate=2e-3, batch_size=4, max_length=128, warmup_steps=0, kl_weight=0.5, save_steps=10)
    result = heal(pair.draft, data_file, tmp_path / "kl", config, teacher_dir=pair.target, progress=False)
    assert result.steps_done == 2 and all(math.isfinite(loss) for _, loss in result.losses)
    records = read_distillation_data(data_file)
    for model in (pair.draft, result.path):
        assert 0.0 <= distill.agreement(model, records[:4]) <= 1.0


def test_cost_rows():
    rows = distill.cost_rows({"small": 10, "big": 1000}, answer_tokens=50, prompt_tokens=20, generation_tps=100,
                             training_tps=1000)
    assert [r["prompts"] for r in rows] == [10, 1000]
    assert rows[0]["data generation"] == "5 s" and rows[1]["healing"] == "70 s"
    unknown = distill.cost_rows({"x": 10}, 50, 20, generation_tps=float("nan"), training_tps=0)[0]
    assert unknown["data generation"] == "-" and unknown["healing"] == "-"


def test_cli_distill_data_and_heal(tmp_path, capsys, tiny_models, data_file, monkeypatch):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"id": "q1", "text": "def main():"}) + "\n")
    out = tmp_path / "d.jsonl"
    assert main(["distill-data", "--target", str(tiny_models.target), "--prompts", str(prompts), "--output", str(out),
                 "--max-new-tokens", "8"]) == 0
    assert "added now" in capsys.readouterr().out and len(read_distillation_data(out)) == 1
    assert main(["heal", "--draft", str(build_tiny_pair().draft), "--data", str(data_file), "--output",
                 str(tmp_path / "cli-healed"), "--steps", "2", "--batch-size", "4", "--max-length", "128"]) == 0
    out = capsys.readouterr().out
    assert "healed model:" in out and "held-out agreement" in out  # which step was kept, and why
    monkeypatch.setitem(sys.modules, "datasets", None)
    assert main(["distill-data", "--target", str(tiny_models.target), "--prompts", "BAAI/Infinity-Instruct"]) == 2
    err = capsys.readouterr().err
    assert "datasets" in err and "Traceback" not in err


def test_answer_logits_match_the_full_projection():
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=1)).eval()
    inputs = {"input_ids": torch.randint(0, 50, (2, 7)), "attention_mask": torch.ones(2, 7, dtype=torch.long)}
    keep = torch.zeros(2, 6, dtype=torch.bool)
    keep[0, 3:] = True
    keep[1, 5] = True
    with torch.no_grad():
        full = model(**inputs).logits[:, :-1][keep]
        selected = distill_training.answer_logits(model, inputs, keep)
    assert selected.shape == (4, 50) and torch.allclose(selected, full, atol=1e-5)


def test_heal_in_bfloat16_on_cpu(tmp_path, data_file, tiny_models):
    draft_hf = build_tiny_pair().draft
    config = HealConfig(steps=2, learning_rate=2e-3, batch_size=4, max_length=64, warmup_steps=0, save_steps=2, bf16=True)
    result = heal(draft_hf, data_file, tmp_path / "healed-bf16", config, progress=False)
    assert result.action == "trained" and result.steps_done == 2
    assert json.loads((tmp_path / "healed-bf16" / "healing.json").read_text())["key"]["bf16"] is True


def test_heal_on_the_targets_topk_next_to_the_cut_raises_agreement(tmp_path, data_file, tiny_models):
    """The CPU recipe's path end to end on the tiny pair: the OpenVINO target's top-k recorded, a pruned draft healed
    on KL to it with only the layers next to the cut trained, held-out records never trained on."""
    import torch
    from safetensors.torch import load_file

    from helpers.distill import agreement, split_held_out
    from helpers.pruning import Block, prune_model
    from helpers.soft_distill import record_target_topk

    records = read_distillation_data(data_file)
    train, held = split_held_out(records, 0.25)
    assert len(held) == 4 and {r["id"] for r in train}.isdisjoint(r["id"] for r in held)
    assert split_held_out(list(reversed(records)), 0.25)[1] == list(reversed(held))  # the same ids, whatever the order
    topk = tmp_path / "topk.jsonl"
    record_target_topk(tiny_models.target, records, topk, k=8, max_length=128, progress=False)
    pruned = prune_model(build_tiny_pair().draft, tmp_path / "pruned", Block(2, 1)).path
    # the tiny models take a larger learning rate than real ones (the CPU recipe uses 1e-4)
    config = HealConfig(steps=12, learning_rate=1e-2, batch_size=4, max_length=128, warmup_steps=2, save_steps=12,
                        topk=8, ce_weight=0.1, neighbour_layers=1, held_out=0.25)
    result = heal(pruned, data_file, tmp_path / "healed", config, topk_path=topk, cut=2, progress=False)
    assert result.action == "trained" and result.examples == len(train) and result.peak_rss_mb > 0
    before, after = load_file(pruned / "model.safetensors"), load_file(tmp_path / "healed" / "model.safetensors")
    changed = {k.split(".")[2] for k in before if k.startswith("model.layers.") and not torch.equal(before[k], after[k])}
    assert changed == {"1", "2"}  # the kept layers on each side of the cut, nothing else
    assert torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    for part, part_records in (("training", train), ("held-out", held)):
        agreement_before = agreement(pruned, part_records, 128)
        agreement_after = agreement(tmp_path / "healed", part_records, 128)
        print(f"pruned tiny draft, agreement with the target on the {part} records: {agreement_before:.3f} -> "
              f"{agreement_after:.3f}; loss {result.losses[0][1]:.3f} -> {result.losses[-1][1]:.3f}")
        assert agreement_after > agreement_before

    with pytest.raises(ConfigError, match="top-k"):
        heal(pruned, data_file, tmp_path / "x", config, cut=2, progress=False)
    with pytest.raises(ConfigError, match="cut"):
        heal(pruned, data_file, tmp_path / "x", config, topk_path=topk, progress=False)
    with pytest.raises(ConfigError, match="Record it again"):
        heal(pruned, data_file, tmp_path / "x", replace(config, max_length=64), topk_path=topk, cut=2, progress=False)
    for bad in ({"topk": 4, "kl_weight": 0.5}, {"held_out": 0.5}, {"ce_weight": 1.5}, {"max_grad_norm": 0.0}):
        with pytest.raises(ConfigError):
            HealConfig(**bad)


def test_named_recipes_say_where_they_run_and_heal_softly_except_the_full_one():
    from helpers import settings

    rows = settings.heal_recipe_rows()
    assert [r["recipe"] for r in rows] == list(settings.HEAL_RECIPES)
    assert all(r["where"] != "-" and r["steps"] >= 1 for r in rows)
    for name in ("cpu-suite", "tiny", "notebook-real"):  # KL to the target's top-k, next to the cut, warmed up, clipped
        recipe = settings.heal_recipe(name)
        assert recipe.topk and recipe.neighbour_layers and recipe.warmup_steps and recipe.max_grad_norm <= 0.5
    assert settings.HEAL_RECIPES["cpu-suite"].row()["layers trained"] == "2 each side of the cut"
    assert settings.HEAL_RECIPES["full"].row()["loss"] == "cross-entropy on the answers"


def test_a_plan_reads_only_its_own_answers(tiny_models, tmp_path):
    """A run with more prompts leaves more answers in the shared file; a later plan heals and holds out only its own."""
    from helpers.presets import get_preset
    from helpers.pruned_drafts import HealingPlan, answer_counts, answers_path, distillation_data, held_out_share

    preset = get_preset("tiny")
    larger, smaller = (HealingPlan(depths=(1,), prompts=n, max_new_tokens=6, heal=None) for n in (7, 4))
    assert len(read_distillation_data(distillation_data(preset, larger, tiny_models.target, False, tmp_path))) == 7
    path = distillation_data(preset, smaller, tiny_models.target, False, tmp_path)
    shared = read_distillation_data(answers_path(preset, smaller, tmp_path))
    assert len(shared) == 7
    assert read_distillation_data(path) == shared[:4]  # the first prompts, in their order
    held = split_held_out(shared[:4], held_out_share(smaller))[1]
    assert answer_counts(smaller, path) == {"training": 4 - len(held), "held out": len(held)}


def test_a_prompt_past_the_context_stops_distillation_before_any_answer(tiny_models, tmp_path):
    from helpers.errors import ConfigError

    path = tmp_path / "answers.jsonl"
    prompts = [Prompt("short", "code", "Write hello world."), Prompt("huge", "code", "word " * 20000)]
    with pytest.raises(ConfigError, match="Prompt 'huge'.*context"):
        generate_distillation_data(tiny_models.target, prompts, path, max_new_tokens=4, progress=False)
    assert not path.exists() or not path.read_text().strip()
