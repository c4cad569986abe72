"""Depth pruning of a draft model (Gromov et al., "The Unreasonable Ineffectiveness of the Deeper Layers", 2403.17887).

1. `angular_distances` measures, on calibration text, how much each block of ``n`` consecutive layers turns the
   hidden state: d(l, n) = arccos(cos(h_l, h_{l+n})) / pi, where h_l enters layer l and h_{l+n} leaves layer l+n-1.
   A block with a small distance barely changes the representation, so removing it costs least.
2. `prune_model` removes a block from a Hugging Face checkpoint, keeps the config and the per-layer attributes
   consistent, saves the result atomically and proves it reloads and generates.
3. `export_draft` and `compare_drafts` turn the drafts into OpenVINO models and measure them, interleaved, as speculative
   decoding assistants of the target (acceptance, cost ratio c, speedup, and the blog formula's prediction).

Healing the pruned draft on the target's answers lives in `helpers.distill`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, ModelFolderError
from .fsutil import atomic_directory, read_json, remove_stale_partials, write_json
from .hf import load_causal_lm, threads_for

if TYPE_CHECKING:
    from .benchmark import BenchmarkResult
    from .conversion import ConversionResult
    from .presets import Preset, WeightFormat
    from .prompts import Prompt

TOKEN_MODES = ("last", "all")
MANIFEST_NAME = "pruning.json"
# Per-layer lists in a transformers config that must shrink with the model (others are derived from these).
PER_LAYER_CONFIG_KEYS = ("layer_types", "mlp_only_layers", "no_rope_layers", "sliding_window_pattern_layers")


@dataclass(frozen=True)
class Block:
    """``size`` consecutive decoder layers starting at ``start`` (0-based)."""

    start: int
    size: int
    distance: float | None = None  # mean angular distance across the block, when measured

    @property
    def layers(self) -> list[int]:
        return list(range(self.start, self.start + self.size))

    def describe(self) -> str:
        span = f"layer {self.start}" if self.size == 1 else f"layers {self.start}-{self.start + self.size - 1}"
        return span if self.distance is None else f"{span} (d={self.distance:.3f})"


def check_block(num_layers: int, start: int, size: int, allow_first: bool = False, allow_last: bool = False) -> Block:
    """Return the block if it can be removed from a model of `num_layers` layers, else raise `ConfigError`."""
    keep_ends = (not allow_first) + (not allow_last)
    if size < 1:
        raise ConfigError(f"Remove at least one layer (got {size}).")
    if size >= num_layers:
        raise ConfigError(f"Cannot remove {size} layers from a model with {num_layers}: at least one must stay.")
    if size > num_layers - keep_ends:
        raise ConfigError(
            f"Removing {size} of {num_layers} layers would remove the first or last layer; at most "
            f"{num_layers - keep_ends} can go while both stay. Remove fewer, or pass allow_first/allow_last "
            "(--allow-first/--allow-last)."
        )
    if start < 0 or start + size > num_layers:
        raise ConfigError(
            f"Block of {size} layer(s) at {start} does not fit in {num_layers} layers (valid starts: 0..{num_layers - size})."
        )
    if start == 0 and not allow_first:
        raise ConfigError("The block includes the first layer (0), which is kept by default: it turns embeddings into "
                          "features and removing it hurts most. Choose a later start or pass allow_first=True.")
    if start + size == num_layers and not allow_last:
        raise ConfigError(f"The block includes the last layer ({num_layers - 1}), which is kept by default (Gromov et al.: "
                          "it matters most). Choose an earlier start or pass allow_last=True.")
    return Block(start, size)


def deepest_block(num_layers: int, size: int) -> Block:
    """The paper's simple baseline: the `size` deepest layers just before the last one."""
    return check_block(num_layers, num_layers - 1 - size, size)


