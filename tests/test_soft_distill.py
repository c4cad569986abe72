"""Top-k distillation from the OpenVINO target, its loss, and the gentle healing schedule."""

import copy
import json

import pytest

from helpers import soft_distill
from helpers.distill import agreement
from helpers.errors import ConfigError, ModelFolderError
from helpers.hf import load_causal_lm
from helpers.prompts import load_prompt_source
from helpers.pruning import Block, decoder_layers, remove_block
from helpers.soft_distill import HealSchedule, topk_kl_loss
from helpers.tiny import build_tiny_pair

K = 8


def _topk(logits, k):
    import torch

    logprobs = torch.log_softmax(logits, dim=-1)
    values, ids = logprobs.topk(k, dim=-1)
    return ids, values


def test_loss_is_zero_for_the_renormalised_target_and_positive_otherwise():
    import torch

    torch.manual_seed(0)
    teacher = torch.randn(20, 100) * 3
    ids, logprobs = _topk(teacher, K)
    matching = torch.full((20, 100), -1e9).scatter(-1, ids, logprobs)  # all mass on the top-k, target's proportions
    assert float(topk_kl_loss(matching, ids, logprobs)) == pytest.approx(0.0, abs=1e-5)
    # The target's own full distribution only loses the mass outside its top-k: -log(top-k mass).
    outside = float(-torch.logsumexp(logprobs, dim=-1).mean())
    assert float(topk_kl_loss(teacher, ids, logprobs)) == pytest.approx(outside, rel=1e-4)
    other = torch.randn(20, 100) * 3
    assert float(topk_kl_loss(other, ids, logprobs)) > float(topk_kl_loss(teacher, ids, logprobs)) > 0
    labels = ids[:, 0]
    mixed = topk_kl_loss(other.requires_grad_(), ids, logprobs, labels, ce_weight=0.5)
    mixed.backward()
    assert other.grad.abs().sum() > 0
    with pytest.raises(ConfigError):
        topk_kl_loss(teacher, ids, logprobs, ce_weight=0.5)
    with pytest.raises(ConfigError):
        topk_kl_loss(teacher, ids, logprobs, labels, ce_weight=2.0)


def test_schedule_freezes_all_but_the_layers_next_to_the_cut():
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM, TrainingArguments

    assert soft_distill.layers_next_to_cut(4, 2, 1) == [1, 2]
    assert soft_distill.layers_next_to_cut(4, 4, 1) == [3]  # cut after the last kept layer
    assert soft_distill.layers_next_to_cut(4, 2, 0) == [0, 1, 2, 3]
    with pytest.raises(ConfigError):
        soft_distill.layers_next_to_cut(4, 0, 1)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(vocab_size=50, hidden_size=16, intermediate_size=24, num_hidden_layers=4,
                                         num_attention_heads=2, num_key_value_heads=1, head_dim=8))
    trainable = soft_distill.freeze_except_layers(model, [1, 2])
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(n.startswith(("model.layers.1.", "model.layers.2.", "model.norm.")) for n in names)
    assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    schedule = HealSchedule()
    kwargs = schedule.training_arguments(40)
    assert kwargs["warmup_steps"] == 5 and kwargs["max_grad_norm"] == 0.5
    TrainingArguments(output_dir="unused", report_to="none", **kwargs)  # every key is a real argument
    with pytest.raises(ConfigError):
        HealSchedule(learning_rate=0)


EXACT = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0}


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_models):
    """The tiny OpenVINO target's greedy answers (f32, no dynamic quantization) and its recorded top-k (same settings)."""
    import numpy as np
    import openvino as ov
    from transformers import AutoTokenizer

    from helpers.generation import chat_prompt, generation_config, load_pipeline

    folder = tmp_path_factory.mktemp("soft")
    pipe = load_pipeline(tiny_models.target, **EXACT)
    hf_tokenizer = AutoTokenizer.from_pretrained(str(tiny_models.target))
    records = []
    for prompt in load_prompt_source("builtin", limit=24):
        chat = chat_prompt(pipe, prompt.text)
        ids = hf_tokenizer(chat, add_special_tokens=False, return_tensors="np")["input_ids"].astype(np.int64)
        generated = [int(t) for t in pipe.generate(ov.Tensor(ids), generation_config(32)).tokens[0]]
        records.append({"id": prompt.id, "chat_prompt": chat, "answer": pipe.get_tokenizer().decode(generated),
                        "finished": len(generated) < 32, "generated": generated})
    del pipe
    topk_path = folder / "topk.jsonl"
    result = soft_distill.record_target_topk(tiny_models.target, records, topk_path, k=K, max_length=256,
                                             properties=EXACT, progress=False)
    return records, topk_path, result


