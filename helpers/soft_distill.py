"""Distillation on the target's own distribution, and a healing schedule that does not spike.

- `record_target_topk` runs the OpenVINO target once over prompt + answer of each distillation record and keeps the
  top-k log-probabilities at every answer position (one JSON line per record id: resumable, torn-tail safe).
- `topk_kl_loss` is KL(target top-k || draft): the target's k probabilities renormalised, against the draft's full
  log-softmax at the same ids (so draft mass outside the top-k is penalised too), optionally mixed with hard-label CE.
- `soft_trainer_class` is the project's distillation Trainer with that loss; `soft_examples`/`soft_collate` feed it.
- `HealSchedule` holds defaults for healing a pruned draft gently (low lr, warm-up, clipping, training only the layers
  next to the cut), with `freeze_except_layers` and `training_arguments` to apply them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .conversion import read_ir
from .errors import ConfigError, ModelFolderError, PromptFileError
from .fsutil import append_jsonl, not_a_readable_file, read_json, read_jsonl, write_json

DEFAULT_TOP_K = 32
LOGPROB_DECIMALS = 5  # JSON size: 5 decimals keep probabilities to ~1e-5 relative, plenty for a training target


def _answer_digest(record: dict[str, Any]) -> str:
    return hashlib.sha256((record["chat_prompt"] + "\0" + record["answer"]).encode()).hexdigest()[:16]


def answer_positions(example: dict[str, list[int]]) -> list[int]:
    """Positions whose next-token logits predict an answer token (the order `answer_logits` uses)."""
    labels = example["labels"]
    return [j for j in range(len(labels) - 1) if labels[j + 1] != -100]


@dataclass
class TopkRecordResult:
    """What one `record_target_topk` call did."""

    path: Path
    total: int  # records in the file now
    recorded: int  # added by this call
    skipped: int  # already there
    positions: int  # answer positions recorded by this call
    reused: int = 0  # copied by this call from another file recorded with the same settings


def _compile_target(target_dir: Path, device: str, properties: dict[str, Any]) -> tuple[Any, list[str]]:
    import openvino as ov

    xml = target_dir / "openvino_model.xml"
    if not xml.is_file():
        raise ModelFolderError(f"{target_dir} has no openvino_model.xml; pass an OpenVINO model folder (as exported "
                               "by prepare_preset or export_model).")
    core = ov.Core()
    model = read_ir(xml, core)
    names = [port.get_any_name() for port in model.inputs]
    if "input_ids" not in names:
        raise ModelFolderError(f"{xml} has no input_ids input; it is not a causal language model export.")
    return core.compile_model(model, device, properties), names


def _every_position_logits(compiled: Any, request: Any, names: list[str], input_ids: Sequence[int], model_dir: Path) -> Any:
    """Logits at every position of one sequence, from a fresh KV cache (one forward pass of a stateful IR)."""
    import numpy as np

    ids = np.array([list(input_ids)], dtype=np.int64)
    length = ids.shape[1]
    feed = {"input_ids": ids}
    if "attention_mask" in names:
        feed["attention_mask"] = np.ones_like(ids)
    if "position_ids" in names:
        feed["position_ids"] = np.arange(length, dtype=np.int64)[None]
    if "beam_idx" in names:
        feed["beam_idx"] = np.zeros(1, dtype=np.int32)
    request.reset_state()  # stateful IR: a fresh KV cache per sequence
    logits = request.infer(feed)[compiled.output(0)]
    if logits.shape[1] != length:
        raise ModelFolderError(f"{model_dir} returns logits for {logits.shape[1]} of {length} positions (its lm_head "
                               "is sliced). Re-export it with export_model, which keeps every position.")
    return logits


def openvino_agreement(model_dir: str | Path, records: Sequence[dict[str, Any]], max_length: int = 512,
                       device: str = "CPU", properties: dict[str, Any] | None = None) -> float:
    """`distill.agreement` for an OpenVINO export: the share of the target's answer tokens that the exported model
    predicts as its top-1 under teacher forcing, one forward pass per record.

    Beside the Hugging Face checkpoint's figure it shows what the export (int4/int8 weights) keeps of a draft's
    agreement, apart from free-running effects that only acceptance sees. A trimmed head's graph returns the last
    position only and is refused."""
    from transformers import AutoTokenizer

    from .distill_training import build_examples

    model_dir = Path(model_dir).expanduser().resolve()
    compiled, names = _compile_target(model_dir, device, properties or {})
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    examples = build_examples(list(records), tokenizer, max_length)
    if not examples:
        raise PromptFileError("No record with a non-empty answer to measure agreement on.")
    request = compiled.create_infer_request()
    hits = total = 0
    for example in examples:
        logits = _every_position_logits(compiled, request, names, example["input_ids"], model_dir)
        positions = answer_positions(example)
        predicted = logits[0, positions].argmax(axis=-1)
        hits += int(sum(int(p) == example["labels"][j + 1] for p, j in zip(predicted, positions, strict=True)))
        total += len(positions)
    return hits / total


def record_target_topk(target_dir: str | Path, records: Sequence[dict[str, Any]], output: str | Path,
                       k: int = DEFAULT_TOP_K, max_length: int = 512, device: str = "CPU",
                       properties: dict[str, Any] | None = None, progress: bool = True,
                       reuse: Sequence[str | Path] = ()) -> TopkRecordResult:
    """Append the OpenVINO target's top-`k` log-probs at every answer position of each record not yet in `output`.

    One forward pass per record over the tokenized prompt + answer (as `distill_training.build_examples` cuts it with
    `max_length`, so positions line up with training). The exported IR returns logits for every position (GenAI only
    slices them at load time); an IR that returns fewer is refused. Lines: ``{"id", "digest", "positions", "ids",
    "logprobs"}``; a sidecar ``<output>.settings.json`` pins target, k and max_length. Files in `reuse` recorded with
    the same settings lend their lines for the same record (same id and text) instead of a new forward pass.
    """
    import numpy as np
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer

    from .distill_training import build_examples

    if not 1 <= k <= 1024:
        raise ConfigError(f"k must be between 1 and 1024, got {k}.")
    target_dir = Path(target_dir).expanduser().resolve()
    output = Path(output).expanduser()
    settings = {"target": str(target_dir), "k": k, "max_length": max_length}
    settings_file = output.with_name(output.name + ".settings.json")
    previous = read_json(settings_file) if settings_file.is_file() else None
    existing = read_jsonl(output) if output.is_file() else []
    if existing and previous and previous != settings:
        raise ConfigError(f"{output} was recorded with {previous}, not {settings}. Write to another file or delete it.")
    write_json(settings_file, settings)
    done = {r["id"] for r in existing}
    borrowed = _recorded_elsewhere([r for r in records if r["id"] not in done], reuse, settings, output)
    if borrowed:
        append_jsonl(output, borrowed)
        done |= {line["id"] for line in borrowed}
    todo = [r for r in records if r["id"] not in done]
    if not todo:
        return TopkRecordResult(path=output, total=len(done), recorded=0, skipped=len(records), positions=0,
                                reused=len(borrowed))
    tokenizer = AutoTokenizer.from_pretrained(str(target_dir))
    compiled, names = _compile_target(target_dir, device, properties or {})
    request = compiled.create_infer_request()
    positions_done = 0
    for record in tqdm(todo, desc="target top-k", disable=not progress):
        examples = build_examples([record], tokenizer, max_length)
        if not examples:
            continue  # an empty answer teaches nothing (build_examples skips it too)
        logits = _every_position_logits(compiled, request, names, examples[0]["input_ids"], target_dir)
        positions = answer_positions(examples[0])
        rows = logits[0, positions].astype(np.float64)
        rows -= rows.max(axis=-1, keepdims=True)
        logprobs = rows - np.log(np.exp(rows).sum(axis=-1, keepdims=True))
        top = np.argpartition(-logprobs, k - 1, axis=-1)[:, :k]
        order = np.take_along_axis(logprobs, top, axis=-1).argsort(axis=-1)[:, ::-1]
        top = np.take_along_axis(top, order, axis=-1)
        append_jsonl(output, [{"id": record["id"], "digest": _answer_digest(record), "positions": len(positions),
                               "ids": top.tolist(),
                               "logprobs": np.round(np.take_along_axis(logprobs, top, axis=-1), LOGPROB_DECIMALS).tolist()}])
        positions_done += len(positions)
    return TopkRecordResult(path=output, total=len(done) + len(todo), recorded=len(todo), skipped=len(done),
                            positions=positions_done, reused=len(borrowed))


def _recorded_elsewhere(records: Sequence[dict[str, Any]], files: Sequence[str | Path], settings: dict[str, Any],
                        output: Path) -> list[dict[str, Any]]:
    """Lines of other top-k files, recorded with `settings`, for `records` whose prompt and answer are unchanged."""
    wanted = {r["id"]: _answer_digest(r) for r in records}
    found: dict[str, dict[str, Any]] = {}
    for other in map(Path, files):
        other = other.expanduser()
        if not wanted or other.resolve() == output.resolve() or not other.is_file():
            continue
        if read_json(other.with_name(other.name + ".settings.json")) != settings:
            continue  # another target, k or max_length: its positions or values differ
        for text in other.read_text(encoding="utf-8", errors="replace").splitlines():
            try:  # the other file is only read: a torn or damaged line there is skipped, never cut off
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict) and wanted.get(line.get("id")) == line.get("digest") and line["id"] not in found:
                found[line["id"]] = line
    return [found[r["id"]] for r in records if r["id"] in found]


def recorded_settings(path: str | Path) -> dict[str, Any]:
    """The target, k and max_length a top-k file was recorded with (its sidecar settings file)."""
    path = Path(path).expanduser()
    settings = read_json(path.with_name(path.name + ".settings.json")) if path.is_file() else None
    if not settings:
        raise PromptFileError(f"{path} is missing or has no settings file beside it. Record it with record_target_topk.")
    if not all(isinstance(settings.get(key), int) and not isinstance(settings.get(key), bool)
               for key in ("k", "max_length")):
        raise PromptFileError(f"{path.name}.settings.json beside {path} names no k and max_length: it is not a top-k "
                              "file written by record_target_topk. Record it again (or pass the right --topk-file).")
    return settings


def read_target_topk(path: str | Path) -> dict[str, dict[str, Any]]:
    """Recorded top-k by record id (a torn last line from an interrupted run is dropped)."""
    path = Path(path).expanduser()
    problem = not_a_readable_file(path)
    if problem:
        raise PromptFileError(f"{path} {problem}. Record it with record_target_topk.")
    return {r["id"]: r for r in read_jsonl(path)}


def soft_examples(records: Sequence[dict[str, Any]], topk: dict[str, dict[str, Any]], tokenizer: Any,
                  max_length: int) -> list[dict[str, Any]]:
    """`distill_training.build_examples` plus each record's top-k ids and log-probs (records without a recording are left out).

    `max_length` must be the one used when recording; a changed record (other prompt or answer) is refused.
    """
    from .distill_training import build_examples

    examples = []
    for record in records:
        recorded = topk.get(record["id"])
        built = build_examples([record], tokenizer, max_length)
        if recorded is None or not built:
            continue
        example = built[0]
        if recorded["digest"] != _answer_digest(record) or recorded["positions"] != len(answer_positions(example)):
            raise ConfigError(f"The top-k recorded for {record['id']!r} does not match this record (changed text or "
                              "max_length); record it again into a new file.")
        examples.append({**example, "topk_ids": recorded["ids"], "topk_logprobs": recorded["logprobs"]})
    return examples


def soft_collate(pad_id: int) -> Any:
    """`distill`'s padding collator plus the top-k of all answer positions, concatenated in row-major order."""
    from .distill_training import collate_examples

    pad = collate_examples(pad_id)

    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        out = pad([{"input_ids": e["input_ids"], "labels": e["labels"]} for e in batch])
        out["topk_ids"] = torch.tensor([row for e in batch for row in e["topk_ids"]], dtype=torch.long)
        out["topk_logprobs"] = torch.tensor([row for e in batch for row in e["topk_logprobs"]], dtype=torch.float32)
        return out

    return collate


