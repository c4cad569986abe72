"""Healing a pruned draft: distillation data from the target, then fine-tuning the draft on it.

- prompts come from `prompts.load_prompt_source` (built-in set, standard library, JSONL file or Hugging Face dataset).
- `generate_distillation_data` has the *target* answer them through OpenVINO GenAI, in batches, appending to a JSONL
  file keyed by prompt id: an interrupted run resumes where it stopped, without duplicates or torn lines.
- `heal` fine-tunes the pruned draft on those answers with ``transformers.Trainer`` (loss on answer tokens only,
  checkpoints, resume; optionally a KL term to the target's own distribution). The same code runs on one CPU, one GPU
  or many GPUs through ``accelerate launch -m helpers heal ...``. Its examples, batches and Trainer class come from
  `distill_training`; `heal_selection` keeps the checkpoint that agrees best with the target on held-out answers.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .devices import PeakMemory
from .distill_training import build_examples, collate_examples, distill_trainer_class, model_agreement
from .errors import (
    ConfigError,
    ModelFolderError,
    PromptFileError,
    TokenizerMismatchError,
)
from .fsutil import (
    append_jsonl,
    atomic_directory,
    file_digest,
    not_a_readable_file,
    read_json,
    read_jsonl,
    remove_stale_partials,
    write_json,
)
from .heal_selection import agreement_callback, agreements_logged, restore_selected, select_step
from .hf import check_hf_model_dir, check_hf_tokenizer_dir, threads_for, weight_file_problem
from .prompts import Prompt
from .settings import HealConfig

HEALED_MANIFEST = "healing.json"


# ----------------------------------------------------------------------------------------------------------------------
# Distillation data


@dataclass
class DistillDataResult:
    """What one `generate_distillation_data` call did (throughput is OpenVINO GenAI's own measurement)."""

    path: Path
    total: int  # records in the file now
    generated: int  # records added by this call
    skipped: int  # prompts already answered in the file
    generated_tokens: int
    generate_seconds: float
    earlier_tokens_per_second: float | None = None  # recorded by the calls that wrote the file before

    @property
    def tokens_per_second(self) -> float:
        """This call's generation rate; the recorded earlier rate if this call had nothing left to generate."""
        if self.generate_seconds:
            return self.generated_tokens / self.generate_seconds
        return self.earlier_tokens_per_second or float("nan")

    def row(self) -> dict[str, Any]:
        return {"file": self.path.name, "records": self.total, "added now": self.generated, "already there": self.skipped,
                "tokens generated": self.generated_tokens,
                "tokens/s": round(self.tokens_per_second) if self.generated_tokens else None}


def _target_identity(target_dir: Path) -> str:
    """What made an OpenVINO model, stable when the work folder moves: its conversion source and weights."""
    from .conversion import read_manifest

    manifest = read_manifest(target_dir) or {}
    if manifest.get("source"):
        return f"{manifest['source']} ({manifest.get('weights', '?')})"
    return target_dir.name


def data_settings_path(data_path: str | Path) -> Path:
    """The sidecar file that records how a distillation data file was made."""
    data_path = Path(data_path)
    return data_path.with_name(data_path.name + ".settings.json")


def read_distillation_data(path: str | Path, repair_torn_tail: bool = False) -> list[dict[str, Any]]:
    """Records of a distillation file, validated.

    Only the generator that appends to the file passes ``repair_torn_tail``: it cuts a torn last line left by an
    interrupted run. Readers never change the file, which may be the user's own.
    """
    path = Path(path).expanduser()
    problem = not_a_readable_file(path)
    if problem:
        raise PromptFileError(f"Distillation data {path} {problem}. Make it with generate_distillation_data "
                              "(`python -m helpers distill-data`).")
    try:
        records = read_jsonl(path, drop_torn_tail=repair_torn_tail)
    except ValueError as exc:
        raise PromptFileError(f"{exc} If an interrupted `python -m helpers distill-data` wrote it, run that again with "
                              "the same --output to repair and finish it; otherwise delete the broken line.") from exc
    if not records:
        raise PromptFileError(f"{path} holds no records. Generate data first (`python -m helpers distill-data`).")
    for number, record in enumerate(records, start=1):
        missing = [k for k in ("id", "chat_prompt", "answer") if not isinstance(record.get(k), str)]
        if missing:
            raise PromptFileError(f"{path}, record {number}: missing {', '.join(missing)}. Each line needs \"id\", "
                                  "\"chat_prompt\" and \"answer\" strings, as written by generate_distillation_data.")
    return records


def generate_distillation_data(
    target_dir: str | Path,
    prompts: list[Prompt],
    output: str | Path,
    device: str = "CPU",
    max_new_tokens: int = 256,
    enable_thinking: bool = False,
    batch_size: int = 16,
    progress: bool = True,
) -> DistillDataResult:
    """Have the OpenVINO target answer every prompt not yet in `output`, appending one JSON line per answer.

    Batches of prompts go through one ``generate()`` call (continuous batching). Records are keyed by prompt id, so
    re-running with more prompts only answers the new ones; the settings are recorded next to the file and a resume
    with different settings (another target, thinking mode or length) is refused rather than mixed in.
    """
    from tqdm.auto import tqdm

    from .generation import chat_prompt, check_prompt_fits, context_length, generation_config, load_pipeline

    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
    if not prompts:
        raise PromptFileError("No prompts to answer: pass load_prompt_source('builtin') or a prompts file.")
    if len({p.id for p in prompts}) != len(prompts):
        raise PromptFileError("Prompt ids must be unique: records are keyed by id so that a resumed run adds no duplicates.")
    output = Path(output).expanduser()
    target_dir = Path(target_dir).expanduser().resolve()
    settings = {"target": _target_identity(target_dir), "max_new_tokens": max_new_tokens, "enable_thinking": enable_thinking}
    settings_file = data_settings_path(output)
    previous = read_json(settings_file) if settings_file.is_file() else {}
    done: set[str] = set()
    if output.is_file() and output.stat().st_size:
        if previous is None:  # torn or edited: the answers cannot be matched to their settings
            raise PromptFileError(f"{settings_file} is unreadable, so it is unknown how {output} was made. Delete "
                                  "both files to start over, or write to another --output.")
        differing = {k: (previous.get(k), v) for k, v in settings.items() if previous.get(k) != v}
        if differing:
            raise ConfigError(f"{output} was made with other settings ({differing}: was, now). Write to another file, "
                              "or delete it to start over.")
        done = {r["id"] for r in read_distillation_data(output, repair_torn_tail=True)}
    measured = previous.get("measured", {"tokens": 0, "seconds": 0.0}) if done else {"tokens": 0, "seconds": 0.0}
    earlier_rate = measured["tokens"] / measured["seconds"] if measured["seconds"] else None
    write_json(settings_file, {**settings, "target_dir": str(target_dir), "measured": measured})
    todo = [p for p in prompts if p.id not in done]
    tokens, milliseconds = 0, 0.0
    if not todo:  # nothing left: do not spend a model load on it
        return DistillDataResult(path=output, total=len(done), generated=0, skipped=len(prompts), generated_tokens=0,
                                 generate_seconds=0.0, earlier_tokens_per_second=earlier_rate)
    pipe = load_pipeline(target_dir, device)
    tokenizer = pipe.get_tokenizer()
    config = generation_config(max_new_tokens)
    limit = context_length(target_dir)
    chat_prompts = {p.id: chat_prompt(pipe, p.text, enable_thinking) for p in todo}
    for prompt in todo:  # every prompt before the first answer: a long one would otherwise stop the job hours in
        check_prompt_fits(pipe, chat_prompts[prompt.id], max_new_tokens, limit, f"Prompt {prompt.id!r}",
                          "Shorten or drop that prompt, or lower --max-new-tokens.")
    with tqdm(total=len(prompts), initial=len(prompts) - len(todo), desc="target answers", disable=not progress) as bar:
        for begin in range(0, len(todo), batch_size):
            batch = todo[begin:begin + batch_size]
            rendered = [chat_prompts[p.id] for p in batch]
            result = pipe.generate(rendered, config)
            batch_tokens = int(result.perf_metrics.get_num_generated_tokens())
            batch_ms = result.perf_metrics.get_generate_duration().mean
            tokens += batch_tokens
            milliseconds += batch_ms
            records = []
            for prompt, chat, answer in zip(batch, rendered, result.texts, strict=True):
                answer_tokens = int(tokenizer.encode(answer, add_special_tokens=False).input_ids.get_shape()[1])
                records.append({"id": prompt.id, "category": prompt.category, "prompt": prompt.text, "chat_prompt": chat,
                                "answer": answer, "answer_tokens": answer_tokens,
                                "finished": answer_tokens < max_new_tokens, "enable_thinking": enable_thinking})
            append_jsonl(output, records)
            measured = {"tokens": measured["tokens"] + batch_tokens, "seconds": measured["seconds"] + batch_ms / 1000}
            write_json(settings_file, {**settings, "target_dir": str(target_dir), "measured": measured})
            bar.update(len(batch))
    return DistillDataResult(path=output, total=len(done) + len(todo), generated=len(todo), skipped=len(prompts) - len(todo),
                             generated_tokens=tokens, generate_seconds=milliseconds / 1000,
                             earlier_tokens_per_second=earlier_rate)


# ----------------------------------------------------------------------------------------------------------------------
# Healing


@dataclass
class HealResult:
    """What `heal` did. `action`: ``trained``, ``resumed`` (continued from a checkpoint), ``stopped`` (hit
    `stop_after_steps`; run again to continue) or ``reused`` (a finished model with the same settings existed)."""

    path: Path
    action: str
    steps_done: int
    total_steps: int
    resumed_from_step: int
    examples: int
    answer_tokens: int
    input_tokens: int  # prompt + answer tokens of all examples
    losses: list[tuple[int, float]] = field(default_factory=list)
    train_seconds: float = 0.0  # Trainer's own measurement for this call
    steps_per_second: float = 0.0
    tokens_per_second: float = 0.0
    checkpoints: Path | None = None
    resumed_from: Path | None = None  # the newest complete checkpoint this call continued from
    peak_rss_mb: float = 0.0  # peak resident memory of the process while training (the run that finished the model)
    agreement_by_step: list[tuple[int, float]] = field(default_factory=list)  # held-out agreement; step 0: the start

    @property
    def kept_step(self) -> int | None:
        """The step whose weights were saved: the best held-out agreement (None when none was measured)."""
        selection = select_step(self.agreement_by_step)
        return selection.kept_step if selection else None

    def describe_resume(self) -> str:
        """One sentence saying where training started: which checkpoint, or from scratch."""
        if self.resumed_from is None:
            return "started from scratch (no complete checkpoint)" if self.action != "reused" else "reused"
        return f"resumed from {self.resumed_from} (step {self.resumed_from_step}, the newest complete checkpoint)"

    def describe_selection(self) -> str:
        """Which step's weights were saved, by held-out agreement (empty when nothing was held out, or for a model
        healed before healing measured it)."""
        selection = select_step(self.agreement_by_step)
        return selection.describe() if selection else ""

    def row(self) -> dict[str, Any]:
        first = self.losses[0][1] if self.losses else None
        last = self.losses[-1][1] if self.losses else None
        return {"action": self.action, "steps": f"{self.steps_done}/{self.total_steps}",
                "resumed from step": self.resumed_from_step or "-", "examples": self.examples,
                "answer tokens": self.answer_tokens, "first loss": first, "last loss": last,
                "steps/s": round(self.steps_per_second, 1) if self.steps_per_second else None,
                "tokens/s": round(self.tokens_per_second) if self.tokens_per_second else None,
                "step kept (best held-out agreement)": self.kept_step if self.kept_step is not None else "-"}


def check_same_hf_tokenizer(draft_dir: str | Path, target_dir: str | Path) -> None:
    """Raise `TokenizerMismatchError` unless the draft's tokenizer splits text exactly like the target's."""
    from transformers import AutoTokenizer

    from .generation import TOKENIZER_PROBE

    draft = AutoTokenizer.from_pretrained(str(draft_dir))
    target = AutoTokenizer.from_pretrained(str(target_dir))
    problems = []
    def ids(tokenizer: Any) -> list[int]:
        return tokenizer(TOKENIZER_PROBE, add_special_tokens=False)["input_ids"]

    if ids(draft) != ids(target):
        problems.append("they split the same text into different token ids")
    if draft.eos_token_id != target.eos_token_id:
        problems.append(f"end-of-sequence ids differ ({draft.eos_token_id} vs {target.eos_token_id})")
    if problems:
        raise TokenizerMismatchError(
            f"The draft {draft_dir} does not share the target's tokenizer ({target_dir}): {'; '.join(problems)}. "
            "Distillation data and speculative decoding need a draft of the same family (e.g. Qwen3-0.6B for Qwen3-8B)."
        )


def split_held_out(records: list[dict[str, Any]], share: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training, held-out) records: the `share` of records whose id hashes lowest is held out (at least one when
    `share` > 0 and there are two records or more). Stable: the same ids are held out whatever the file's order."""
    import hashlib

    if share <= 0 or len(records) < 2:
        return list(records), []
    count = max(1, round(share * len(records)))
    ranked = sorted(records, key=lambda r: hashlib.sha256(str(r["id"]).encode()).hexdigest())
    held_ids = {r["id"] for r in ranked[:count]}
    return [r for r in records if r["id"] not in held_ids], [r for r in records if r["id"] in held_ids]


def is_main_process() -> bool:
    """True except in the non-zero ranks of a distributed launch (accelerate launch, torchrun): one writer per file."""
    return int(os.environ.get("RANK", "0")) == 0


def _stop_callback(stop_after_steps: int) -> Any:
    from transformers import TrainerCallback

    class StopAfter(TrainerCallback):
        """Stop (saving a checkpoint) after a number of steps: a budgeted session, or a rehearsal of an interruption."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if state.global_step >= stop_after_steps:
                control.should_save = True
                control.should_training_stop = True
            return control

    return StopAfter()


def _progress_callback() -> Any:
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class LossBar(TrainerCallback):
        """One progress bar with the latest loss (Trainer's own callbacks print every log as a dict)."""

        def __init__(self) -> None:
            self.bar: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="healing", leave=False)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if self.bar is not None and logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close()

    return LossBar()


def heal(
    draft_dir: str | Path,
    data_path: str | Path,
    dest: str | Path,
    config: HealConfig | None = None,
    teacher_dir: str | Path | None = None,
    target_dir: str | Path | None = None,
    stop_after_steps: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    callbacks: list[Any] | None = None,
    topk_path: str | Path | None = None,
    cut: int | None = None,
) -> HealResult:
    """Fine-tune the (pruned) draft at `draft_dir` on distillation data; save the healed model to `dest` atomically.

    Checkpoints go to ``<dest>-checkpoints``; a later call with the same settings resumes from the newest complete one
    (after a crash, a kill during a checkpoint save, or `stop_after_steps`). `teacher_dir` (a Hugging Face target
    checkpoint) is needed for ``kl_weight > 0``; `topk_path` (the target's top-k, `soft_distill.record_target_topk`)
    for ``topk > 0``; `cut` (index in the pruned draft of the first layer after the removed block) for
    ``neighbour_layers > 0``. `target_dir` (any folder with the target's tokenizer; default: the one the data
    records) is used to refuse a draft whose tokenizer differs. ``config.held_out`` of the records never trains.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = config or HealConfig()
    draft_dir = Path(draft_dir).expanduser().resolve()
    dest = Path(dest).expanduser().resolve()
    data_path = Path(data_path).expanduser().resolve()
    checkpoints = dest.with_name(dest.name + "-checkpoints")
    check_hf_model_dir(draft_dir)
    if teacher_dir is not None:  # checked here: transformers takes a missing folder for a hub id
        check_hf_model_dir(teacher_dir)
    if target_dir is not None:
        check_hf_tokenizer_dir(target_dir)
    if config.kl_weight > 0 and teacher_dir is None:
        raise ConfigError("kl_weight > 0 (--kl-weight) needs the teacher's Hugging Face checkpoint: pass teacher_dir "
                          "(--teacher).")
    if config.topk and topk_path is None:
        raise ConfigError("topk > 0 needs the target's recorded top-k: record it with "
                          "soft_distill.record_target_topk and pass topk_path (--topk-file).")
    if config.neighbour_layers and cut is None:
        raise ConfigError("neighbour_layers > 0 (--neighbour-layers) needs the cut: pass the index of the first layer "
                          "after the removed block (--cut), or set neighbour_layers to 0 to train every layer.")
    records, held = split_held_out(read_distillation_data(data_path), config.held_out)
    _check_tokenizers(draft_dir, data_path, target_dir, teacher_dir)
    key = {"draft": str(draft_dir), "data": file_digest(data_path), "teacher": str(teacher_dir) if teacher_dir else None,
           **{k: v for k, v in asdict(config).items() if k not in ("steps", "save_steps")}}
    if config.topk:
        key["topk_file"] = file_digest(Path(topk_path).expanduser())
    if config.neighbour_layers:
        key["cut"] = cut
    reused = _finished_heal(dest, key, config, checkpoints, overwrite)
    if reused is not None:
        return reused
    _prepare_checkpoints(checkpoints, key, overwrite)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tokenizer = AutoTokenizer.from_pretrained(draft_dir)
    examples = _training_examples(records, tokenizer, config, topk_path)
    if not examples:
        raise PromptFileError(f"{data_path} has no record with a non-empty answer to learn from.")
    model = AutoModelForCausalLM.from_pretrained(draft_dir, dtype=torch.float32)
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
        model.get_output_embeddings().weight.requires_grad_(False)
    if config.neighbour_layers:
        from .pruning import decoder_layers
        from .soft_distill import freeze_except_layers, layers_next_to_cut

        layers = layers_next_to_cut(len(decoder_layers(model)), cut, config.neighbour_layers)
        freeze_except_layers(model, layers)
    teacher = _load_teacher(teacher_dir, config, model) if teacher_dir is not None and config.kl_weight > 0 else None
    # healing must never lower agreement: measure it on the held-out records at the start and at every checkpoint,
    # and keep the best weights (heal_selection)
    held_examples = build_examples(held, tokenizer, config.max_length)
    pad_id = tokenizer.pad_token_id or 0
    guard = ([agreement_callback(lambda m: model_agreement(m, held_examples, pad_id), checkpoints)]
             if held_examples else [])
    trainer = _make_trainer(model, teacher, examples, tokenizer, config, checkpoints, progress,
                            [*guard, *(callbacks or []), *([_stop_callback(stop_after_steps)] if stop_after_steps else [])])
    trainer.accelerator.wait_for_everyone()  # under accelerate/torchrun: rank 0 has prepared the checkpoint folder
    last = newest_complete_checkpoint(checkpoints)
    resumed_from, tokens_before = _checkpoint_progress(last)
    with threads_for(model), PeakMemory() as memory:
        output = trainer.train(resume_from_checkpoint=str(last) if last else None)
    steps_done = trainer.state.global_step
    runtime = float(output.metrics.get("train_runtime", 0.0))
    ran_steps = steps_done - resumed_from
    answer_tokens = sum(sum(1 for x in e["labels"] if x != -100) for e in examples)
    result = HealResult(
        path=dest, action="resumed" if last else "trained", steps_done=steps_done, total_steps=config.steps,
        resumed_from_step=resumed_from, examples=len(examples), answer_tokens=answer_tokens,
        input_tokens=sum(len(e["input_ids"]) for e in examples),
        losses=[(int(e["step"]), float(e["loss"])) for e in trainer.state.log_history if "loss" in e],
        train_seconds=runtime, steps_per_second=ran_steps / runtime if runtime else 0.0,
        tokens_per_second=(trainer.state.num_input_tokens_seen - tokens_before) / runtime if runtime else 0.0,
        checkpoints=checkpoints, resumed_from=last, peak_rss_mb=memory.peak_mb,
    )
    if steps_done < config.steps:
        result.action = "stopped"
        return result
    selection = select_step(agreements_logged(trainer.state.log_history))
    if selection is not None:
        restore_selected(trainer.model, selection, draft_dir, checkpoints, steps_done)
        result.agreement_by_step = list(selection.by_step)
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        _save_healed(trainer, tokenizer, result, key, config, draft_dir, data_path)
    return result


def _training_examples(records: list[dict[str, Any]], tokenizer: Any, config: HealConfig,
                       topk_path: str | Path | None) -> list[dict[str, Any]]:
    """Token ids and labels per record; with ``config.topk``, also the target's recorded top-k (cut to topk)."""
    if not config.topk:
        return build_examples(records, tokenizer, config.max_length)
    from .soft_distill import read_target_topk, recorded_settings, soft_examples

    recorded = recorded_settings(topk_path)
    if recorded.get("k", 0) < config.topk or recorded.get("max_length") != config.max_length:
        raise ConfigError(f"{topk_path} holds the target's top-{recorded.get('k')} for max_length "
                          f"{recorded.get('max_length')}; this healing needs top-{config.topk} for max_length "
                          f"{config.max_length}. Record it again with those settings into a new file.")
    examples = soft_examples(records, read_target_topk(topk_path), tokenizer, config.max_length)
    for example in examples:
        example["topk_ids"] = [row[:config.topk] for row in example["topk_ids"]]
        example["topk_logprobs"] = [row[:config.topk] for row in example["topk_logprobs"]]
    return examples


def _check_tokenizers(draft_dir: Path, data_path: Path, target_dir: str | Path | None,
                      teacher_dir: str | Path | None) -> None:
    """Refuse a draft whose tokenizer differs from the target's (the one named, or the one the data records)."""
    settings_file = data_settings_path(data_path)
    if target_dir is None and settings_file.is_file():
        recorded = (read_json(settings_file) or {}).get("target_dir")
        target_dir = recorded if recorded and Path(recorded).is_dir() else None
    for other in (target_dir, teacher_dir):
        if other is not None:
            check_same_hf_tokenizer(draft_dir, other)


def _finished_heal(dest: Path, key: dict[str, Any], config: HealConfig, checkpoints: Path, overwrite: bool
                   ) -> HealResult | None:
    """The result of an earlier run with the same settings and data (None if there is none); refuses a foreign
    folder at `dest`."""
    remove_stale_partials(dest.parent, dest.name)
    finished = dest / HEALED_MANIFEST
    if finished.is_file() and not overwrite:
        manifest = read_json(finished)
        if manifest and manifest.get("key") == key and manifest.get("steps") == config.steps:
            return HealResult(path=dest, action="reused", steps_done=config.steps, total_steps=config.steps,
                              resumed_from_step=0, examples=manifest["examples"], answer_tokens=manifest["answer_tokens"],
                              input_tokens=manifest["input_tokens"], steps_per_second=manifest.get("steps_per_second", 0.0),
                              tokens_per_second=manifest.get("tokens_per_second", 0.0),
                              train_seconds=manifest.get("train_seconds", 0.0),
                              peak_rss_mb=manifest.get("peak_rss_mb", 0.0),
                              losses=[tuple(x) for x in manifest["losses"]], checkpoints=checkpoints,
                              agreement_by_step=[tuple(x) for x in manifest.get("agreement_by_step", [])])
        raise ModelFolderError(f"{dest} holds a model healed with other settings or data. Delete it or pass "
                               "overwrite=True (--overwrite).")
    if dest.exists() and not finished.is_file():  # never replaced, even with overwrite: it is not ours
        raise ModelFolderError(f"{dest} exists but is not a healed model. Delete it or choose another destination.")
    return None


def _prepare_checkpoints(checkpoints: Path, key: dict[str, Any], overwrite: bool) -> None:
    """Start over (`overwrite`), or check that the checkpoints there were made with these settings; record them."""
    key_file = checkpoints / "heal_key.json"
    if checkpoints.is_dir() and any(checkpoints.iterdir()) and not key_file.is_file():
        # the Trainer rotates (deletes) checkpoint-* folders: never let it loose in a folder we did not stamp
        raise ModelFolderError(f"{checkpoints} holds files that heal did not write (no heal_key.json). Move them away, "
                               "or choose another --output.")
    if overwrite and (checkpoints / "heal_key.json").is_file() and is_main_process():
        import shutil

        shutil.rmtree(checkpoints)  # only a folder this function stamped with its key file
    stored = read_json(key_file) if key_file.is_file() else None
    if checkpoints.is_dir() and stored is not None and stored != key:
        raise ConfigError(f"The checkpoints in {checkpoints} were made with other settings or data, so they cannot be "
                          "resumed. Delete that folder, or pass overwrite=True (--overwrite) to start over.")
    if is_main_process():
        write_json(key_file, key)


CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt")


def newest_complete_checkpoint(checkpoints: Path) -> Path | None:
    """The newest ``checkpoint-N`` folder that holds everything a resume reads (weights, optimizer, scheduler, state).

    A run killed while saving leaves a newer folder without some of these, and a full disk or a cut copy leaves files
    shorter than they say they are; such a folder is skipped, not trusted."""
    if not checkpoints.is_dir():
        return None
    complete = []
    for folder in checkpoints.glob("checkpoint-*"):
        step = folder.name.removeprefix("checkpoint-")
        if step.isdigit() and _checkpoint_is_whole(folder):
            complete.append((int(step), folder))
    return max(complete)[1] if complete else None


def _checkpoint_is_whole(folder: Path) -> bool:
    """Whether a checkpoint folder holds readable weights, optimizer and scheduler states, a parsable state file and
    model config, and, where saved, readable random-number states (everything `Trainer` reads to resume)."""
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model.bin"))
    torch_files = [*(folder / name for name in CHECKPOINT_FILES if name.endswith(".pt")), *folder.glob("rng_state*.pth"),
                   *(w for w in weights if w.suffix == ".bin")]
    # a missing file fails the checks below too: is_zipfile and read_json are False / None for it
    return (bool(weights) and all(weight_file_problem(path) is None for path in weights)
            # torch.save writes a zip archive, whose directory is at the end: a cut file has none
            and all(zipfile.is_zipfile(path) for path in torch_files)
            and all(read_json(folder / name) is not None for name in ("trainer_state.json", "config.json")))


def _checkpoint_progress(checkpoint: Path | None) -> tuple[int, int]:
    """(step, input tokens seen) of a checkpoint; (0, 0) when starting fresh."""
    if checkpoint is None:
        return 0, 0
    state = read_json(checkpoint / "trainer_state.json") or {}
    return int(state.get("global_step", checkpoint.name.split("-")[-1])), int(state.get("num_input_tokens_seen", 0))


def _load_teacher(teacher_dir: str | Path, config: HealConfig, model: Any) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    teacher = AutoModelForCausalLM.from_pretrained(str(teacher_dir), dtype=torch.float32).eval()
    teacher.requires_grad_(False)
    if teacher.config.vocab_size != model.config.vocab_size:
        raise TokenizerMismatchError(f"Teacher vocabulary ({teacher.config.vocab_size}) differs from the draft's "
                                     f"({model.config.vocab_size}); KL distillation needs the same vocabulary.")
    return teacher


def _make_trainer(model: Any, teacher: Any, examples: list[dict[str, list[int]]], tokenizer: Any, config: HealConfig,
                  checkpoints: Path, progress: bool, callbacks: list[Any]) -> Any:
    """A `transformers.Trainer` (our distillation subclass) with cosine schedule, warm-up and checkpoints."""
    import torch
    from transformers import TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    accelerator = torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())
    args = TrainingArguments(
        output_dir=str(checkpoints), max_steps=config.steps, per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation, learning_rate=config.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        logging_steps=max(1, min(10, config.steps // 20)), save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=2, report_to="none", seed=config.seed, data_seed=config.seed, dataloader_num_workers=0,
        remove_unused_columns=False, disable_tqdm=True, bf16=config.bf16,
        use_cpu=config.bf16 and not accelerator, dataloader_pin_memory=False,
        include_num_input_tokens_seen="non_padding",
    )
    if config.topk:
        from .soft_distill import soft_collate, soft_trainer_class

        trainer = soft_trainer_class()(
            model=model, args=args, train_dataset=examples, data_collator=soft_collate(tokenizer.pad_token_id or 0),
            ce_weight=config.ce_weight, temperature=config.kl_temperature, callbacks=callbacks,
        )
    else:
        trainer = distill_trainer_class()(
            model=model, args=args, train_dataset=examples, data_collator=collate_examples(tokenizer.pad_token_id or 0),
            teacher=teacher, kl_weight=config.kl_weight, temperature=config.kl_temperature, callbacks=callbacks,
        )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if progress:
        trainer.add_callback(_progress_callback())
    return trainer


def _save_healed(trainer: Any, tokenizer: Any, result: HealResult, key: dict[str, Any], config: HealConfig,
                 draft_dir: Path, data_path: Path) -> None:
    with atomic_directory(result.path, replace=True) as tmp:
        trainer.accelerator.unwrap_model(trainer.model).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / HEALED_MANIFEST, {"key": key, "steps": config.steps, "examples": result.examples,
                                           "answer_tokens": result.answer_tokens, "input_tokens": result.input_tokens,
                                           "steps_per_second": result.steps_per_second,
                                           "tokens_per_second": result.tokens_per_second,
                                           "train_seconds": result.train_seconds, "peak_rss_mb": result.peak_rss_mb,
                                           "losses": result.losses, "source": str(draft_dir), "data": str(data_path),
                                           "agreement_by_step": result.agreement_by_step,
                                           "kept_step": result.kept_step})


def agreement(model_dir: str | Path, records: list[dict[str, Any]], max_length: int = 1024, batch_size: int = 8) -> float:
    """Share of the target's answer tokens that the model at `model_dir` predicts as its top-1 (teacher forcing).

    A cheap proxy for speculative acceptance that needs no OpenVINO export: a draft that agrees with the target on
    more tokens gets more of its guesses accepted. Use records of prompts the draft was not trained on.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    examples = build_examples(records, tokenizer, max_length)
    if not examples:
        raise PromptFileError("No record with a non-empty answer to measure agreement on.")
    with threads_for(model):
        return model_agreement(model, examples, tokenizer.pad_token_id or 0, batch_size)


TRAINING_FLOPS_PER_PARAM_TOKEN = 6  # forward (2) + backward (4) multiply-adds per parameter and token


def cost_rows(scales: dict[str, int], answer_tokens: float, prompt_tokens: float, generation_tps: float,
              training_tps: float, epochs: float = 1.0) -> list[dict[str, Any]]:
    """Tokens and hours for distillation data and one healing pass at several scales, at the given measured rates.

    `scales` maps a label to a number of prompts; rates are tokens per second (generation: answer tokens; training:
    prompt and answer tokens, as transformers counts them).
    """
    rows = []
    for label, samples in scales.items():
        generated = samples * answer_tokens
        trained = samples * (prompt_tokens + answer_tokens) * epochs
        rows.append({"scale": label, "prompts": samples, "answer tokens": f"{generated:,.0f}",
                     "data generation": _duration(generated / generation_tps) if generation_tps else "-",
                     "training tokens": f"{trained:,.0f}",
                     "healing": _duration(trained / training_tps) if training_tps else "-"})
    return rows


def _duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN or unknown rate
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"