def test_recorded_topk_is_the_targets_greedy_choice_and_resumes(data, tiny_models):
    from transformers import AutoTokenizer

    from helpers.distill_training import build_examples

    records, topk_path, result = data
    assert result.recorded == len(records) and result.positions > 0
    topk = soft_distill.read_target_topk(topk_path)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_models.target))
    exact = 0
    for record in records:
        example = build_examples([record], tokenizer, 256)[0]
        answer = [t for t in example["labels"] if t != -100]
        rows = topk[record["id"]]
        assert len(rows["ids"]) == len(answer) and all(len(r) == K for r in rows["ids"])
        assert all(r == sorted(r, reverse=True) for r in rows["logprobs"])  # best first
        # Where the answer text re-tokenizes into the very tokens the target generated (it usually does), the recorded
        # top-1 is the target's greedy token at every position.
        if answer == record["generated"]:
            assert [r[0] for r in rows["ids"]] == answer
            exact += 1
    print(f"{exact}/{len(records)} answers re-tokenize to the generated tokens; top-1 equals them at every position")
    assert exact >= len(records) // 2

    again = soft_distill.record_target_topk(tiny_models.target, records, topk_path, k=K, max_length=256, properties=EXACT,
                                            progress=False)
    assert again.recorded == 0 and again.skipped == len(records)
    with topk_path.open("a") as handle:  # an interrupted append: a torn last line
        handle.write('{"id": "torn", "ids": [[1, 2')
    assert set(soft_distill.read_target_topk(topk_path)) == {r["id"] for r in records}
    with pytest.raises(ConfigError, match="recorded with"):
        soft_distill.record_target_topk(tiny_models.target, records, topk_path, k=K + 1, max_length=256, progress=False)


def test_recorded_topk_is_borrowed_from_a_file_with_the_same_settings(data, tiny_models, tmp_path):
    """A larger plan copies the lines another plan recorded for the same answers (no forward pass), records only the
    rest, and ignores lines whose answer changed and files recorded with other settings."""
    import shutil

    records, topk_path, _ = data
    original = soft_distill.read_target_topk(topk_path)
    borrowed_file = tmp_path / "smaller-plan.jsonl"
    shutil.copy(topk_path, borrowed_file)
    shutil.copy(topk_path.with_name(topk_path.name + ".settings.json"),
                borrowed_file.with_name(borrowed_file.name + ".settings.json"))
    with borrowed_file.open("a") as handle:  # a torn tail in the other file: skipped, and left as it is
        handle.write('{"id": "torn", "ids": [[1, 2')
    torn_size = borrowed_file.stat().st_size
    other_settings = tmp_path / "other-k.jsonl"
    shutil.copy(topk_path, other_settings)
    (tmp_path / "other-k.jsonl.settings.json").write_text('{"target": "elsewhere", "k": 8, "max_length": 256}')
    changed = {**records[0], "answer": records[0]["answer"] + " and more"}
    plan = [changed, *records[1:]]
    output = tmp_path / "larger-plan.jsonl"
    result = soft_distill.record_target_topk(tiny_models.target, plan, output, k=K, max_length=256, properties=EXACT,
                                             progress=False, reuse=[other_settings, borrowed_file, output])
    assert result.reused == len(records) - 1 and result.recorded == 1 and result.total == len(records)
    recorded = soft_distill.read_target_topk(output)
    assert all(recorded[r["id"]] == original[r["id"]] for r in records[1:])
    assert recorded[changed["id"]]["digest"] != original[changed["id"]]["digest"]
    assert borrowed_file.stat().st_size == torn_size


def _train(model, tokenizer, examples, schedule, steps, output_dir):
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(output_dir), max_steps=steps, per_device_train_batch_size=4,
                             report_to="none", save_strategy="no", remove_unused_columns=False, use_cpu=True,
                             disable_tqdm=True, logging_steps=1, seed=0, data_seed=0, dataloader_num_workers=0,
                             **schedule.training_arguments(steps))
    trainer = soft_distill.soft_trainer_class()(model=model, args=args, train_dataset=examples,
                                                data_collator=soft_distill.soft_collate(tokenizer.pad_token_id or 0),
                                                ce_weight=schedule.ce_weight, temperature=schedule.temperature)
    trainer.train()
    model.eval()
    return [e["loss"] for e in trainer.state.log_history if "loss" in e]


