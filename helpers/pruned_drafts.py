"""A preset's draft, depth-pruned and healed, in one resumable call per depth (what the benchmark suite measures).

1. distillation data: the preset's int4 target answers the built-in prompts plus coding tasks made from Python's
   standard library (`prompts.stdlib_prompts`), appended to one JSONL file in the work folder;
2. angular distances of the draft's Hugging Face checkpoint, measured once and stored next to the drafts;
3. for each depth: prune the most redundant block; optionally repair it without training (`replaceme`: a least-squares
   map folded into the layer before the cut) and heal it on the target's answers; export every variant to OpenVINO,
   so that a benchmark shows what each step bought;
4. optionally, each draft again with a trimmed output layer (`frspec`: the N most frequent tokens of the target's
   answers, scattered into a full-vocabulary row), the unpruned one included.

Every stage reuses finished work (manifests and keyed files), so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .distill import HealConfig
from .errors import ConfigError
from .fsutil import file_digest, read_json, write_json
from .heal_selection import select_step
from .paths import PathLike, resolve_workdir
from .settings import DISTILL

if TYPE_CHECKING:
    from .presets import Preset, WeightFormat
    from .pruning import AngularDistances, Block

CALIBRATION_TEXTS = DISTILL.calibration_texts
MIN_HEAD_TOKENS = 1024  # below this the chat template's own tokens crowd out the content


@dataclass(frozen=True)
class HealingPlan:
    """What to prune and how to heal; part of every result's signature."""

    depths: tuple[int, ...]  # layers to remove: one pruned draft per entry
    prompts: int = DISTILL.prompts  # distillation prompts: the 120 built-in ones first, then standard-library tasks
    max_new_tokens: int = DISTILL.max_new_tokens  # length of the target's answers
    heal: HealConfig | None = field(default_factory=HealConfig)  # None: no training (repair only)
    repair: bool = False  # also a training-free ReplaceMe repair per depth (healing then starts from it)
    head_tokens: tuple[int, ...] = ()  # trimmed output layers to try (FR-Spec), e.g. (32768,)

    def __post_init__(self) -> None:
        if not self.depths or any(d < 1 for d in self.depths):
            raise ConfigError(f"Give at least one depth (layers to remove, >= 1), got {self.depths}.")
        if self.prompts < 1:
            raise ConfigError(f"The number of distillation prompts must be at least 1, got {self.prompts}.")
        if any(n < MIN_HEAD_TOKENS for n in self.head_tokens):
            raise ConfigError(f"A trimmed output layer needs at least {MIN_HEAD_TOKENS} tokens, got {self.head_tokens}.")

    def describe(self) -> dict[str, Any]:
        described = {"depths": list(self.depths), "prompts": self.prompts, "max_new_tokens": self.max_new_tokens,
                     "heal": asdict(self.heal) if self.heal else None}
        if self.repair or self.head_tokens:  # absent for plans made before these options, so their results still match
            described.update(repair=self.repair, head_tokens=list(self.head_tokens))
        return described

    def variants(self, depth: int, weights: str) -> list[ModelKey]:
        """The drafts made for one depth (0: the unpruned draft, which only gets trimmed heads)."""
        bases = [ModelKey("draft", weights)] if depth == 0 else [ModelKey("draft", weights, depth)]
        if depth and self.repair:
            bases.append(ModelKey("draft", weights, depth, repair="replaceme"))
        if depth and self.heal is not None:
            bases.append(ModelKey("draft", weights, depth, healed=True, repair="replaceme" if self.repair else ""))
        # a trimmed output layer only on the most worked-on base: the head's effect does not depend on how the cut was
        # treated (measured: pruned4 and pruned4-replaceme gained alike), and each variant costs a benchmark config
        trimmed = [replace(bases[-1], head_tokens=n) for n in self.head_tokens]
        return (bases[1:] if depth == 0 else bases) + trimmed


