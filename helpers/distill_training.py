"""What healing trains on and with: training examples from the target's answers, their batches, the logits at the
answer positions only, the distillation `Trainer`, and top-1 agreement of an in-memory model. `distill` (hard labels,
the healing run) and `soft_distill` (the target's top-k) both build on it."""
from __future__ import annotations

from typing import Any


def build_examples(records: list[dict[str, Any]], tokenizer: Any, max_length: int) -> list[dict[str, list[int]]]:
    """Token ids and labels per record: the chat prompt is context (label -100), the target's answer is learned.

    Answers the target finished get the end-of-turn token appended, so the draft also learns where answers stop.
    Over-long examples keep at most half of `max_length` of prompt (its end) and cut the answer.
    """
    examples = []
    for record in records:
        prompt_ids = tokenizer(record["chat_prompt"], add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(record["answer"], add_special_tokens=False)["input_ids"]
        if record.get("finished") and tokenizer.eos_token_id is not None:
            answer_ids = [*answer_ids, tokenizer.eos_token_id]
        if not answer_ids:
            continue
        prompt_ids = prompt_ids[-(max_length // 2):]
        input_ids = (prompt_ids + answer_ids)[:max_length]
        labels = ([-100] * len(prompt_ids) + answer_ids)[:max_length]
        examples.append({"input_ids": input_ids, "labels": labels})
    return examples


def collate_examples(pad_id: int) -> Any:
    """A data collator for `build_examples` output: right-padded ids, labels (-100 on padding) and the attention mask."""

    def collate(batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(e["input_ids"]) for e in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, example in enumerate(batch):
            n = len(example["input_ids"])
            ids[row, :n] = torch.tensor(example["input_ids"])
            labels[row, :n] = torch.tensor(example["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
    return collate


def answer_logits(model: Any, inputs: dict[str, Any], keep: Any) -> Any:
    """Next-token logits at the positions selected by `keep` (answer tokens) only.

    The vocabulary projection is the costliest layer of a small draft (151,936 x 896 for Qwen2.5-0.5B) and the prompt
    is often longer than the answer: projecting only the positions that carry a label saves time and the memory of a
    (batch x length x vocabulary) logits tensor.
    """
    core = getattr(model, "module", model)  # accelerate/DDP wrap the model
    hidden = core.base_model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
    return core.get_output_embeddings()(hidden[:, :-1][keep])


def distill_trainer_class() -> Any:
    """A Trainer whose loss is cross-entropy on answer tokens, optionally mixed with KL to a teacher's distribution."""
    import torch
    import torch.nn.functional as F
    from transformers import Trainer

    class DistillTrainer(Trainer):
        def __init__(self, *args: Any, teacher: Any = None, kl_weight: float = 0.0, temperature: float = 1.0,
                     **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.teacher = teacher
            self.kl_weight = kl_weight
            self.temperature = temperature
            self.model_accepts_loss_kwargs = False  # our loss is a per-batch mean: let Trainer scale it for accumulation

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            labels = inputs["labels"][:, 1:]
            keep = labels != -100
            logits = answer_logits(model, inputs, keep)
            loss = F.cross_entropy(logits.float(), labels[keep])
            if self.teacher is not None and self.kl_weight > 0:
                if next(self.teacher.parameters()).device != logits.device:
                    self.teacher.to(logits.device)
                with torch.no_grad():
                    teacher_logits = answer_logits(self.teacher, inputs, keep)
                t = self.temperature
                kl = F.kl_div(F.log_softmax(logits.float() / t, dim=-1), F.log_softmax(teacher_logits.float() / t, dim=-1),
                              log_target=True, reduction="batchmean") * t * t
                loss = (1 - self.kl_weight) * loss + self.kl_weight * kl
            return (loss, {"logits": logits}) if return_outputs else loss

        def _issue_warnings_after_load(self, load_result: Any) -> None:
            # A tied lm_head is saved once, as the embeddings: its absence from a checkpoint is expected, not a problem.
            tied = ({name for name, _ in self.model.named_parameters(remove_duplicate=False)}
                    - {name for name, _ in self.model.named_parameters()})
            if load_result.missing_keys and set(load_result.missing_keys) <= tied and not load_result.unexpected_keys:
                self.model.tie_weights()
                return
            super()._issue_warnings_after_load(load_result)

    return DistillTrainer


def model_agreement(model: Any, examples: list[dict[str, list[int]]], pad_id: int, batch_size: int = 8) -> float:
    """`agreement` of an in-memory model on examples of `build_examples`; the model is left in the mode it was in."""
    import torch

    collate = collate_examples(pad_id)
    device = next(model.parameters()).device  # during training on a GPU the model is there, the batches are not
    was_training = model.training
    model.eval()
    hits = total = 0
    try:
        with torch.no_grad():
            for begin in range(0, len(examples), batch_size):
                batch = {name: tensor.to(device) for name, tensor in collate(examples[begin:begin + batch_size]).items()}
                labels = batch["labels"][:, 1:]
                keep = labels != -100
                hits += int((answer_logits(model, batch, keep).argmax(dim=-1) == labels[keep]).sum())
                total += int(keep.sum())
    finally:
        model.train(was_training)
    return hits / total if total else 0.0