@dataclass
class AngularDistances:
    """d(l, n) for every block size n (rows, 1..max) and start l (columns); None where the block does not fit."""

    matrix: list[list[float | None]]
    num_layers: int
    token_mode: str
    num_texts: int
    num_tokens: int

    @property
    def sizes(self) -> list[int]:
        return list(range(1, len(self.matrix) + 1))

    def distance(self, start: int, size: int) -> float:
        value = self.matrix[size - 1][start] if 1 <= size <= len(self.matrix) and 0 <= start < self.num_layers else None
        if value is None:
            raise ConfigError(f"No distance measured for {size} layer(s) at {start} in a {self.num_layers}-layer model.")
        return value

    def best_block(self, size: int, allow_first: bool = False, allow_last: bool = False) -> Block:
        """The removable block of `size` layers whose input and output hidden states are closest."""
        check_block(self.num_layers, int(not allow_first), size, allow_first, allow_last)  # raises if no block fits
        starts = [s for s in range(self.num_layers - size + 1)
                  if (allow_first or s > 0) and (allow_last or s + size < self.num_layers)]
        start = min(starts, key=lambda s: self.distance(s, size))
        return Block(start, size, self.distance(start, size))

    def best_blocks(self, allow_first: bool = False, allow_last: bool = False) -> list[dict[str, Any]]:
        """One row per block size: the best block, its distance, and the deepest-layers baseline for comparison."""
        rows = []
        for size in self.sizes:
            try:
                best = self.best_block(size, allow_first, allow_last)
            except ConfigError:
                continue
            deep = Block(self.num_layers - 1 - size, size) if self.num_layers - 1 - size >= 1 else None
            rows.append({
                "n (layers removed)": size,
                "best block": best.describe().split(" (")[0],
                "d(best)": best.distance,
                "deepest block": deep.describe() if deep else "-",
                "d(deepest)": self.distance(deep.start, size) if deep else None,
                "layers left": self.num_layers - size,
            })
        return rows

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decoder_layers(model: Any) -> Any:
    """The ``nn.ModuleList`` of decoder layers of a causal LM (Qwen, Llama, Mistral, Phi-3 layout)."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ConfigError(f"{type(model).__name__} has no model.layers: depth pruning here supports decoder-only "
                          "models laid out like Qwen/Llama (model.model.layers).")
    return layers


def angular_distances(
    source: str | Path | Any,
    texts: Sequence[str],
    token_mode: str = "last",
    max_length: int = 256,
    batch_size: int = 8,
    tokenizer: Any = None,
    progress: bool = True,
) -> AngularDistances:
    """Mean angular distance between the hidden state entering layer l and the one leaving layer l+n-1.

    `token_mode` ``last`` uses each text's last real token (as in the paper); ``all`` averages over every token
    that is not padding. Hidden states are captured with hooks on the decoder layers: transformers' own
    ``output_hidden_states`` replaces the last entry with the *normalised* output, which would skew the deepest blocks.
    `source` is a model folder, a hub id, or an already loaded model (then pass `tokenizer`).
    """
    import torch
    from tqdm.auto import tqdm

    if token_mode not in TOKEN_MODES:
        raise ConfigError(f"token_mode must be one of {TOKEN_MODES}, not {token_mode!r}.")
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ConfigError("angular_distances needs at least one non-empty calibration text.")
    if isinstance(source, (str, Path)):
        model, tokenizer = load_causal_lm(source)
    else:
        model = source
        if tokenizer is None:
            raise ConfigError("Pass the tokenizer along with an already loaded model.")
    layers = decoder_layers(model)
    num_layers = len(layers)
    captured: list[Any] = [None] * (num_layers + 1)

    def save_input(module: Any, args: tuple, kwargs: dict) -> None:
        captured[0] = args[0] if args else kwargs["hidden_states"]

    def save_output(index: int) -> Any:
        def hook(module: Any, args: tuple, output: Any) -> None:
            captured[index + 1] = output[0] if isinstance(output, tuple) else output
        return hook

    handles = [layers[0].register_forward_pre_hook(save_input, with_kwargs=True)]
    handles += [layer.register_forward_hook(save_output(i)) for i, layer in enumerate(layers)]
    sums = torch.zeros(num_layers + 1, num_layers + 1, dtype=torch.float64)
    count = 0
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        with torch.no_grad(), threads_for(model):
            for begin in tqdm(range(0, len(texts), batch_size), desc="angular distances", disable=not progress, leave=False):
                batch = tokenizer(list(texts[begin:begin + batch_size]), return_tensors="pt", padding=True,
                                  truncation=True, max_length=max_length)
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
                states = torch.stack(captured, dim=2).float()  # batch, tokens, layers + 1, hidden
                mask = batch["attention_mask"].bool()
                if token_mode == "last":
                    last = mask.sum(dim=1) - 1
                    vectors = states[torch.arange(states.shape[0]), last]  # batch, layers + 1, hidden
                else:
                    vectors = states[mask]  # real tokens, layers + 1, hidden
                unit = torch.nn.functional.normalize(vectors, dim=-1)
                cosine = torch.einsum("tih,tjh->tij", unit, unit).clamp(-1.0, 1.0)
                sums += (torch.arccos(cosine) / math.pi).sum(dim=0).double()
                count += vectors.shape[0]
    finally:
        tokenizer.padding_side = padding_side
        for handle in handles:
            handle.remove()
    mean = (sums / count).tolist()
    matrix = [[mean[start][start + size] if start + size <= num_layers else None for start in range(num_layers)]
              for size in range(1, num_layers)]
    return AngularDistances(matrix=matrix, num_layers=num_layers, token_mode=token_mode, num_texts=len(texts),
                            num_tokens=count)


def remove_block(model: Any, block: Block) -> Any:
    """Delete `block` from a loaded model in place and fix everything that counts layers. Returns the model."""
    import torch

    layers = decoder_layers(model)
    check_block(len(layers), block.start, block.size, allow_first=True, allow_last=True)
    keep = [i for i in range(len(layers)) if i not in block.layers]
    config = model.config
    for key in PER_LAYER_CONFIG_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, list) and len(value) == len(layers):
            setattr(config, key, [value[i] for i in keep])
    model.model.layers = torch.nn.ModuleList([layers[i] for i in keep])
    # The KV cache is indexed by layer_idx: kept layers must be renumbered 0..n-1 or generate() mixes their caches.
    for new_index, layer in enumerate(model.model.layers):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    config.num_hidden_layers = len(keep)
    return model


@dataclass
class PruneResult:
    """What `prune_model` made."""

    path: Path
    source: str
    method: str
    removed: list[int]
    kept: list[int]
    params_before: int
    params_after: int
    distance: float | None
    action: str  # "pruned" or "reused"
    sample: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "model": self.path.name,
            "method": self.method,
            "removed layers": ", ".join(map(str, self.removed)),
            "layers left": len(self.kept),
            "parameters": f"{self.params_after / 1e6:.2f} M ({100 * (1 - self.params_after / self.params_before):.0f}% fewer)",
            "d(block)": self.distance,
            "action": self.action,
        }


def prune_model(
    source: str | Path,
    dest: str | Path,
    block: Block,
    method: str = "manual",
    allow_first: bool = False,
    allow_last: bool = False,
    overwrite: bool = False,
    verify_prompt: str = "def main():",
) -> PruneResult:
    """Remove `block` from the model at `source`, save it (with its tokenizer) to `dest` atomically, and verify it.

    Verification reloads the saved folder, checks its layer count and layer indices, compares its logits with the
    in-memory pruned model, and generates a few tokens. A finished folder for the same source and block is reused.
    """
    import torch

    dest = Path(dest).expanduser().resolve()
    source_id = str(Path(source).expanduser().resolve()) if Path(str(source)).expanduser().exists() else str(source)
    if Path(str(source)).expanduser().exists():
        source_dir = Path(source_id)
        if dest == source_dir or dest in source_dir.parents:
            raise ModelFolderError(f"The pruned model cannot be written to {dest}: replacing it would delete its source "
                                   f"{source_dir}. Choose another --output.")
    remove_stale_partials(dest.parent, dest.name)
    existing = read_json(dest / MANIFEST_NAME) if dest.is_dir() else None
    if existing and not overwrite and existing.get("source") == source_id and existing.get("removed") == block.layers:
        return PruneResult(path=dest, action="reused", **{k: existing[k] for k in (
            "source", "method", "removed", "kept", "params_before", "params_after", "distance", "sample")})
    if dest.exists() and existing is None:  # only a folder stamped with our manifest is ever replaced
        raise ModelFolderError(f"{dest} already exists and was not written by these helpers (no {MANIFEST_NAME}), so it "
                               "is never replaced: choose another destination (--output), or delete it yourself.")
    if dest.exists() and not overwrite:
        raise ModelFolderError(f"{dest} already exists and holds another model. Delete it or pass overwrite=True (--overwrite).")

    model, tokenizer = load_causal_lm(source_id)
    num_layers = len(decoder_layers(model))
    check_block(num_layers, block.start, block.size, allow_first, allow_last)
    params_before = sum(p.numel() for p in model.parameters())
    remove_block(model, block)
    kept = [i for i in range(num_layers) if i not in block.layers]
    probe = tokenizer(verify_prompt, return_tensors="pt")
    with torch.no_grad(), threads_for(model):
        expected_logits = model(**probe).logits
    with atomic_directory(dest, replace=True) as tmp, threads_for(model):
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        sample = verify_pruned(tmp, len(kept), probe, expected_logits, tokenizer)
        result = PruneResult(path=dest, source=source_id, method=method, removed=block.layers, kept=kept,
                             params_before=params_before, params_after=sum(p.numel() for p in model.parameters()),
                             distance=block.distance, action="pruned", sample=sample)
        write_json(tmp / MANIFEST_NAME, {k: v for k, v in asdict(result).items() if k not in ("path", "action", "extra")})
    return result


def verify_pruned(folder: Path, num_layers: int, probe: Any, expected_logits: Any, tokenizer: Any) -> str:
    """Reload a saved pruned model and check it is the model we meant to save; returns a short greedy continuation."""
    import torch
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    layers = decoder_layers(reloaded)
    problems = []
    if len(layers) != num_layers or reloaded.config.num_hidden_layers != num_layers:
        problems.append(f"{len(layers)} layers loaded, config says {reloaded.config.num_hidden_layers}, expected {num_layers}")
    if [layer.self_attn.layer_idx for layer in layers] != list(range(num_layers)):
        problems.append("self_attn.layer_idx is not 0..n-1")
    with torch.no_grad():
        logits = reloaded(**probe).logits
        if not torch.allclose(logits, expected_logits, atol=1e-4):
            problems.append("the reloaded weights do not reproduce the pruned model's logits")
        generated = reloaded.generate(**probe, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    if problems:
        raise ModelFolderError(f"The pruned model saved in {folder} is inconsistent: {'; '.join(problems)}.")
    return tokenizer.decode(generated[0, probe["input_ids"].shape[1]:], skip_special_tokens=True)


# ----------------------------------------------------------------------------------------------------------------------
# OpenVINO export and the speculative-decoding comparison


def draft_weights(preset: Preset, bits: int = 8) -> WeightFormat:
    """How to compress a pruned draft: the preset's draft format for int8 (the blog's choice), or int4."""
    from .presets import WeightFormat

    if bits == 8:
        return preset.draft.weights
    if bits == 4:
        # Group size 128 does not divide every tiny layer; "adjust" picks a smaller group where needed.
        return WeightFormat(bits=4, sym=True, group_size=128, ratio=1.0, group_size_fallback="adjust")
    raise ConfigError(f"Draft weights must be int8 or int4 (bits 8 or 4), not {bits}.")


def export_draft(hf_dir: str | Path, weights: WeightFormat, dest: str | Path | None = None,
                 workdir: str | Path | None = None) -> ConversionResult:
    """Export a (pruned, healed) Hugging Face draft to OpenVINO (default: ``<workdir>/models``); re-exports when the
    checkpoint changed since."""
    from .conversion import MANIFEST_NAME as CONVERSION_MANIFEST
    from .conversion import export_model
    from .paths import models_dir

    hf_dir = Path(hf_dir).expanduser().resolve()
    dest = Path(dest) if dest else models_dir(workdir) / f"{hf_dir.name}-{weights.tag}"
    manifest = dest / CONVERSION_MANIFEST
    weights_files = list(hf_dir.glob("*.safetensors"))
    stale = manifest.is_file() and any(f.stat().st_mtime > manifest.stat().st_mtime for f in weights_files)
    return export_model(hf_dir, dest, weights, role="draft", overwrite=stale)


def compare_drafts(
    target_dir: str | Path,
    drafts: dict[str, str | Path],
    prompts: list[Prompt],
    device: str = "CPU",
    num_assistant_tokens: int = 3,
    max_new_tokens: int = 64,
    repeats: int = 2,
    warmup: int = 1,
    properties: dict[str, Any] | None = None,
    one_draft_at_a_time: bool = False,
) -> BenchmarkResult:
    """Target alone (the baseline) against speculative decoding with each draft, interleaved on the same prompts.

    Candidate labels are ``"<draft label> k=<k>"`` so that `speculative.with_predictions` can add the formula's
    prediction. Every speculative pipeline holds its own copy of the target: by default all are loaded together
    (RAM for len(drafts) + 1 targets); `one_draft_at_a_time` interleaves each draft with the baseline in turn and
    keeps at most two targets in memory (for the 8B target). Every speedup is still a ratio to baseline runs made
    alongside it.
    """
    from .benchmark import BenchmarkResult, Candidate, run_interleaved
    from .generation import generation_config, load_pipeline

    props = properties or {}
    baseline = Candidate("target alone", load_pipeline(target_dir, device, **props), generation_config(max_new_tokens))
    assisted = generation_config(max_new_tokens, num_assistant_tokens=num_assistant_tokens)

    def candidate(label: str, draft: str | Path) -> Candidate:
        pipe = load_pipeline(target_dir, device, draft_dir=draft, **props)
        return Candidate(f"{label} k={num_assistant_tokens}", pipe, assisted)

    if one_draft_at_a_time:
        records = []
        for group, (label, draft) in enumerate(drafts.items()):
            part = run_interleaved([baseline, candidate(label, draft)], prompts, repeats=repeats, warmup=warmup)
            for record in part.records:  # keep (prompt, repeat) pairs unique across groups
                record.repeat += group * repeats
            records += part.records
        result = BenchmarkResult(records=records, baseline=baseline.label, settings=part.settings, machine=part.machine,
                                 peak_rss_mb=part.peak_rss_mb)
    else:
        result = run_interleaved([baseline] + [candidate(k, v) for k, v in drafts.items()], prompts, repeats=repeats,
                                 warmup=warmup)
    result.settings.update({"target": str(target_dir), "drafts": {k: str(v) for k, v in drafts.items()}, "device": device,
                            "one_draft_at_a_time": one_draft_at_a_time})
    return result


def comparison_rows(result: BenchmarkResult) -> list[dict[str, Any]]:
    """The summary rows that matter for drafts: acceptance, c, measured and predicted speedup."""
    from .speculative import with_predictions

    rows = []
    for row in with_predictions(result.summary()):
        rows.append({
            "candidate": row["label"],
            "acceptance": row.get("acceptance_rate"),
            "tokens/step": row.get("tokens_per_step"),
            "c (draft/target cost)": row.get("cost_ratio"),
            "TPOT ms": row["tpot_ms"],
            "speedup": row["speedup"],
            "speedup IQR": f"{row['speedup_lo']:.2f}-{row['speedup_hi']:.2f}" if row.get("acceptance_rate") is not None else "-",
            "predicted": row.get("predicted_speedup"),
        })
    return rows