def topk_kl_loss(draft_logits: Any, topk_ids: Any, topk_logprobs: Any, labels: Any = None, ce_weight: float = 0.0,
                 temperature: float = 1.0) -> Any:
    """(1 - ce_weight) * KL(p || q) + ce_weight * CE(labels), averaged over positions.

    p: the target's top-k probabilities (at `temperature`) renormalised to sum to 1; q: the draft's full softmax read
    at the same ids, so the loss is 0 only when the draft puts all its mass on the top-k in the target's proportions.
    """
    import torch.nn.functional as F

    if not 0.0 <= ce_weight <= 1.0:
        raise ConfigError(f"ce_weight must be within [0, 1], got {ce_weight}.")
    if ce_weight > 0 and labels is None:
        raise ConfigError("ce_weight > 0 needs the labels (the target's answer tokens).")
    t = temperature
    target = F.log_softmax(topk_logprobs.float() / t, dim=-1)
    draft = F.log_softmax(draft_logits.float() / t, dim=-1).gather(-1, topk_ids)
    kl = (target.exp() * (target - draft)).sum(dim=-1).mean() * t * t
    if ce_weight == 0:
        return kl
    return (1 - ce_weight) * kl + ce_weight * F.cross_entropy(draft_logits.float(), labels)


def soft_trainer_class() -> Any:
    """The project's distillation Trainer with `topk_kl_loss` on answer positions (kwargs: ce_weight, temperature)."""
    from .distill_training import answer_logits, distill_trainer_class

    base = distill_trainer_class()

    class SoftDistillTrainer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, ce_weight: float = 0.0, temperature: float = 1.0, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.ce_weight = ce_weight
            self.soft_temperature = temperature

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            labels = inputs["labels"][:, 1:]
            keep = labels != -100
            logits = answer_logits(model, inputs, keep)
            loss = topk_kl_loss(logits, inputs["topk_ids"].to(logits.device), inputs["topk_logprobs"].to(logits.device),
                                labels[keep], self.ce_weight, self.soft_temperature)
            return (loss, {"logits": logits}) if return_outputs else loss

    return SoftDistillTrainer


