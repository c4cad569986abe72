"""A preset's draft, depth-pruned and healed, in one resumable call per depth (what the benchmark suite measures).

1. distillation data: the preset's int4 target answers the built-in prompts plus coding tasks made from Python's
   standard library (`prompts.stdlib_prompts`), appended to one JSONL file in the work folder;
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
from .paths import PathLike, resolve_workdir
from .settings import DISTILL

if TYPE_CHECKING:
    from .presets import Preset, WeightFormat
    from .pruning import AngularDistances, Block

CALIBRATION_TEXTS = DISTILL.calibration_texts


@dataclass(frozen=True)
class HealingPlan:
    """What to prune and how to heal; part of every result's signature."""

    depths: tuple[int, ...]  # layers to remove: one pruned draft per entry
    prompts: int = DISTILL.prompts  # distillation prompts: the 120 built-in ones first, then standard-library tasks
    max_new_tokens: int = DISTILL.max_new_tokens  # length of the target's answers
    heal: HealConfig = field(default_factory=HealConfig)

    def __post_init__(self) -> None:
        if not self.depths or any(d < 1 for d in self.depths):
            raise ConfigError(f"Give at least one depth (layers to remove, >= 1), got {self.depths}.")
        if self.prompts < 1:
            raise ConfigError(f"The number of distillation prompts must be at least 1, got {self.prompts}.")

    def describe(self) -> dict[str, Any]:
        return {"depths": list(self.depths), "prompts": self.prompts, "max_new_tokens": self.max_new_tokens,
                "heal": asdict(self.heal)}


@dataclass(frozen=True)
class ModelKey:
    """Which model of a preset a benchmark uses: role, weight format, and for drafts how deep they were pruned."""

    role: str  # "target" or "draft"
    weights: str  # a `WeightFormat.tag`: "int4", "int8", "int4-all"
    pruned: int = 0  # layers removed (0: the preset's own model)
    healed: bool = False

    @property
    def variant(self) -> str:
        """``pruned6-healed`` / ``pruned6``, or empty for the preset's own model."""
        return f"pruned{self.pruned}{'-healed' if self.healed else ''}" if self.pruned else ""

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
    pruned_hf: Path
    healed_hf: Path
    openvino: dict[ModelKey, Path]  # one OpenVINO folder per format, healed or not
    heal_losses: list[tuple[int, float]] = field(default_factory=list)
    heal_seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        first = self.heal_losses[0][1] if self.heal_losses else None
        last = self.heal_losses[-1][1] if self.heal_losses else None
        return {"depth": self.depth, "removed": self.block.describe(), "layers left": self.layers_left,
                "first loss": first, "last loss": last, "heal minutes": round(self.heal_seconds / 60, 1),
                "openvino": {str(key): str(path) for key, path in self.openvino.items()}}


def work_folder(preset: Preset, workdir: PathLike | None = None) -> Path:
    """``<workdir>/pruned-drafts/<preset>``: data, distances and drafts of one preset."""
    return resolve_workdir(workdir) / "pruned-drafts" / preset.name


def distillation_data(preset: Preset, plan: HealingPlan, target_dir: Path, progress: bool = True,
                      workdir: PathLike | None = None) -> Path:
    """The target's answers to `plan.prompts` prompts (only missing answers are generated)."""
    from .distill import generate_distillation_data
    from .prompts import distillation_prompts

    path = work_folder(preset, workdir) / f"answers-{plan.max_new_tokens}tok.jsonl"
    generate_distillation_data(target_dir, distillation_prompts(plan.prompts), path, max_new_tokens=plan.max_new_tokens,
                               progress=progress)
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


def draft_key(depth: int, healed: bool, weights: WeightFormat) -> ModelKey:
    """The key of a pruned draft, e.g. ``draft pruned6-healed int4`` or ``draft pruned6 int4-all``."""
    return ModelKey("draft", weights.tag, depth, healed)


def make_pruned_draft(preset: Preset, depth: int, plan: HealingPlan, data: Path, distances: AngularDistances,
                      formats: Sequence[WeightFormat], progress: bool = True, workdir: PathLike | None = None
                      ) -> PrunedDraft:
    """Prune `depth` layers (the most redundant block) and heal; export the healed draft in every format of `formats`
    and the unhealed one in the first (to show what healing bought)."""
    from .conversion import hf_source
    from .distill import heal
    from .pruning import export_draft, prune_model

    if not formats:
        raise ConfigError("Give at least one OpenVINO weight format for the pruned drafts.")
    folder = work_folder(preset, workdir)
    block = distances.best_block(depth)
    pruned = prune_model(hf_source(preset.draft, workdir), folder / f"draft-pruned{depth}", block, method="angular (last token)")
    healed = heal(pruned.path, data, folder / f"draft-pruned{depth}-healed", plan.heal, progress=progress)
    if healed.action == "stopped":
        raise ConfigError(f"Healing {healed.path} stopped at step {healed.steps_done}; run again to continue.")
    openvino = {}
    for hf_dir, is_healed, weights in [(pruned.path, False, formats[0]), *((healed.path, True, w) for w in formats)]:
        key = draft_key(depth, is_healed, weights)
        openvino[key] = export_draft(hf_dir, weights, folder / "openvino" / key.folder_name).path
    return PrunedDraft(depth=depth, block=block, layers_left=distances.num_layers - depth, pruned_hf=pruned.path,
                       healed_hf=healed.path, openvino=openvino, heal_losses=healed.losses,
                       heal_seconds=healed.train_seconds)


def make_pruned_drafts(preset: Preset, plan: HealingPlan, target_dir: Path, formats: Sequence[WeightFormat],
                       progress: bool = True, workdir: PathLike | None = None) -> list[PrunedDraft]:
    """Every depth of `plan`: data first (shared), distances once, then prune, heal and export each depth."""
    data = distillation_data(preset, plan, target_dir, progress, workdir)
    distances = draft_distances(preset, progress, workdir)
    drafts = [make_pruned_draft(preset, depth, plan, data, distances, formats, progress, workdir) for depth in plan.depths]
    write_json(work_folder(preset, workdir) / "pruned-drafts.json",
               {"plan": plan.describe(), "formats": [w.describe() for w in formats], "drafts": [d.row() for d in drafts]})
    return drafts