@dataclass(frozen=True)
class ModelKey:
    """Which model of a preset a benchmark uses: role, weight format, and for drafts how deep they were pruned."""

    role: str  # "target" or "draft"
    weights: str  # a `WeightFormat.tag`: "int4", "int8", "int4-all"
    pruned: int = 0  # layers removed (0: the preset's own model)
    healed: bool = False
    repair: str = ""  # "replaceme": the cut bridged by a least-squares map (training-free)
    head_tokens: int = 0  # trimmed output layer: the N most frequent tokens (0: the full vocabulary)

    @property
    def variant(self) -> str:
        """``pruned6-replaceme-healed-head32k`` and the like, or empty for the preset's own model."""
        parts = [f"pruned{self.pruned}"] if self.pruned else []
        parts += [self.repair] if self.repair else []
        parts += ["healed"] if self.healed else []
        parts += [f"head{self.head_tokens // 1024}k"] if self.head_tokens else []
        return "-".join(parts)

    @property
    def hf_variant(self) -> ModelKey:
        """The same draft before export choices (format, trimmed head): which Hugging Face checkpoint it comes from."""
        return replace(self, weights="", head_tokens=0)

    @property
    def folder_name(self) -> str:
        return "-".join(part for part in (self.variant, self.weights) if part)

    def __str__(self) -> str:  # the name in result files: "target int4", "draft pruned6-healed int4"
        return " ".join(part for part in (self.role, self.variant, self.weights) if part)


@dataclass
class PrunedDraft:
    """One depth: the removed block and the folders made for it."""

    depth: int
    block: Block
    layers_left: int
    checkpoints: dict[ModelKey, Path]  # Hugging Face folders by `ModelKey.hf_variant` (pruned, repaired, healed)
    openvino: dict[ModelKey, Path]  # one OpenVINO folder per variant and format
    heal_losses: list[tuple[int, float]] = field(default_factory=list)
    heal_seconds: float = 0.0
    heal_peak_mb: float = 0.0  # peak resident memory of the process while healing
    repair_errors: tuple[float, float] | None = None  # calibration MSE at the cut: plainly pruned, repaired
    agreement: dict[str, float] = field(default_factory=dict)  # held-out top-1 agreement with the target, per checkpoint
    heal_agreement_by_step: list[tuple[int, float]] = field(default_factory=list)  # measured while healing; 0: start

    @property
    def heal_kept_step(self) -> int | None:
        """The healing step whose weights were kept: the best held-out agreement (None when none was measured)."""
        selection = select_step(self.heal_agreement_by_step)
        return selection.kept_step if selection else None

    def row(self) -> dict[str, Any]:
        first = self.heal_losses[0][1] if self.heal_losses else None
        last = self.heal_losses[-1][1] if self.heal_losses else None
        return {"depth": self.depth, "removed": self.block.describe(), "layers left": self.layers_left,
                "repair MSE (pruned -> repaired)": list(self.repair_errors) if self.repair_errors else None,
                "held-out agreement": self.agreement,
                "healing: agreement by step": [list(pair) for pair in self.heal_agreement_by_step] or None,
                "healing: step kept": self.heal_kept_step,
                "first loss": first, "last loss": last, "heal minutes": round(self.heal_seconds / 60, 1),
                "heal peak RAM GiB": round(self.heal_peak_mb / 1024, 1) if self.heal_peak_mb else None,
                "openvino": {str(key): str(path) for key, path in self.openvino.items()}}


def work_folder(preset: Preset, workdir: PathLike | None = None) -> Path:
    """``<workdir>/pruned-drafts/<preset>``: data, distances and drafts of one preset."""
    return resolve_workdir(workdir) / "pruned-drafts" / preset.name


def answers_path(preset: Preset, plan: HealingPlan, workdir: PathLike | None = None) -> Path:
    """Where the target's distillation answers for `plan` are kept (JSONL)."""
    return work_folder(preset, workdir) / f"answers-{plan.max_new_tokens}tok.jsonl"


def plan_answers_path(preset: Preset, plan: HealingPlan, workdir: PathLike | None = None) -> Path:
    """The answers to exactly `plan.prompts` prompts (JSONL, in prompt order): what heals, calibrates and is held out."""
    return answers_path(preset, plan, workdir).with_name(f"answers-{plan.max_new_tokens}tok-{plan.prompts}prompts.jsonl")