# ----------------------------------------------------------------------------------------------------------------------
# Healing schedule


@dataclass(frozen=True)
class HealSchedule:
    """Defaults for healing a pruned draft without the early loss spike seen on the real pair (lr 2e-4, step 4: 7.6).

    Lower peak lr with a real warm-up, tighter clipping, and only the layers on either side of the cut trained (the
    rest of the draft already agrees with the target; the cut is where the representation broke). Soft targets with a
    little hard-label CE.
    """

    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1  # of the total steps, at least `min_warmup_steps`
    min_warmup_steps: int = 5
    max_grad_norm: float = 0.5
    lr_scheduler_type: str = "cosine"
    weight_decay: float = 0.0
    neighbour_layers: int = 1  # kept layers trained on each side of the cut; 0 or less: train every layer
    train_norms: bool = True  # the final norm's scale is cheap to adapt and follows the changed residual stream
    ce_weight: float = 0.1
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.learning_rate < 1 or not 0 <= self.warmup_ratio < 1 or self.max_grad_norm <= 0:
            raise ConfigError("learning_rate must be in (0, 1), warmup_ratio in [0, 1) and max_grad_norm > 0.")

    def warmup_steps(self, steps: int) -> int:
        return min(steps, max(self.min_warmup_steps, round(self.warmup_ratio * steps)))

    def training_arguments(self, steps: int) -> dict[str, Any]:
        """The ``transformers.TrainingArguments`` keywords this schedule sets."""
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps(steps),
                "max_grad_norm": self.max_grad_norm, "lr_scheduler_type": self.lr_scheduler_type,
                "weight_decay": self.weight_decay}

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def layers_next_to_cut(num_layers: int, cut: int, neighbours: int) -> list[int]:
    """Indices (in the pruned model) of the `neighbours` kept layers before and after a cut at new index `cut`.

    `cut` is the removed block's start: layer ``cut - 1`` fed the block, layer ``cut`` received its output.
    """
    if not 0 < cut < num_layers + 1:
        raise ConfigError(f"The cut must lie between layer 1 and {num_layers} of the pruned model, got {cut}.")
    if neighbours <= 0:
        return list(range(num_layers))
    return [i for i in range(cut - neighbours, cut + neighbours) if 0 <= i < num_layers]


def freeze_except_layers(model: Any, layers: Sequence[int], train_norms: bool = True) -> int:
    """Freeze every parameter except those of decoder `layers` (and the final norm); returns the trainable count."""
    from .pruning import decoder_layers

    model.requires_grad_(False)
    blocks = decoder_layers(model)
    for index in layers:
        blocks[index].requires_grad_(True)
    if train_norms and getattr(model.model, "norm", None) is not None:
        model.model.norm.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
