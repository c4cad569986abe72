"""Training-free repair of a depth-pruned draft (ReplaceMe, Shopkhoev et al., 2025).

Removing the block of layers [i, i+n) makes the hidden state that left layer i-1 (h_i) stand in for the one that left
layer i+n-1 (y). ReplaceMe replaces the block by one linear map T applied to the MLP output m of layer i-1:

    h_i = a + m            (a: the residual stream after layer i-1's attention)
    y  ~= a + m @ T        T = argmin ||(y - a) - m T||^2 + ridge ||T - I||^2 (T = I is plain pruning)

fitted by least squares on calibration text (only the hidden x hidden Gram matrices are accumulated, so memory does
not grow with the number of tokens). T is then folded into layer i-1's ``mlp.down_proj``: m = z W^T (torch Linear,
W is hidden x intermediate), so m T = z (T^T W)^T and the new weight is W' = T^T W (bias b' = T^T b). The repaired
model has no extra layer and exports through the ordinary optimum path.

A block that starts at layer 0 has no MLP before it: the map would have to go into the embeddings, which Qwen ties to
lm_head, so `repair_pruned_model` refuses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelFolderError
from .fsutil import atomic_directory, read_json, remove_stale_partials, write_json
from .hf import load_causal_lm, threads_for
from .pruning import Block, check_block, decoder_layers, remove_block, verify_pruned

MANIFEST_NAME = "replaceme.json"
DEFAULT_RIDGE = 1e-3  # relative to the mean diagonal of m^T m: keeps T near I where calibration says little


@dataclass
class BlockStatistics:
    """Sums over calibration tokens (float64): m^T m, m^T r and r^T r, with r = y - a the change T must reproduce."""

    mtm: Any  # hidden x hidden
    mtr: Any  # hidden x hidden
    rtr: float
    tokens: int

    def error(self, transform: Any) -> float:
        """Mean squared error per token of a + m T against y (T = identity: plain pruning)."""
        fit = (transform.T @ self.mtr).trace() * -2 + (transform.T @ self.mtm @ transform).trace()
        return float((self.rtr + fit) / self.tokens)


def _output_tensor(output: Any) -> Any:
    return output[0] if isinstance(output, tuple) else output


def collect_block_statistics(model: Any, block: Block, batches: Iterable[dict[str, Any]]) -> BlockStatistics:
    """Run `batches` (``input_ids`` + ``attention_mask``) through `model` and accumulate what `fit_linear_map` needs.

    Hooks capture the MLP output of layer ``block.start - 1`` (m), that layer's output (h_i = a + m) and the output of
    the block's last layer (y); padding tokens are left out.
    """
    import torch

    layers = decoder_layers(model)
    if block.start < 1:
        raise ConfigError("A block starting at layer 0 has no MLP before it to fold the linear map into; choose a start "
                          ">= 1 (pruning keeps layer 0 by default).")
    check_block(len(layers), block.start, block.size, allow_first=False, allow_last=True)
    before, last = layers[block.start - 1], layers[block.start + block.size - 1]
    seen: dict[str, Any] = {}
    handles = [
        before.mlp.register_forward_hook(lambda mod, args, out: seen.__setitem__("m", _output_tensor(out))),
        before.register_forward_hook(lambda mod, args, out: seen.__setitem__("h", _output_tensor(out))),
        last.register_forward_hook(lambda mod, args, out: seen.__setitem__("y", _output_tensor(out))),
    ]
    hidden = model.config.hidden_size
    mtm = torch.zeros(hidden, hidden, dtype=torch.float64)
    mtr = torch.zeros(hidden, hidden, dtype=torch.float64)
    rtr, tokens = 0.0, 0
    try:
        with torch.no_grad(), threads_for(model):
            for batch in batches:
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
                keep = batch["attention_mask"].bool()
                m, h, y = (seen[k][keep].double() for k in ("m", "h", "y"))
                r = y - (h - m)
                mtm += m.T @ m
                mtr += m.T @ r
                rtr += float((r * r).sum())
                tokens += int(keep.sum())
    finally:
        for handle in handles:
            handle.remove()
    if tokens == 0:
        raise ConfigError("The calibration batches hold no real token; pass at least one non-empty text.")
    return BlockStatistics(mtm=mtm, mtr=mtr, rtr=rtr, tokens=tokens)


def fit_linear_map(stats: BlockStatistics, ridge: float = DEFAULT_RIDGE) -> Any:
    """T (hidden x hidden, float32) minimising ||r - m T||^2 + lambda ||T - I||^2, lambda = ridge * mean diag(m^T m).

    Shrinking towards I rather than 0 means a direction the calibration text never excites keeps plain pruning's
    behaviour instead of being zeroed.
    """
    import torch

    if ridge < 0:
        raise ConfigError(f"ridge must be >= 0, got {ridge}.")
    eye = torch.eye(stats.mtm.shape[0], dtype=torch.float64)
    lam = ridge * float(stats.mtm.diagonal().mean()) + 1e-12
    transform = torch.linalg.solve(stats.mtm + lam * eye, stats.mtr + lam * eye)
    return transform.float()


def fold_into_down_proj(layer: Any, transform: Any) -> None:
    """Make `layer`'s MLP output m T instead of m, in place: W' = T^T W and b' = T^T b for ``mlp.down_proj``."""
    import torch

    down = layer.mlp.down_proj
    with torch.no_grad():
        t = transform.to(dtype=torch.float64)
        down.weight.copy_((t.T @ down.weight.double()).to(down.weight.dtype))
        if down.bias is not None:
            down.bias.copy_((t.T @ down.bias.double()).to(down.bias.dtype))