def distillation_data(preset: Preset, plan: HealingPlan, target_dir: Path, progress: bool = True,
                      workdir: PathLike | None = None) -> Path:
    """The target's answers to `plan.prompts` prompts (only missing answers are generated), as their own file.

    The generated answers are shared by every plan of the preset, so a run with more prompts leaves more records
    there; healing, the held-out split and calibration read only this plan's, so the same command makes the same
    draft whatever ran before it."""
    from .distill import data_settings_path, generate_distillation_data, read_distillation_data
    from .fsutil import atomic_write_text
    from .prompts import distillation_prompts

    shared = answers_path(preset, plan, workdir)
    prompts = distillation_prompts(plan.prompts)
    generate_distillation_data(target_dir, prompts, shared, max_new_tokens=plan.max_new_tokens, progress=progress)
    by_id = {record["id"]: record for record in read_distillation_data(shared)}
    text = "".join(json.dumps(by_id[p.id], ensure_ascii=False) + "\n" for p in prompts)
    path = plan_answers_path(preset, plan, workdir)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:  # unchanged: keep its digest-keyed caches
        atomic_write_text(path, text)
    # how the answers were made (the target, whose tokenizer healing checks the draft against) goes with them
    write_json(data_settings_path(path), read_json(data_settings_path(shared)))
    return path


def draft_distances(preset: Preset, progress: bool = True, workdir: PathLike | None = None) -> AngularDistances:
    """Angular distances of the preset's draft on the built-in prompts, measured once and stored."""
    from .conversion import hf_source
    from .prompts import builtin_distill_prompts
    from .pruning import AngularDistances, angular_distances

    source = hf_source(preset.draft, workdir)
    path = work_folder(preset, workdir) / "angular-distances.json"
    stored = read_json(path)
    if stored and stored.get("source") == source and stored.get("texts") == CALIBRATION_TEXTS:
        return AngularDistances(**stored["distances"])
    texts = [p.text for p in builtin_distill_prompts()[:CALIBRATION_TEXTS]]
    distances = angular_distances(source, texts, progress=progress)
    write_json(path, {"source": source, "texts": CALIBRATION_TEXTS, "distances": distances.to_dict()})
    return distances


def target_topk(plan: HealingPlan, data: Path, target_dir: Path, progress: bool = True) -> Path | None:
    """The OpenVINO target's top-k at every answer position of the data (only missing records are recorded), when the
    plan heals on soft targets; None otherwise."""
    from .distill import read_distillation_data
    from .soft_distill import DEFAULT_TOP_K, record_target_topk

    if plan.heal is None or not plan.heal.topk:
        return None
    k = max(plan.heal.topk, DEFAULT_TOP_K)
    suffix = f"-target-top{k}-{plan.heal.max_length}.jsonl"
    path = data.with_name(f"{data.stem}{suffix}")
    # other plans' recordings of the same answers are copied, not recomputed (a forward pass of the target each)
    others = sorted(data.parent.glob(f"answers-{plan.max_new_tokens}tok-*prompts{suffix}"))
    record_target_topk(target_dir, read_distillation_data(data), path, k=k, max_length=plan.heal.max_length,
                       progress=progress, reuse=others)
    return path


def held_out_share(plan: HealingPlan) -> float:
    """The share of distillation records kept out of training, on which agreement is measured (0: none held out)."""
    return (plan.heal or HealConfig()).held_out


AGREEMENT_CACHE = "held-out-agreement.json"  # beside the distillation data: agreements already measured


def answer_counts(plan: HealingPlan, data: Path) -> dict[str, int]:
    """How many of the target's answers trained the drafts and how many were held out to measure them."""
    from .distill import read_distillation_data, split_held_out

    training, held = split_held_out(read_distillation_data(data), held_out_share(plan))
    return {"training": len(training), "held out": len(held)}


def _weights_stamp(folder: Path) -> str:
    """Size and modification time of a checkpoint's weight files: changes whenever the checkpoint is rewritten."""
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    return ",".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)


def _held_out(plan: HealingPlan, data: Path, limit: int | None = None) -> tuple[list[dict[str, Any]], str]:
    """The held-out distillation records of `plan` (at most `limit`: those whose id hashes lowest, the same whatever
    the file's order), and a short digest of their ids (part of every cache key)."""
    from .distill import read_distillation_data, split_held_out

    _, held = split_held_out(read_distillation_data(data), held_out_share(plan))
    if limit is not None and len(held) > limit:
        kept = {r["id"] for r in sorted(held, key=lambda r: hashlib.sha256(str(r["id"]).encode()).hexdigest())[:limit]}
        held = [r for r in held if r["id"] in kept]
    return held, hashlib.sha256(",".join(sorted(str(r["id"]) for r in held)).encode()).hexdigest()[:16]


