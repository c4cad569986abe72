"""A cheaper draft head (FR-Spec, Zhao et al., 2025): project onto the N most frequent tokens only.

A small draft spends a large share of its time in lm_head (151,936 x 896 for Qwen2.5-0.5B). FR-Spec keeps the rows of
the N token ids that the target actually emits most often and ranks only those. OpenVINO GenAI uses the index of a
logit as the token id, so the N logits are scattered into a full-vocabulary row filled with `FILL_VALUE`: ids outside
the subset can never win, ids inside rank exactly as with the full head.

`TrimmedLMHead` replaces ``model.lm_head`` in PyTorch, so the ordinary optimum-intel export traces it (the model is
exported from memory: a saved folder would reload the full head). `genai_gathers_before_lm_head` tells whether the
exported graph still ends the way GenAI's "gather sampled positions before lm_head" transformation looks for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .conversion import read_ir
from .errors import ConfigError, ModelFolderError
from .fsutil import atomic_directory, write_json

if TYPE_CHECKING:
    from .presets import WeightFormat

# Far below any real logit, yet finite in fp16/bf16 (an -inf row would turn into NaN after some softmax kernels).
FILL_VALUE = -1.0e4
SUBSET_FILE = "frspec_tokens.json"
# The op types in front of the output that GenAI's find_llm_matmul accepts (src/cpp/src/utils.cpp, 2026.x):
# MatMul -> Result, MatMul -> Add -> Result, MatMul -> Transpose -> Result, MatMul -> Divide -> Tanh -> Multiply -> Result.
GENAI_LM_HEAD_PATTERNS = ("MatMul", "Add(MatMul)", "Transpose(MatMul)", "Multiply(Tanh(Divide(MatMul)))")


def count_token_frequencies(sequences: Iterable[Sequence[int] | str], tokenizer: Any = None) -> Counter[int]:
    """How often each token id occurs in `sequences` (token-id lists, or texts tokenized with `tokenizer`)."""
    counts: Counter[int] = Counter()
    for item in sequences:
        if isinstance(item, str):
            if tokenizer is None:
                raise ConfigError("Texts need the tokenizer to count tokens: pass tokenizer=..., or token-id lists.")
            item = tokenizer(item, add_special_tokens=False)["input_ids"]
        counts.update(int(i) for i in item)
    return counts


def required_token_ids(tokenizer: Any) -> set[int]:
    """Ids the draft must always be able to propose: special and added tokens, and every id the chat template emits.

    The template is rendered for a system + user + assistant exchange with a tool call, with and without thinking,
    so the markup around turns and tools (``<|im_start|>``, ``<tool_call>``, role names, newlines) is covered.
    """
    ids = set(tokenizer.all_special_ids)
    ids.update(int(i) for i in getattr(tokenizer, "added_tokens_decoder", {}))
    if getattr(tokenizer, "chat_template", None):
        tool = {"type": "function", "function": {"name": "f", "description": "d",
                                                  "parameters": {"type": "object", "properties": {}}}}
        messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                    {"role": "assistant", "content": "a"}]
        for thinking in (False, True):
            for tools in (None, [tool]):
                try:
                    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                                         add_generation_prompt=False, enable_thinking=thinking)
                except Exception:  # a template without tools or thinking: skip that variant
                    continue
                ids.update(tokenizer(text, add_special_tokens=False)["input_ids"])
    return {i for i in ids if i is not None}


def frequent_token_subset(counts: Counter[int], size: int, vocab_size: int, always: Iterable[int] = ()) -> list[int]:
    """The `size` ids to keep, sorted: every id in `always` first, then the most frequent others (ties: lower id)."""
    always = sorted({int(i) for i in always})
    if any(not 0 <= i < vocab_size for i in always):
        raise ConfigError(f"Required token ids must lie in 0..{vocab_size - 1}; check the tokenizer matches the model.")
    if not len(always) <= size <= vocab_size:
        raise ConfigError(f"The subset size must be between {len(always)} (the required ids) and {vocab_size} (the "
                          f"vocabulary), got {size}.")
    chosen = set(always)
    ranked = sorted((i for i in counts if 0 <= i < vocab_size and i not in chosen), key=lambda i: (-counts[i], i))
    chosen.update(ranked[:size - len(chosen)])
    # Pad with the lowest unseen ids so the head has exactly `size` rows whatever the counts (byte tokens come first).
    pad = (i for i in range(vocab_size) if i not in chosen)
    while len(chosen) < size:
        chosen.add(next(pad))
    return sorted(chosen)


def _trimmed_head_class() -> Any:
    import torch

    class TrimmedLMHead(torch.nn.Module):
        """lm_head restricted to `token_ids`, scattered into a full row of `vocab_size` logits filled with FILL_VALUE."""

        def __init__(self, weight: torch.Tensor, token_ids: torch.Tensor, vocab_size: int,
                     fill_value: float = FILL_VALUE) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(weight.detach().clone())
            self.register_buffer("token_ids", token_ids.to(torch.long).clone())
            self.vocab_size = vocab_size
            self.fill_value = fill_value
            self.in_features, self.out_features = weight.shape[1], vocab_size

        def forward(self, hidden: torch.Tensor) -> torch.Tensor:
            subset = torch.nn.functional.linear(hidden, self.weight)
            full = torch.full((*hidden.shape[:-1], self.vocab_size), self.fill_value, dtype=subset.dtype,
                              device=subset.device)
            return full.index_copy(-1, self.token_ids, subset)

    return TrimmedLMHead


def trimmed_head(lm_head: Any, token_ids: Sequence[int], vocab_size: int | None = None) -> Any:
    """A `TrimmedLMHead` with the rows of `lm_head` for `token_ids` (copied: a tied embedding stays untouched)."""
    import torch

    weight = lm_head.weight
    vocab_size = vocab_size or weight.shape[0]
    ids = torch.tensor(sorted(set(int(i) for i in token_ids)), dtype=torch.long)
    if len(ids) == 0 or int(ids.max()) >= weight.shape[0] or int(ids.min()) < 0:
        raise ConfigError(f"Token ids must be a non-empty subset of 0..{weight.shape[0] - 1}.")
    if getattr(lm_head, "bias", None) is not None:
        raise ConfigError("This lm_head has a bias; the trimmed head supports bias-free heads (Qwen, Llama) only.")
    return _trimmed_head_class()(weight[ids], ids, vocab_size)


def trim_lm_head(model: Any, token_ids: Sequence[int]) -> Any:
    """Replace `model`'s lm_head by a trimmed one, in place (unties it from the embeddings); returns the model."""
    head = trimmed_head(model.get_output_embeddings(), token_ids, model.config.vocab_size)
    model.config.tie_word_embeddings = False
    if hasattr(model, "_tied_weights_keys"):
        model._tied_weights_keys = {} if isinstance(model._tied_weights_keys, dict) else []
    model.lm_head = head
    return model


