"""A preset's draft, depth-pruned and healed, in one resumable call per depth (what the benchmark suite measures).

1. distillation data: the preset's int4 target answers the built-in prompts plus coding tasks made from Python's
   standard library (`distill.stdlib_prompts`), appended to one JSONL file in the work folder;
2. angular distances of the draft's Hugging Face checkpoint, measured once and stored next to the drafts;
3. for each depth: prune the most redundant block, heal it on the target's answers, export it to OpenVINO; the
   unhealed pruned draft is exported as well, so that a benchmark shows what healing bought.

Every stage reuses finished work (manifests and keyed files), so an interrupted run continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .distill import HealConfig
from .errors import ConfigError
from .fsutil import read_json, write_json

if TYPE_CHECKING:
    from .benchmark import Prompt
    from .presets import Preset, WeightFormat
    from .pruning import AngularDistances, Block

CALIBRATION_TEXTS = 64  # prompts for the angular distances (the paper's measure is stable well below this)


@dataclass(frozen=True)
class HealingPlan:
    """What to prune and how to heal; part of every result's signature."""

    depths: tuple[int, ...]  # layers to remove: one pruned draft per entry
    prompts: int = 360  # distillation prompts: the 120 built-in ones first, then standard-library coding tasks
    max_new_tokens: int = 256  # length of the target's answers
    heal: HealConfig = field(default_factory=HealConfig)

    def __post_init__(self) -> None:
        if not self.depths or any(d < 1 for d in self.depths):
            raise ConfigError(f"Give at least one depth (layers to remove, >= 1), got {self.depths}.")
        if self.prompts < 1:
            raise ConfigError(f"The number of distillation prompts must be at least 1, got {self.prompts}.")

    def describe(self) -> dict[str, Any]:
        return {"depths": list(self.depths), "prompts": self.prompts, "max_new_tokens": self.max_new_tokens,
                "heal": asdict(self.heal)}


@dataclass
class PrunedDraft:
    """One depth: the removed block and the folders made for it."""

    depth: int
    block: Block
    layers_left: int
    pruned_hf: Path
    healed_hf: Path
    openvino: dict[str, Path]  # `draft_key` -> OpenVINO folder
    heal_losses: list[tuple[int, float]] = field(default_factory=list)
    heal_seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        first = self.heal_losses[0][1] if self.heal_losses else None
        last = self.heal_losses[-1][1] if self.heal_losses else None
        return {"depth": self.depth, "removed": self.block.describe(), "layers left": self.layers_left,
                "first loss": first, "last loss": last, "heal minutes": round(self.heal_seconds / 60, 1),
                "openvino": {key: str(path) for key, path in self.openvino.items()}}


def distillation_prompts(count: int) -> list[Prompt]:
    """The built-in distillation prompts, then standard-library coding tasks, `count` in all."""
    from .distill import builtin_distill_prompts, stdlib_prompts

    builtin = builtin_distill_prompts()
    return builtin[:count] + (stdlib_prompts(count - len(builtin)) if count > len(builtin) else [])


def work_folder(preset: Preset) -> Path:
    from .paths import workdir

    return workdir() / "pruned-drafts" / preset.name


def distillation_data(preset: Preset, plan: HealingPlan, target_dir: Path, progress: bool = True) -> Path:
    """The target's answers to `plan.prompts` prompts (only missing answers are generated)."""
    from .distill import generate_distillation_data

    path = work_folder(preset) / f"answers-{plan.max_new_tokens}tok.jsonl"
    generate_distillation_data(target_dir, distillation_prompts(plan.prompts), path, max_new_tokens=plan.max_new_tokens,
                               progress=progress)
    return path


def draft_distances(preset: Preset, progress: bool = True) -> AngularDistances:
    """Angular distances of the preset's draft on the built-in prompts, measured once and stored."""
    from .distill import builtin_distill_prompts
    from .pruning import AngularDistances, angular_distances, hf_source

    source = hf_source(preset.draft)
    path = work_folder(preset) / "angular-distances.json"
    stored = read_json(path)
    if stored and stored.get("source") == source and stored.get("texts") == CALIBRATION_TEXTS:
        return AngularDistances(**stored["distances"])
    texts = [p.text for p in builtin_distill_prompts()[:CALIBRATION_TEXTS]]
    distances = angular_distances(source, texts, progress=progress)
    write_json(path, {"source": source, "texts": CALIBRATION_TEXTS, "distances": distances.to_dict()})
    return distances


def draft_key(depth: int, healed: bool, weights: WeightFormat) -> str:
    """How the suite names a pruned draft, e.g. ``pruned6-healed int4`` or ``pruned6 int4-all``."""
    return f"pruned{depth}{'-healed' if healed else ''} {weights.tag}"


def make_pruned_draft(preset: Preset, depth: int, plan: HealingPlan, data: Path, distances: AngularDistances,
                      formats: Sequence[WeightFormat], progress: bool = True) -> PrunedDraft:
    """Prune `depth` layers (the most redundant block) and heal; export the healed draft in every format of `formats`
    and the unhealed one in the first (to show what healing bought)."""
    from .distill import heal
    from .pruning import export_draft, hf_source, prune_model

    if not formats:
        raise ConfigError("Give at least one OpenVINO weight format for the pruned drafts.")
    folder = work_folder(preset)
    block = distances.best_block(depth)
    pruned = prune_model(hf_source(preset.draft), folder / f"draft-pruned{depth}", block, method="angular (last token)")
    healed = heal(pruned.path, data, folder / f"draft-pruned{depth}-healed", plan.heal, progress=progress)
    if healed.action == "stopped":
        raise ConfigError(f"Healing {healed.path} stopped at step {healed.steps_done}; run again to continue.")
    openvino = {}
    for hf_dir, is_healed, weights in [(pruned.path, False, formats[0]), *((healed.path, True, w) for w in formats)]:
        key = draft_key(depth, is_healed, weights)
        openvino[key] = export_draft(hf_dir, weights, folder / "openvino" / key.replace(" ", "-")).path
    return PrunedDraft(depth=depth, block=block, layers_left=distances.num_layers - depth, pruned_hf=pruned.path,
                       healed_hf=healed.path, openvino=openvino, heal_losses=healed.losses,
                       heal_seconds=healed.train_seconds)


def make_pruned_drafts(preset: Preset, plan: HealingPlan, target_dir: Path, formats: Sequence[WeightFormat],
                       progress: bool = True) -> list[PrunedDraft]:
    """Every depth of `plan`: data first (shared), distances once, then prune, heal and export each depth."""
    data = distillation_data(preset, plan, target_dir, progress)
    distances = draft_distances(preset, progress)
    drafts = [make_pruned_draft(preset, depth, plan, data, distances, formats, progress) for depth in plan.depths]
    write_json(work_folder(preset) / "pruned-drafts.json",
               {"plan": plan.describe(), "formats": [w.describe() for w in formats], "drafts": [d.row() for d in drafts]})
    return drafts