def _cached_figures(data: Path, jobs: dict[str, tuple[str, Callable[[], float | None]]], progress: str = ""
                    ) -> dict[str, float | None]:
    """``{name: (cache key, measure)}`` -> ``{name: figure}``: each figure is read from the cache beside `data`, or
    measured and stored there at once (a killed run keeps what it measured). `progress`: a bar's title, or no bar."""
    from tqdm.auto import tqdm

    cache_path = data.with_name(AGREEMENT_CACHE)
    cache = read_json(cache_path) or {}
    for entry, measure in tqdm(list(jobs.values()), desc=progress, disable=not progress, leave=False):
        if entry not in cache:
            cache[entry] = measure()
            write_json(cache_path, cache)
    return {name: cache[entry] for name, (entry, _) in jobs.items()}


def _settings_key(device: str, properties: dict[str, Any] | None) -> str:
    return f"{device}|{json.dumps(properties or {}, sort_keys=True, default=str)}"


def held_out_agreement(checkpoints: dict[ModelKey, Path], plan: HealingPlan, data: Path, device: str = "CPU",
                       properties: dict[str, Any] | None = None) -> dict[str, float]:
    """Top-1 agreement with the target's answers on the held-out records, for each Hugging Face checkpoint (fp32
    PyTorch) or OpenVINO export (a folder with openvino_model.xml, run on `device` with `properties`).

    Each figure is stored beside the data, keyed by the model's weight files and the held-out records, so a rerun
    that reuses every model (a suite run of other steps) measures nothing again."""
    from .distill import agreement
    from .soft_distill import openvino_agreement

    held, held_ids = _held_out(plan, data)
    if not held:
        return {}
    max_length = plan.heal.max_length if plan.heal else 512

    def job(path: Path) -> tuple[str, Callable[[], float | None]]:
        entry = f"{Path(path).resolve()}|{_weights_stamp(Path(path))}|{held_ids}|{max_length}"
        if (Path(path) / "openvino_model.xml").is_file():
            return (f"{entry}|{_settings_key(device, properties)}",
                    lambda: round(openvino_agreement(path, held, max_length, device, properties), 4))
        return entry, lambda: round(agreement(path, held, max_length=max_length), 4)

    return _cached_figures(data, {str(key): job(path) for key, path in checkpoints.items()})


def held_out_acceptance(target_dir: Path, drafts: dict[ModelKey, Path], plan: HealingPlan, data: Path, k: int,
                        max_new_tokens: int, device: str = "CPU", properties: dict[str, Any] | None = None,
                        progress: bool = True, prompts: int | None = None) -> dict[str, float | None]:
    """Speculative acceptance of each OpenVINO draft with the target at `k`, greedy, on the held-out prompts: accepted
    over drafted tokens, summed over the prompts (OpenVINO GenAI's own counts).

    The benchmark steps measure acceptance on a handful of prompts; these are the same prompts the held-out agreement
    uses (at most `prompts` of them, `DISTILL.acceptance_prompts` by default), never trained on. Greedy acceptance
    does not depend on timing, so it is measured once per draft and stored beside the data (keyed like the agreement)."""
    from .benchmark import measure, pooled_acceptance
    from .generation import generation_config, load_pipeline

    held, held_ids = _held_out(plan, data, DISTILL.acceptance_prompts if prompts is None else prompts)
    if not held:
        return {}
    context = (f"acceptance|{Path(target_dir).resolve()}|{_weights_stamp(Path(target_dir))}|{held_ids}|k={k}|"
               f"{max_new_tokens}|{_settings_key(device, properties)}")
    config = generation_config(max_new_tokens, num_assistant_tokens=k)

    def job(path: Path) -> tuple[str, Callable[[], float | None]]:
        def run() -> float | None:
            pipe = load_pipeline(target_dir, device, draft_dir=path, **(properties or {}))
            rate = pooled_acceptance([measure(pipe, record["chat_prompt"], config) for record in held])
            return None if rate is None else round(rate, 4)

        return f"{context}|{Path(path).resolve()}|{_weights_stamp(Path(path))}", run

    return _cached_figures(data, {str(key): job(path) for key, path in drafts.items()},
                           f"held-out acceptance k={k}" if progress else "")


def calibration_texts(data: Path, count: int = CALIBRATION_TEXTS) -> list[str]:
    """Prompt + answer texts of the target (what the draft must imitate), for the training-free repair."""
    from .distill import read_distillation_data

    return [r["chat_prompt"] + r["answer"] for r in read_distillation_data(data)[:count]]