def token_batches(tokenizer: Any, texts: Sequence[str], max_length: int = 256, batch_size: int = 8) -> list[dict[str, Any]]:
    """Right-padded ``input_ids``/``attention_mask`` batches of the non-empty `texts`."""
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ConfigError("ReplaceMe needs at least one non-empty calibration text.")
    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    try:
        return [dict(tokenizer(list(texts[b:b + batch_size]), return_tensors="pt", padding=True, truncation=True,
                               max_length=max_length)) for b in range(0, len(texts), batch_size)]
    finally:
        tokenizer.padding_side = side


def repair_block(model: Any, block: Block, batches: Sequence[dict[str, Any]], ridge: float = DEFAULT_RIDGE
                 ) -> dict[str, float]:
    """Fit T for `block`, fold it into the layer before, and remove the block, in place; returns calibration errors."""
    stats = collect_block_statistics(model, block, batches)
    transform = fit_linear_map(stats, ridge)
    import torch

    errors = {"mse_pruned": stats.error(torch.eye(transform.shape[0], dtype=torch.float64)),
              "mse_repaired": stats.error(transform.double()), "calibration_tokens": stats.tokens}
    fold_into_down_proj(decoder_layers(model)[block.start - 1], transform)
    remove_block(model, block)
    return errors


@dataclass
class RepairResult:
    """What `repair_pruned_model` made; errors are mean squared hidden-state errors on the calibration tokens."""

    path: Path
    source: str
    removed: list[int]
    kept: list[int]
    ridge: float
    calibration_texts: int
    calibration_tokens: int
    mse_pruned: float  # y vs h_i: what plain pruning leaves
    mse_repaired: float  # y vs a + m T
    action: str  # "repaired" or "reused"


def repair_pruned_model(source: str | Path, dest: str | Path, block: Block, texts: Sequence[str],
                        ridge: float = DEFAULT_RIDGE, max_length: int = 256, batch_size: int = 8,
                        allow_last: bool = False, overwrite: bool = False) -> RepairResult:
    """Remove `block` from the checkpoint at `source` with a ReplaceMe map folded into the layer before it.

    Saves model + tokenizer to `dest` atomically with a ``replaceme.json`` manifest, after checking the saved folder
    reloads to the same logits; a finished folder for the same source, block and settings is reused.
    """
    import torch

    dest = Path(dest).expanduser().resolve()
    source_id = str(Path(source).expanduser().resolve())
    settings = {"source": source_id, "removed": block.layers, "ridge": ridge, "max_length": max_length,
                "calibration_texts": len(texts)}
    remove_stale_partials(dest.parent, dest.name)
    existing = read_json(dest / MANIFEST_NAME) if dest.is_dir() else None
    if existing and not overwrite and all(existing.get(k) == v for k, v in settings.items()):
        return RepairResult(path=dest, action="reused", **{k: existing[k] for k in (
            "source", "removed", "kept", "ridge", "calibration_texts", "calibration_tokens", "mse_pruned", "mse_repaired")})
    if dest.exists() and not overwrite:
        raise ModelFolderError(f"{dest} already exists and holds another model. Delete it or pass overwrite=True.")
    model, tokenizer = load_causal_lm(source)
    num_layers = len(decoder_layers(model))
    if block.start == 0:
        raise ConfigError("ReplaceMe folds its map into the MLP of the layer before the block, and layer 0 has none: "
                          "choose a block that starts at layer 1 or later.")
    check_block(num_layers, block.start, block.size, allow_first=False, allow_last=allow_last)
    errors = repair_block(model, block, token_batches(tokenizer, texts, max_length, batch_size), ridge)
    kept = [i for i in range(num_layers) if i not in block.layers]
    probe = tokenizer("def main():", return_tensors="pt")
    with torch.no_grad(), threads_for(model):
        expected = model(**probe).logits
    with atomic_directory(dest, replace=True) as tmp, threads_for(model):
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        verify_pruned(tmp, len(kept), probe, expected, tokenizer)
        result = RepairResult(path=dest, source=source_id, removed=block.layers, kept=kept, ridge=ridge,
                              calibration_texts=len(texts), calibration_tokens=int(errors["calibration_tokens"]),
                              mse_pruned=errors["mse_pruned"], mse_repaired=errors["mse_repaired"], action="repaired")
        write_json(tmp / MANIFEST_NAME, {**{k: v for k, v in asdict(result).items() if k not in ("path", "action")},
                                         "max_length": max_length})
    return result


def top1_agreement(reference: Any, model: Any, batches: Iterable[dict[str, Any]]) -> float:
    """Share of real tokens where `model`'s greedy next token equals `reference`'s (teacher forcing, no export)."""
    import torch

    hits = total = 0
    with torch.no_grad(), threads_for(model):
        for batch in batches:
            keep = batch["attention_mask"].bool()
            ref = reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[keep]
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[keep]
            hits += int((ref.argmax(-1) == out.argmax(-1)).sum())
            total += int(keep.sum())
    return hits / total