def export_trimmed_draft(hf_dir: str | Path, token_ids: Sequence[int], dest: str | Path,
                         weights: WeightFormat | None = None) -> Path:
    """Export the draft at `hf_dir` with a trimmed lm_head to an OpenVINO folder usable as a GenAI draft_model.

    The model is exported from memory (optimum-intel's ``export_from_model``), then compressed with NNCF when
    `weights` asks for int8/int4; the tokenizers and the token subset (``frspec_tokens.json``) go alongside.
    """
    import openvino as ov
    import torch
    from optimum.exporters.openvino import export_from_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .conversion import _quiet_tracing, save_openvino_tokenizers
    from .hf import check_hf_model_dir

    hf_dir = check_hf_model_dir(hf_dir)
    dest = Path(dest).expanduser().resolve()
    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    trim_lm_head(model, token_ids)
    with atomic_directory(dest, replace=True) as tmp, _quiet_tracing():
        export_from_model(model, tmp, task="text-generation-with-past", stateful=True)
        if weights is not None and weights.bits in (4, 8):
            import nncf

            xml = tmp / "openvino_model.xml"
            core = ov.Core()
            compressed = nncf.compress_weights(read_ir(xml, core), **nncf_arguments(weights))
            ov.save_model(compressed, tmp / "compressed.xml")
            del compressed
            for suffix in (".xml", ".bin"):
                (tmp / f"compressed{suffix}").replace(tmp / f"openvino_model{suffix}")
        tokenizer.save_pretrained(tmp)
        save_openvino_tokenizers(tokenizer, tmp)
        write_json(tmp / SUBSET_FILE, {"source": str(hf_dir), "vocab_size": model.config.vocab_size,
                                       "fill_value": FILL_VALUE, "token_ids": sorted(set(int(i) for i in token_ids))})
    return dest