def head_token_ids(preset: Preset, size: int, data: Path, workdir: PathLike | None = None) -> list[int]:
    """The `size` most frequent tokens of the target's answers, plus every token the chat template needs; stored."""
    from transformers import AutoTokenizer

    from .conversion import hf_source
    from .distill import read_distillation_data
    from .frspec import count_token_frequencies, frequent_token_subset, required_token_ids

    path = work_folder(preset, workdir) / f"head-tokens-{size}.json"
    key = {"data": file_digest(data), "size": size}
    stored = read_json(path)
    if stored and stored.get("key") == key:
        return [int(i) for i in stored["token_ids"]]
    tokenizer = AutoTokenizer.from_pretrained(hf_source(preset.draft, workdir))
    counts = count_token_frequencies((r["answer"] for r in read_distillation_data(data)), tokenizer)
    ids = frequent_token_subset(counts, size, len(tokenizer), always=required_token_ids(tokenizer))
    answer_tokens = sum(counts.values())
    covered = sum(counts[i] for i in ids) / answer_tokens if answer_tokens else 0.0
    write_json(path, {"key": key, "token_ids": ids, "answer_tokens": answer_tokens, "coverage": covered})
    return ids


def export_variant(key: ModelKey, hf_dir: Path, weights: WeightFormat, dest: Path, token_ids: Sequence[int] = ()) -> Path:
    """Export one draft variant: the ordinary optimum-intel route, or the trimmed-head route for ``head_tokens``
    (exported from memory, then edited so GenAI still projects only the positions it samples)."""
    from .frspec import SUBSET_FILE, add_sampled_tokens_gather, export_trimmed_draft
    from .pruning import export_draft

    if not key.head_tokens:
        return export_draft(hf_dir, weights, dest).path
    weight_files = sorted(hf_dir.glob("*.safetensors"))
    stamp = {"source": str(hf_dir), "weights": weights.describe(), "token_ids": ids_digest(token_ids),
             "checkpoint": [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in weight_files]}
    manifest = dest / "trimmed-export.json"
    if read_json(manifest) == stamp and (dest / SUBSET_FILE).is_file():
        return dest
    export_trimmed_draft(hf_dir, token_ids, dest, weights)
    add_sampled_tokens_gather(dest)
    write_json(manifest, stamp)
    return dest


def ids_digest(token_ids: Sequence[int]) -> str:
    """A short digest of a token subset (part of a trimmed export's identity)."""
    return hashlib.sha256(",".join(map(str, token_ids)).encode()).hexdigest()[:16]


def recipe_digest(heal: HealConfig) -> str:
    """A short digest of a healing recipe: it names the recipe's checkpoint and exports."""
    return hashlib.sha256(json.dumps(asdict(heal), sort_keys=True).encode()).hexdigest()[:8]


def export_folder(folder: Path, key: ModelKey, plan: HealingPlan, data: Path) -> Path:
    """Where a variant's OpenVINO export goes. A healed variant's folder carries its recipe's digest and its answers'
    (as its checkpoint does), a trimmed head its answers' (they pick its tokens): another recipe or plan then exports
    beside it instead of over it, and switching between plans re-exports nothing."""
    name = key.folder_name
    if key.healed and plan.heal is not None:
        name += f"-{recipe_digest(plan.heal)}"
    if (key.healed and plan.heal is not None) or key.head_tokens:
        name += f"-{file_digest(data)[:8]}"
    return folder / "openvino" / name