def test_agreement_of_an_openvino_export_matches_its_recorded_top1(data, tiny_models, tmp_path):
    """The export's teacher-forced agreement counts the positions where its top-1 is the answer token: for the target,
    exactly what its recorded top-k says; the draft agrees less with the target's answers than the target itself."""
    from transformers import AutoTokenizer

    from helpers.distill_training import build_examples

    records, topk_path, _ = data
    topk = soft_distill.read_target_topk(topk_path)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_models.target))
    hits = total = 0
    for record in records:
        answer = [t for t in build_examples([record], tokenizer, 256)[0]["labels"] if t != -100]
        hits += sum(row[0] == token for row, token in zip(topk[record["id"]]["ids"], answer, strict=True))
        total += len(answer)
    target = soft_distill.openvino_agreement(tiny_models.target, records, max_length=256, properties=EXACT)
    assert target == pytest.approx(hits / total) and target > 0.9
    draft = soft_distill.openvino_agreement(tiny_models.draft, records, max_length=256, properties=EXACT)
    print(f"agreement with the target's answers: target {target:.3f}, int8 draft {draft:.3f}")
    assert 0 <= draft < target
    with pytest.raises(ModelFolderError, match="openvino_model.xml"):
        soft_distill.openvino_agreement(tmp_path, records)


def _agreement_of(model, tokenizer, records, folder):
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return agreement(folder, records, max_length=256)


def test_soft_distillation_raises_agreement_of_the_draft(tmp_path, data):
    records, topk_path, _ = data
    draft, tokenizer = load_causal_lm(build_tiny_pair().draft)
    examples = soft_distill.soft_examples(records, soft_distill.read_target_topk(topk_path), tokenizer, 256)
    assert len(examples) == len(records)
    before = _agreement_of(draft, tokenizer, records, tmp_path / "before")
    schedule = HealSchedule(learning_rate=2e-3, neighbour_layers=0, ce_weight=0.0)  # tiny models take a larger lr
    losses = _train(draft, tokenizer, examples, schedule, 24, tmp_path / "run")
    after = _agreement_of(draft, tokenizer, records, tmp_path / "after")
    print(f"draft top-1 agreement with the target on its answers: {before:.3f} -> {after:.3f}; "
          f"soft loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    assert after >= before and losses[-1] < losses[0]
    with pytest.raises(ConfigError, match="does not match"):
        soft_distill.soft_examples(records[:1], soft_distill.read_target_topk(topk_path), tokenizer, 16)


def test_training_only_the_layers_next_to_the_cut(tmp_path, data):
    """Pruned tiny target (layers 2-3 removed), healed towards the OpenVINO target: neighbours of the cut vs all."""
    import torch

    records, topk_path, _ = data
    full, tokenizer = load_causal_lm(build_tiny_pair().target)
    pruned = remove_block(copy.deepcopy(full), Block(2, 2))
    examples = soft_distill.soft_examples(records, soft_distill.read_target_topk(topk_path), tokenizer, 256)
    results = {"pruned": _agreement_of(pruned, tokenizer, records, tmp_path / "pruned")}
    for label, neighbours in (("cut neighbours", 1), ("all layers", 0)):
        model = copy.deepcopy(pruned)
        schedule = HealSchedule(learning_rate=2e-3, neighbour_layers=neighbours)
        layers = soft_distill.layers_next_to_cut(len(decoder_layers(model)), 2, neighbours)
        soft_distill.freeze_except_layers(model, layers, schedule.train_norms)
        losses = _train(model, tokenizer, examples, schedule, 16, tmp_path / label.replace(" ", "-"))
        results[label] = _agreement_of(model, tokenizer, records, tmp_path / f"{label.replace(' ', '-')}-model")
        results[f"{label} max loss"] = max(losses)
        if neighbours:
            untouched = decoder_layers(model)[0].mlp.down_proj.weight
            assert torch.equal(untouched, decoder_layers(pruned)[0].mlp.down_proj.weight)
            assert not torch.equal(decoder_layers(model)[1].mlp.down_proj.weight,
                                   decoder_layers(pruned)[1].mlp.down_proj.weight)
    print(json.dumps(results))
    assert all(0.0 <= results[k] <= 1.0 for k in ("pruned", "cut neighbours", "all layers"))