def nncf_arguments(weights: WeightFormat) -> dict[str, Any]:
    """``nncf.compress_weights`` keywords for `weights` (what optimum-intel passes for the same format), e.g.
    ``{"mode": CompressWeightsMode.INT8_ASYM}`` for int8."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedCompressionParameters

    if weights.bits == 8:
        return {"mode": nncf.CompressWeightsMode.INT8_SYM if weights.sym else nncf.CompressWeightsMode.INT8_ASYM}
    kwargs: dict[str, Any] = {"mode": nncf.CompressWeightsMode.INT4_SYM if weights.sym else nncf.CompressWeightsMode.INT4_ASYM,
                              "group_size": weights.group_size or 128, "ratio": weights.ratio}
    if weights.group_size_fallback:
        kwargs["advanced_parameters"] = AdvancedCompressionParameters(
            group_size_fallback_mode=nncf.GroupSizeFallbackMode(weights.group_size_fallback))
    return kwargs


def output_producer(model_xml: str | Path) -> list[str]:
    """Op types from the first output backwards (up to 4), e.g. ``["ScatterUpdate", "MatMul", ...]``."""
    path = Path(model_xml)
    path = path / "openvino_model.xml" if path.is_dir() else path
    if not path.is_file():
        raise ModelFolderError(f"{path} does not exist; pass an OpenVINO model folder or its openvino_model.xml.")
    node = read_ir(path).output(0).get_node().input_value(0).get_node()
    chain = []
    for _ in range(4):
        chain.append(node.get_type_name())
        if node.get_input_size() == 0:
            break
        node = node.input_value(0).get_node()
    return chain


def genai_gathers_before_lm_head(model_xml: str | Path) -> bool:
    """True if GenAI's find_llm_matmul would find the lm_head MatMul of this IR (so it projects sampled positions only).

    Mirrors the patterns in `GENAI_LM_HEAD_PATTERNS`, read from openvino.genai's ``utils.cpp``.
    """
    chain = output_producer(model_xml)
    if chain[0] == "MatMul":
        return True
    if chain[0] in ("Add", "Transpose"):
        return len(chain) > 1 and chain[1] == "MatMul"
    return chain[:4] == ["Multiply", "Tanh", "Divide", "MatMul"]


def add_sampled_tokens_gather(model_dir: str | Path) -> None:
    """Edit an exported trimmed draft so only the positions GenAI samples go through the trimmed head (in place).

    GenAI's own transformation cannot see past the scatter (`genai_gathers_before_lm_head` is False), but its
    continuous-batching runner fills any model input named ``sampled_tokens_indices`` (flat token indices). So this
    inserts that Parameter and a Gather on the flattened hidden states before the trimmed MatMul, and rebuilds the
    scatter for the gathered rows: logits come out as [sampled, 1, vocabulary], the shape GenAI's transformation gives.
    The edited IR then needs that input, so it is for use as a GenAI draft only (GenAI always runs drafts with
    continuous batching).
    """
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    model_dir = Path(model_dir)
    xml = model_dir / "openvino_model.xml"
    if not xml.is_file():
        raise ModelFolderError(f"{xml} does not exist; pass the folder written by export_trimmed_draft.")
    model = read_ir(xml)
    if any("sampled_tokens_indices" in port.get_names() for port in model.inputs):
        return  # already edited
    result = model.output(0).get_node()
    scatter = result.input_value(0).get_node()
    matmul = scatter.input_value(2).get_node()
    if scatter.get_type_name() != "ScatterElementsUpdate" or matmul.get_type_name() != "MatMul":
        raise ModelFolderError(f"{xml} does not end in the trimmed head's MatMul -> ScatterElementsUpdate; export it "
                               "with export_trimmed_draft first.")
    hidden = matmul.input_value(0)
    hidden_size = hidden.get_partial_shape()[2].get_length()
    token_ids = scatter.input_value(1).get_node().input_value(0)  # Broadcast(token_ids, ShapeOf(matmul))
    fill = scatter.input_value(0).get_node().input_value(0)  # Broadcast(fill value, full shape)
    vocab_size = scatter.get_output_partial_shape(0)[2].get_length()
    attrs = matmul.get_attributes()

    indices = ops.parameter([-1], ov.Type.i64, name="sampled_tokens_indices")
    indices.output(0).get_tensor().set_names({"sampled_tokens_indices"})
    flat = ops.reshape(hidden, ops.constant(np.array([-1, hidden_size], dtype=np.int64)), special_zero=False)
    rows = ops.unsqueeze(ops.gather(flat, indices, ops.constant(np.int64(0))), ops.constant(np.array([1], np.int64)))
    logits = ops.matmul(rows, matmul.input_value(1), attrs["transpose_a"], attrs["transpose_b"])
    shape = ops.shape_of(logits, output_type="i64")
    full_shape = ops.concat([ops.gather(shape, ops.constant(np.array([0, 1], np.int64)), ops.constant(np.int64(0))),
                             ops.constant(np.array([vocab_size], np.int64))], axis=0)
    full = ops.scatter_elements_update(ops.broadcast(fill, full_shape), ops.broadcast(token_ids, shape), logits,
                                       ops.constant(np.int64(-1)))
    names = result.input_value(0).get_names()
    result.input(0).replace_source_output(full.output(0))
    full.output(0).get_tensor().set_names(names)
    model.add_parameters([indices])
    model.validate_nodes_and_infer_types()
    ov.save_model(model, model_dir / "gathered.xml", compress_to_fp16=False)
    del model
    for suffix in (".xml", ".bin"):
        (model_dir / f"gathered{suffix}").replace(model_dir / f"openvino_model{suffix}")