def make_pruned_draft(preset: Preset, depth: int, plan: HealingPlan, data: Path, distances: AngularDistances,
                      formats: Sequence[WeightFormat], progress: bool = True, workdir: PathLike | None = None,
                      topk_path: Path | None = None) -> PrunedDraft:
    """Prune `depth` layers (the most redundant block), repair and heal as `plan` says, and export every variant of
    `plan.variants` in the first format of `formats`; healed variants go out in every format. `topk_path`: the
    target's recorded top-k, for a plan that heals on soft targets (`target_topk`)."""
    from .conversion import hf_source
    from .distill import heal
    from .pruning import prune_model

    if not formats:
        raise ConfigError("Give at least one OpenVINO weight format for the pruned drafts.")
    folder = work_folder(preset, workdir)
    block = distances.best_block(depth)
    source = hf_source(preset.draft, workdir)
    pruned = prune_model(source, folder / f"draft-pruned{depth}", block, method="angular (last token)")
    checkpoints = {ModelKey("draft", "", depth): pruned.path}
    start, errors = pruned.path, None
    if plan.repair:
        from .replaceme import repair_pruned_model

        repaired = repair_pruned_model(source, folder / f"draft-pruned{depth}-replaceme", block, calibration_texts(data))
        checkpoints[ModelKey("draft", "", depth, repair="replaceme")] = start = repaired.path
        errors = (repaired.mse_pruned, repaired.mse_repaired)
    healed = None
    if plan.heal is not None:
        # one folder per healing recipe: another recipe heals anew beside it, and a killed run resumes its own
        # (and per data: a plan with other answers heals beside it instead of finding this folder made from others)
        name = (f"draft-pruned{depth}{'-replaceme' if plan.repair else ''}-healed-{recipe_digest(plan.heal)}"
                f"-{file_digest(data)[:8]}")
        # the cut: in the pruned draft, the first layer after the removed block has the block's old start index
        healed = heal(start, data, folder / name, plan.heal, progress=progress, topk_path=topk_path, cut=block.start)
        if healed.action == "stopped":
            raise ConfigError(f"Healing {healed.path} stopped at step {healed.steps_done}; run again to continue.")
        checkpoints[ModelKey("draft", "", depth, healed=True, repair="replaceme" if plan.repair else "")] = healed.path
    keys = plan.variants(depth, formats[0].tag)
    keys += [replace(key, weights=w.tag) for key in keys if key.healed and not key.head_tokens for w in formats[1:]]
    by_tag = {w.tag: w for w in formats}
    openvino = {key: export_variant(key, checkpoints[key.hf_variant], by_tag[key.weights], export_folder(folder, key, plan, data),
                                    head_token_ids(preset, key.head_tokens, data, workdir) if key.head_tokens else ())
                for key in keys}
    return PrunedDraft(depth=depth, block=block, layers_left=distances.num_layers - depth, checkpoints=checkpoints,
                       openvino=openvino, heal_losses=healed.losses if healed else [],
                       heal_seconds=healed.train_seconds if healed else 0.0,
                       heal_peak_mb=healed.peak_rss_mb if healed else 0.0,
                       repair_errors=errors, agreement=held_out_agreement(checkpoints, plan, data),
                       heal_agreement_by_step=healed.agreement_by_step if healed else [])


def unpruned_variants(preset: Preset, plan: HealingPlan, data: Path, weights: WeightFormat,
                      workdir: PathLike | None = None) -> dict[ModelKey, Path]:
    """The unpruned draft with each trimmed output layer of `plan.head_tokens` (the control for the pruned ones)."""
    from .conversion import hf_source

    folder = work_folder(preset, workdir)
    source = Path(hf_source(preset.draft, workdir))
    return {key: export_variant(key, source, weights, export_folder(folder, key, plan, data),
                                head_token_ids(preset, key.head_tokens, data, workdir))
            for key in plan.variants(0, weights.tag)}


def make_pruned_drafts(preset: Preset, plan: HealingPlan, target_dir: Path, formats: Sequence[WeightFormat],
                       progress: bool = True, workdir: PathLike | None = None) -> tuple[list[PrunedDraft], dict[ModelKey, Path]]:
    """Every depth of `plan`: distances once (checking every depth fits), data (shared), then prune, repair, heal and
    export each depth; and the unpruned draft's trimmed-head variants. Returns the pruned drafts and the unpruned variants."""
    from .conversion import hf_source

    distances = draft_distances(preset, progress, workdir)
    for depth in plan.depths:  # a depth the draft cannot lose fails now, not after an hour of target answers
        distances.best_block(depth)
    data = distillation_data(preset, plan, target_dir, progress, workdir)
    topk = target_topk(plan, data, target_dir, progress)
    drafts = [make_pruned_draft(preset, depth, plan, data, distances, formats, progress, workdir, topk)
              for depth in plan.depths]
    unpruned = unpruned_variants(preset, plan, data, formats[0], workdir)
    reference = held_out_agreement({ModelKey("draft", ""): Path(hf_source(preset.draft, workdir))}, plan, data)
    write_json(work_folder(preset, workdir) / "pruned-drafts.json",
               {"plan": plan.describe(), "formats": [w.describe() for w in formats], "drafts": [d.row() for d in drafts],
                "unpruned held-out agreement": reference.get("draft"), "held-out share": held_out_share(plan),
                "answers": answer_counts(plan, data),
                "unpruned variants": {str(k): str(v) for k, v in unpruned.items()}})
    return drafts, unpruned
