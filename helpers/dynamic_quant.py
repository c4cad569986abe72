"""Dynamic quantization (DQ) of MatMul activations: settings, device defaults, and proof that it is applied.

OpenVINO can quantize the *input activations* of a MatMul to int8 on the fly, in groups along the innermost axis,
so that an int4/int8-weight layer runs as an integer GEMM. The knob is the compile property
``DYNAMIC_QUANTIZATION_GROUP_SIZE`` (``ov::hint::dynamic_quantization_group_size``): ``0`` turns it off, a positive
number sets the group size. Intel GPUs with XMX engines use it by default, but only for inputs longer than 64 tokens;
the CPU plugin has it too (default group 32 on the machines we tried).

"Configured" is not "applied": a plugin silently skips DQ where a layer does not fit (uncompressed weights, a group size
that does not match the layer). This module checks what really happens:

- on GPU, the runtime (execution) graph gains ``dynamic_quantize`` nodes (`count_dq_nodes`);
- on CPU the runtime graph looks the same either way, so `fingerprint` compares logits: runs are bit-identical between
  compilations, so any difference between two group sizes can only come from DQ.
"""

from __future__ import annotations

import numbers
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .benchmark import quartiles
from .conversion import read_ir
from .errors import ConfigError, DeviceError, ModelFolderError

PROPERTY = "DYNAMIC_QUANTIZATION_GROUP_SIZE"
# OPTIMIZATION_CAPABILITIES entry of GPUs with XMX (systolic matrix) engines, i.e. openvino.properties.intel_gpu.
# CapabilityGPU.HW_MATMUL. OpenVINO exposes no such flag for CPUs (their AMX/VNNI units are used automatically).
GPU_XMX_CAPABILITY = "GPU_HW_MATMUL"
GPU_MIN_TOKENS = 64  # the GPU plugin skips DQ for inputs of this many tokens or fewer (seed 003)
DEFAULT_GROUP_SIZES = (0, 32, 64, 128, 256)
# The defaults that decide how a compressed LLM layer really runs.
DEFAULT_PROPERTIES = (PROPERTY, "INFERENCE_PRECISION_HINT", "KV_CACHE_PRECISION")
OFF = 0


# --------------------------------------------------------------------------------------------------------------------
# Settings and device properties


LARGEST_GROUP_SIZE = 2**31 - 1


def check_group_size(value: object) -> int:
    """Return `value` as a DQ group size (an int >= 0), else raise `ConfigError` saying what is allowed.

    OpenVINO itself would turn -1 into 2**64-1 and 1.5 into 1 without a word, so we refuse them here.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(
            f"{PROPERTY} must be a whole number, got {value!r} ({type(value).__name__}). "
            "Use 0 to turn dynamic quantization off, or a group size such as 32, 64, 128 or 256."
        )
    if value < 0:
        raise ConfigError(
            f"{PROPERTY} cannot be negative, got {value}. Use 0 to turn dynamic quantization off, "
            "or a positive group size such as 32, 64, 128 or 256."
        )
    if value > LARGEST_GROUP_SIZE:
        raise ConfigError(f"{PROPERTY} must be at most {LARGEST_GROUP_SIZE:,} (OpenVINO takes it as a C++ integer), "
                          f"got {value:,}. Use a group size such as 32, 64, 128 or 256.")
    return int(value)


def dq_properties(group_size: int | None) -> dict[str, int]:
    """Compile properties for one setting: ``{}`` keeps the device default, else ``{PROPERTY: group_size}``."""
    return {} if group_size is None else {PROPERTY: check_group_size(group_size)}


def setting_label(group_size: int | None, device_value: int | None = None) -> str:
    """``default (32)``, ``0 (off)`` or ``64``: how a setting appears in tables."""
    if group_size is None:
        return f"default ({device_value})" if device_value is not None else "default"
    return "0 (off)" if group_size == OFF else str(group_size)


def settings_for(group_sizes: Iterable[int]) -> list[int | None]:
    """The settings to compare: the device default (None), DQ off (0), then each group size once, validated."""
    sizes = [check_group_size(g) for g in group_sizes]
    return [None, OFF, *dict.fromkeys(g for g in sizes if g != OFF)]


def _plain(value: Any) -> Any:
    """OpenVINO property values (element types, lists) as plain printable data."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    name = getattr(value, "get_type_name", None)
    return name() if callable(name) else str(value)


def supported_properties(device: str) -> set[str]:
    """Property names the device accepts (its SUPPORTED_PROPERTIES)."""
    import openvino as ov

    from .devices import check_device

    return {str(p) for p in ov.Core().get_property(check_device(device), "SUPPORTED_PROPERTIES")}


def check_properties(device: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """Validate compile `properties` for `device` before OpenVINO sees them.

    Raises `DeviceError` for a property the device does not support (e.g. DQ on an NPU) and `ConfigError` for a bad
    DQ group size. Virtual devices (AUTO, HETERO, MULTI) are passed through: they forward properties to others.
    """
    properties = dict(properties)
    if PROPERTY in properties:
        properties[PROPERTY] = check_group_size(properties[PROPERTY])
    base = device.strip().upper().split(":")[0].split(".")[0]
    if base in ("AUTO", "HETERO", "MULTI", "BATCH"):
        return properties
    supported = supported_properties(device)
    unknown = [name for name in properties if name not in supported]
    miscased = {name: name.upper() for name in unknown if name.upper() in supported}
    if miscased:
        raise DeviceError(
            "Property names are case-sensitive: "
            + ", ".join(f"use {right!r}, not {wrong!r}" for wrong, right in miscased.items())
            + " (in C++, ov::hint::dynamic_quantization_group_size(n) spells it for you)."
        )
    if unknown:
        raise DeviceError(
            f"Device {device} does not support {', '.join(unknown)}. Remove it from the properties, or use a device "
            f"that lists it (python -c \"import openvino as ov; print(ov.Core().get_property('{device}', "
            "'SUPPORTED_PROPERTIES'))\")."
        )
    return properties


def has_xmx(device: str) -> bool | None:
    """True/False for GPUs (does OPTIMIZATION_CAPABILITIES list GPU_HW_MATMUL?); None where OpenVINO does not say."""
    import openvino as ov

    if not device.upper().startswith("GPU"):
        return None
    capabilities = [str(c) for c in ov.Core().get_property(device, "OPTIMIZATION_CAPABILITIES")]
    return GPU_XMX_CAPABILITY in capabilities


def device_defaults(devices: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """One row per device: the DQ group size, inference precision and KV-cache precision it uses by default."""
    import openvino as ov

    core = ov.Core()
    names = list(devices) if devices is not None else list(core.available_devices)
    rows = []
    for name in names:
        supported = {str(p) for p in core.get_property(name, "SUPPORTED_PROPERTIES")}
        row: dict[str, Any] = {"device": name, "full name": str(core.get_property(name, "FULL_DEVICE_NAME"))}
        for prop in DEFAULT_PROPERTIES:
            row[prop] = _plain(core.get_property(name, prop)) if prop in supported else "not supported"
        xmx = has_xmx(name)
        row["XMX (GPU_HW_MATMUL)"] = "n/a (not a GPU)" if xmx is None else ("yes" if xmx else "no")
        row["OPTIMIZATION_CAPABILITIES"] = ", ".join(str(c) for c in core.get_property(name, "OPTIMIZATION_CAPABILITIES"))
        rows.append(row)
    return rows


def default_group_size(device: str) -> int | None:
    """The device's own DQ group size (None if it has no such property)."""
    import openvino as ov

    if PROPERTY not in supported_properties(device):
        return None
    return int(ov.Core().get_property(device, PROPERTY))


def fake_quantize(activations: Any, group_size: int) -> Any:
    """What DQ does to activations, in numpy: int8 per group of `group_size` along the last axis, then back to float.

    Each group's min and max give a scale and zero point (asymmetric, 256 levels); 0 returns the input unchanged.
    Only for teaching: the plugins do this inside their kernels.
    """
    import numpy as np

    x = np.asarray(activations, dtype=np.float32)
    group_size = check_group_size(group_size)
    if group_size == OFF:
        return x.copy()
    width = x.shape[-1]
    size = min(group_size, width)
    if width % size:
        raise ConfigError(f"The last axis ({width}) must split into groups of {size}; pick a divisor of {width}.")
    groups = x.reshape(*x.shape[:-1], width // size, size)
    low, high = groups.min(-1, keepdims=True), groups.max(-1, keepdims=True)
    scale = np.where(high > low, (high - low) / 255.0, 1.0)
    codes = np.clip(np.round((groups - low) / scale), 0, 255)
    return (codes * scale + low).reshape(x.shape)


def quantization_error(activations: Any, group_sizes: Iterable[int]) -> list[dict[str, Any]]:
    """Rows of max and mean |x - fake_quantize(x, g)| for each group size: smaller groups, smaller error."""
    import numpy as np

    x = np.asarray(activations, dtype=np.float32)
    rows = []
    for group_size in group_sizes:
        error = np.abs(fake_quantize(x, group_size) - x)
        groups = 0 if group_size == OFF else x.size // min(group_size, x.shape[-1])
        rows.append({"group size": setting_label(group_size), "scales per row": groups // max(x.size // x.shape[-1], 1),
                     "max error": float(error.max()), "mean error": float(error.mean())})
    return rows


# --------------------------------------------------------------------------------------------------------------------
# Compiling one IR directly


def _model_xml(model_dir: str | Path) -> Path:
    from .conversion import MODEL_FILES, check_ov_model_dir

    return check_ov_model_dir(model_dir, require_tokenizer=False) / MODEL_FILES[0]


def compile_ir(model: Any, device: str, properties: Mapping[str, Any]) -> Any:
    """``ov.Core().compile_model`` with properties checked first and OpenVINO's refusals turned into `DeviceError`."""
    import openvino as ov

    properties = check_properties(device, properties)
    try:
        return ov.Core().compile_model(model, device, properties)
    except RuntimeError as exc:
        if "Unsupported property" in str(exc) or "Wrong value for property" in str(exc):
            line = next((s for s in str(exc).splitlines() if "property" in s.lower()), str(exc))
            raise DeviceError(f"{device} refused {properties}: {line.strip()} Remove or fix that property.") from exc
        raise


def count_dq_nodes(compiled: Any) -> int:
    """Number of ``dynamic_quantize`` nodes in a compiled model's runtime (execution) graph.

    The GPU plugin inserts one before each MatMul it quantizes (type in rt_info ``layerType``); the CPU plugin does the
    quantization inside its FullyConnected kernel, so on CPU this is 0 whether DQ is on or off.
    """
    count = 0
    for node in compiled.get_runtime_model().get_ops():
        info = node.get_rt_info()
        layer_type = info["layerType"].astype(str) if "layerType" in info else ""
        names = (layer_type, node.get_type_name(), node.get_friendly_name())
        if any("dynamicquantize" in n.lower().replace("_", "") for n in names):
            count += 1
    return count


def runtime_graph_check(model_dirs: Mapping[str, str | Path], device: str, group_sizes: Iterable[int] = (0, 64)
                        ) -> list[dict[str, Any]]:
    """Compile each model with each setting and count ``dynamic_quantize`` nodes in the runtime graph."""
    import openvino as ov

    core = ov.Core()
    rows = []
    for label, model_dir in model_dirs.items():
        model = read_ir(_model_xml(model_dir), core)
        for group_size in settings_for(group_sizes):
            compiled = compile_ir(model, device, dq_properties(group_size))
            device_value = _compiled_group_size(compiled)
            layer_types = {n.get_rt_info()["layerType"].astype(str) for n in compiled.get_runtime_model().get_ops()
                           if "layerType" in n.get_rt_info()}
            rows.append({"model": label, "device": device, "setting": setting_label(group_size, device_value),
                         "dynamic_quantize nodes": count_dq_nodes(compiled), "layer types": len(layer_types)})
            del compiled
    return rows


def _compiled_group_size(compiled: Any) -> int | None:
    try:
        return int(compiled.get_property(PROPERTY))
    except RuntimeError:
        return None


# --------------------------------------------------------------------------------------------------------------------
# The numeric fingerprint


def uncompressed_control(overwrite: bool = False, workdir: str | Path | None = None) -> Path:
    """The tiny target exported without weight compression: DQ can never apply to it, so its logits never change.

    It checks the method, not a model, which is why every preset uses the same one. Raises `ModelFolderError` if the
    export holds any int8/int4 weights (then it would not be a control).
    """
    from .conversion import export_model, weight_precisions
    from .paths import models_dir
    from .presets import WeightFormat
    from .tiny import build_tiny_pair

    pair = build_tiny_pair(workdir)
    result = export_model(pair.target, models_dir(workdir) / "tiny-target-fp16", WeightFormat(bits=16), role="control",
                          overwrite=overwrite, source_id=f"tiny:target@{pair.key}")
    compressed = {k for k in weight_precisions(result.path) if k not in ("f32", "f16", "bf16")}
    if compressed:
        raise ModelFolderError(f"{result.path} should hold uncompressed weights but has {sorted(compressed)}: "
                               "delete it and run again.")
    return result.path


def weights_summary(model_dir: str | Path) -> str:
    """The weight precisions of an IR as shares, e.g. ``i4 69%, u8 31%`` (scales and zero points excluded)."""
    from .conversion import weight_precisions

    counts = weight_precisions(model_dir)
    total = sum(counts.values()) or 1
    return ", ".join(f"{kind} {100 * n / total:.0f}%" for kind, n in counts.items() if n / total >= 0.01)


def fixed_inputs(model: Any, length: int, seed: int = 0, start: int = 0, token_ids: Sequence[int] | None = None
                 ) -> dict[str, Any]:
    """Inputs for one forward pass of a stateful optimum-exported LLM: `length` token ids at positions `start`..."""
    import numpy as np

    names = {i.get_any_name() for i in model.inputs}
    needed = {"input_ids", "attention_mask", "position_ids"}
    if not needed <= names or any(n.startswith("past_key_values") for n in names):
        raise ModelFolderError(
            f"Expected a stateful LLM with inputs {sorted(needed)} (+ beam_idx); this IR has {sorted(names)}. "
            "Export it with optimum-intel (task text-generation-with-past), as conversion.export_model does."
        )
    if token_ids is None:
        vocab = model.output(0).get_partial_shape()[-1].get_length()
        token_ids = np.random.default_rng(seed).integers(0, vocab, size=length)
    ids = np.asarray(token_ids, dtype=np.int64).reshape(1, -1)
    inputs = {
        "input_ids": ids,
        "attention_mask": np.ones((1, start + ids.shape[1]), dtype=np.int64),
        "position_ids": np.arange(start, start + ids.shape[1], dtype=np.int64).reshape(1, -1),
    }
    if "beam_idx" in names:
        inputs["beam_idx"] = np.zeros(1, dtype=np.int32)
    return inputs


def forward_logits(compiled: Any, model: Any, lengths: Sequence[int], seed: int = 0, keep: int = 8) -> dict[str, Any]:
    """Logits for a fixed random prompt of each length (last `keep` positions), then for one decode step after it.

    Keys are ``prefill N`` and ``decode after N``; a fresh request per length, so no state leaks between them.
    """
    outputs: dict[str, Any] = {}
    for length in lengths:
        request = compiled.create_infer_request()
        request.reset_state()
        prefill = fixed_inputs(model, length, seed)
        request.infer(prefill)
        logits = request.get_tensor("logits").data
        outputs[f"prefill {length}"] = logits[:, -keep:].copy()
        next_token = [int(logits[0, -1].argmax())]
        request.infer(fixed_inputs(model, 1, start=length, token_ids=next_token))
        outputs[f"decode after {length}"] = request.get_tensor("logits").data[:, -1:].copy()
    return outputs


@dataclass
class Fingerprint:
    """One model under one DQ setting, compared with DQ off (all else equal)."""

    model: str
    weights: str
    setting: str
    group_size: int | None  # None = the device default
    device_value: int | None  # what the compiled model reports for the property
    reproducible: bool  # two compilations of this setting gave bit-identical logits
    max_diff: dict[str, float] = field(default_factory=dict)  # per phase, max |logit - logit(DQ off)|
    mean_diff: dict[str, float] = field(default_factory=dict)

    @property
    def applied_to(self) -> list[str]:
        return [phase for phase, diff in self.max_diff.items() if diff > 0]

    @property
    def verdict(self) -> str:
        """``applied``, ``not applied``, ``applied: prefill 128`` (partly), ``off (reference)`` or ``unknown``."""
        if not self.reproducible:
            return "unknown: runs not bit-identical"
        if self.group_size == OFF:
            return "off (reference)"
        if not self.applied_to:
            return "not applied"
        if len(self.applied_to) == len(self.max_diff):
            return "applied"
        return "applied: " + ", ".join(self.applied_to)

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"model": self.model, "weights": self.weights, "setting": self.setting,
                               "bit-identical rerun": "yes" if self.reproducible else "NO"}
        row.update({f"max Δ {phase}": diff for phase, diff in self.max_diff.items()})
        row["DQ"] = self.verdict
        return row


def fingerprint(
    model_dirs: Mapping[str, str | Path],
    device: str = "CPU",
    group_sizes: Iterable[int] = DEFAULT_GROUP_SIZES,
    lengths: Sequence[int] = (16, 128),
    seed: int = 0,
    extra_properties: Mapping[str, Any] | None = None,
) -> list[Fingerprint]:
    """Is DQ applied? Compile each IR with each setting twice and compare logits with DQ off.

    Two compilations of one setting must agree bit for bit (else the comparison means nothing); then any difference
    from DQ off is DQ at work. `lengths` should include one prompt of at most 64 tokens and one longer, because GPUs
    skip DQ for short inputs. `extra_properties` (e.g. ``{"INFERENCE_PRECISION_HINT": "f32"}``) apply to every run.
    """
    import numpy as np
    import openvino as ov
    from tqdm.auto import tqdm

    settings = settings_for(group_sizes)
    if not lengths or min(lengths) < 1:
        raise ConfigError(f"Prompt lengths must be at least 1 token each, got {list(lengths)}.")
    extra = dict(extra_properties or {})
    if PROPERTY in extra:
        raise ConfigError(f"Pass the group sizes as group_sizes, not {PROPERTY} in extra_properties.")
    core = ov.Core()
    results: list[Fingerprint] = []
    with tqdm(total=len(model_dirs) * len(settings), desc="DQ fingerprint", leave=False) as bar:
        for label, model_dir in model_dirs.items():
            model = read_ir(_model_xml(model_dir), core)
            weights = weights_summary(model_dir)
            runs: dict[int | None, tuple[dict[str, Any], bool, int | None]] = {}
            for group_size in [OFF, *[s for s in settings if s != OFF]]:  # the reference first
                outputs = []
                for _ in range(2):
                    compiled = compile_ir(model, device, {**extra, **dq_properties(group_size)})
                    outputs.append(forward_logits(compiled, model, lengths, seed))
                    device_value = _compiled_group_size(compiled)
                    del compiled
                same = all(np.array_equal(outputs[0][k], outputs[1][k]) for k in outputs[0])
                runs[group_size] = (outputs[0], same, device_value)
                bar.update()
            reference = runs[OFF][0]
            for group_size in settings:
                logits, same, device_value = runs[group_size]
                diffs = {phase: np.abs(logits[phase].astype(np.float64) - reference[phase]) for phase in reference}
                results.append(Fingerprint(
                    model=label, weights=weights, setting=setting_label(group_size, device_value), group_size=group_size,
                    device_value=device_value, reproducible=same and runs[OFF][1],
                    max_diff={p: float(d.max()) for p, d in diffs.items()},
                    mean_diff={p: float(d.mean()) for p, d in diffs.items()},
                ))
    return results


def verdict_table(results: Sequence[Fingerprint]) -> list[dict[str, Any]]:
    """Compact view: one row per model, one column per setting, cells ``applied`` / ``not applied``."""
    rows: dict[str, dict[str, Any]] = {}
    for r in results:
        row = rows.setdefault(r.model, {"model": r.model, "weights": r.weights})
        row[r.setting] = r.verdict
    return list(rows.values())


# --------------------------------------------------------------------------------------------------------------------
# The same check through OpenVINO GenAI


def pipeline_fingerprint(
    model_dirs: Mapping[str, str | Path],
    device: str = "CPU",
    group_sizes: Iterable[int] = (0, 64),
    prompt: str | None = None,
    max_new_tokens: int = 8,
) -> list[dict[str, Any]]:
    """Through ``LLMPipeline(dir, device, DYNAMIC_QUANTIZATION_GROUP_SIZE=g)``: the greedy answer's log-probability.

    ``GenerationConfig.logprobs=1`` makes ``res.scores[0]`` the summed log-probability of the generated tokens, a
    number that moves with the logits. Each setting is loaded twice (bit-identical check), as in `fingerprint`.
    """
    from tqdm.auto import tqdm

    from .generation import chat_prompt, generation_config, load_pipeline
    from .prompts import builtin_prompts

    # A prompt longer than 64 tokens, so that GPUs apply DQ as well.
    text = prompt or max(builtin_prompts(), key=lambda p: len(p.text)).text
    config = generation_config(max_new_tokens, ignore_eos=True, logprobs=1)
    settings = settings_for(group_sizes)
    rows = []
    with tqdm(total=len(model_dirs) * len(settings), desc="DQ via LLMPipeline", leave=False) as bar:
        for label, model_dir in model_dirs.items():
            scores: dict[int | None, list[float]] = {}
            tokens = 0
            for group_size in [OFF, *[s for s in settings if s != OFF]]:
                scores[group_size] = []
                for _ in range(2):
                    pipe = load_pipeline(model_dir, device, **check_properties(device, dq_properties(group_size)))
                    rendered = chat_prompt(pipe, text)
                    tokens = int(pipe.get_tokenizer().encode(rendered).input_ids.get_shape()[-1])
                    scores[group_size].append(float(pipe.generate([rendered], config).scores[0]))
                    del pipe
                bar.update()
            device_value = default_group_size(device)
            reference = scores[OFF][0]
            for group_size in settings:
                first, second = scores[group_size]
                same = first == second and scores[OFF][0] == scores[OFF][1]
                delta = abs(first - reference)
                if not same:
                    verdict = "unknown: runs not bit-identical"
                elif group_size == OFF:
                    verdict = "off (reference)"
                else:
                    verdict = "applied" if delta > 0 else "not applied"
                rows.append({"model": label, "setting": setting_label(group_size, device_value), "prompt tokens": tokens,
                             "score (sum log p)": first, "bit-identical rerun": "yes" if same else "NO",
                             "Δ score vs off": delta, "DQ": verdict})
    return rows


def agreement(direct: Sequence[Fingerprint], pipeline_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Side by side: the direct-compile verdict and the LLMPipeline verdict for each model and setting they share.

    A direct verdict that DQ applies to some phases only counts as ``applied`` here.
    """
    def simple(verdict: str) -> str:
        return "applied" if verdict.startswith("applied") else verdict

    by_key = {(r.model, r.setting): simple(r.verdict) for r in direct}
    rows = []
    for row in pipeline_rows:
        key = (row["model"], row["setting"])
        if key in by_key:
            rows.append({"model": key[0], "setting": key[1], "direct compile": by_key[key], "LLMPipeline": row["DQ"],
                         "agree": "yes" if by_key[key] == row["DQ"] else "NO"})
    return rows


# --------------------------------------------------------------------------------------------------------------------
# Speed: short against long prompts


def exact_length_prompt(pipe: Any, n_tokens: int, filler: str | None = None) -> Any:
    """A `prompts.Prompt` whose chat-rendered form is exactly `n_tokens` tokens for this pipeline's tokenizer.

    The user text is cut from `filler` (default: the built-in prompts, repeated) token by token and checked after
    rendering with the chat template, which is what `benchmark.run_interleaved` feeds the model.
    """
    from .generation import chat_prompt
    from .prompts import Prompt, builtin_prompts

    tokenizer = pipe.get_tokenizer()

    def rendered_length(text: str) -> int:
        return int(tokenizer.encode(chat_prompt(pipe, text)).input_ids.get_shape()[-1])

    overhead = rendered_length("")
    if n_tokens <= overhead:
        raise ConfigError(f"A prompt of {n_tokens} tokens is too short: the chat template alone takes {overhead}. "
                          f"Use at least {overhead + 1} tokens.")
    text = filler or "\n\n".join(p.text for p in builtin_prompts())
    ids: list[int] = tokenizer.encode(text, add_special_tokens=False).input_ids.data[0].tolist()
    while len(ids) < n_tokens:
        ids = ids + ids
    body = n_tokens - overhead
    tried: set[int] = set()
    while body not in tried and 0 < body <= len(ids):  # a cut can merge or split tokens: adjust until it fits exactly
        tried.add(body)
        candidate = tokenizer.decode(ids[:body])
        length = rendered_length(candidate)
        if length == n_tokens:
            return Prompt(id=f"{n_tokens} tokens", category="length", text=candidate)
        body = body + n_tokens - length if body + n_tokens - length not in tried else body - 1
    raise ConfigError(f"Could not build a prompt of exactly {n_tokens} tokens from the filler text; try another length.")


@dataclass
class TimingResult:
    """DQ off against DQ on, interleaved, for prompts of several lengths."""

    benchmark: Any  # benchmark.BenchmarkResult
    off_label: str
    on_label: str
    rows: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"off": self.off_label, "on": self.on_label, "rows": self.rows, "benchmark": self.benchmark.to_dict()}


def timing_rows(result: Any, off_label: str, on_label: str) -> list[dict[str, Any]]:
    """Per prompt: median TTFT/TPOT off and on, and speedups as medians (and quartiles) of per-pair ratios off/on."""
    rows = []
    pairs = result.pairs(on_label) if result.baseline == off_label else []
    for prompt_id in dict.fromkeys(r.prompt_id for r in result.records):
        mine = [(b, c) for b, c in pairs if c.prompt_id == prompt_id]
        ttft_lo, ttft, ttft_hi = quartiles([b.ttft_ms / c.ttft_ms for b, c in mine if c.ttft_ms > 0])
        tpot_lo, tpot, tpot_hi = quartiles([b.tpot_ms / c.tpot_ms for b, c in mine if c.tpot_ms > 0])
        rows.append({
            "prompt tokens": int(statistics.median(c.input_tokens for _, c in mine)) if mine else None,
            "TTFT off (ms)": statistics.median(b.ttft_ms for b, _ in mine) if mine else None,
            "TTFT on (ms)": statistics.median(c.ttft_ms for _, c in mine) if mine else None,
            "TTFT speedup": ttft, "TTFT speedup lo": ttft_lo, "TTFT speedup hi": ttft_hi,
            "TPOT off (ms)": statistics.median(b.tpot_ms for b, _ in mine) if mine else None,
            "TPOT on (ms)": statistics.median(c.tpot_ms for _, c in mine) if mine else None,
            "TPOT speedup": tpot, "TPOT speedup lo": tpot_lo, "TPOT speedup hi": tpot_hi,
            "pairs": len(mine),
        })
    return rows


def compare_timing(
    target_dir: str | Path,
    device: str = "CPU",
    lengths: Sequence[int] = (32, 512, 2048, 4096),
    group_size_on: int | None = None,
    max_new_tokens: int = 32,
    repeats: int = 3,
    warmup: int = 1,
) -> TimingResult:
    """TTFT and TPOT with DQ off against DQ on (`group_size_on`, default: the device's own) for each prompt length.

    Two pipelines that differ only by DYNAMIC_QUANTIZATION_GROUP_SIZE run the same exact-length prompts, interleaved,
    through `benchmark.run_interleaved`; every generation has the same number of new tokens (EOS ignored).
    """
    from .benchmark import Candidate, run_interleaved
    from .generation import context_length, generation_config, load_pipeline

    if group_size_on is not None and check_group_size(group_size_on) == OFF:
        raise ConfigError("group_size_on=0 would compare DQ off with itself; pass None (device default) or a group size.")
    off_pipe = load_pipeline(target_dir, device, **check_properties(device, dq_properties(OFF)))
    on_pipe = load_pipeline(target_dir, device, **check_properties(device, dq_properties(group_size_on)))
    off_label = "DQ off (0)"
    on_label = f"DQ on (default {default_group_size(device)})" if group_size_on is None else f"DQ on ({group_size_on})"
    prompts = [exact_length_prompt(off_pipe, n) for n in sorted(lengths)]
    config = generation_config(max_new_tokens, ignore_eos=True)
    result = run_interleaved([Candidate(off_label, off_pipe, config), Candidate(on_label, on_pipe, config)], prompts,
                             repeats=repeats, warmup=warmup, baseline=off_label,
                             context_length=context_length(target_dir))
    result.settings.update({"target": str(target_dir), "device": device, "group_size_on": group_size_on,
                            "lengths": list(lengths)})
    return TimingResult(result, off_label, on_label, timing_rows(result, off_label, on_label))


# --------------------------------------------------------------------------------------------------------------------
# Accuracy: what DQ costs


def _first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None if len(a) == len(b) else
                min(len(a), len(b)))


def accuracy(
    model_dir: str | Path,
    device: str = "CPU",
    group_sizes: Iterable[int] = DEFAULT_GROUP_SIZES,
    prompts: Sequence[str] | None = None,
    max_new_tokens: int = 32,
    model_label: str = "target",
) -> list[dict[str, Any]]:
    """The cost of each DQ setting against DQ off, on real prompts.

    Logit differences come from a direct compile (prefill of the chat-rendered prompt, every position); the first
    divergent token from greedy generation through ``LLMPipeline`` (index of the first generated token that differs
    from DQ off's; "-" when all `max_new_tokens` agree).
    """
    import numpy as np
    from tqdm.auto import tqdm

    from .generation import chat_prompt, generation_config, load_pipeline
    from .prompts import builtin_prompts

    texts = list(prompts) if prompts is not None else [p.text for p in builtin_prompts()[:3]]
    if not texts:
        raise ConfigError("accuracy() needs at least one prompt.")
    model = read_ir(_model_xml(model_dir))
    config = generation_config(max_new_tokens, ignore_eos=True)
    settings = [OFF, *[s for s in settings_for(group_sizes) if s != OFF]]
    logits: dict[int | None, list[Any]] = {}
    tokens: dict[int | None, list[list[int]]] = {}
    device_value = default_group_size(device)
    for group_size in tqdm(settings, desc="DQ accuracy", leave=False):
        properties = check_properties(device, dq_properties(group_size))
        pipe = load_pipeline(model_dir, device, **properties)
        tokenizer = pipe.get_tokenizer()
        encoded = [tokenizer.encode(chat_prompt(pipe, t)) for t in texts]
        tokens[group_size] = [pipe.generate(e, config).tokens[0] for e in encoded]
        del pipe
        compiled = compile_ir(model, device, properties)
        logits[group_size] = []
        for e in encoded:
            ids = e.input_ids.data[0]
            request = compiled.create_infer_request()
            request.reset_state()
            request.infer(fixed_inputs(model, len(ids), token_ids=ids))
            logits[group_size].append(request.get_tensor("logits").data[0].astype(np.float64).copy())
        del compiled
    rows = []
    for group_size in settings:
        if group_size == OFF:
            continue
        diffs = [np.abs(a - b) for a, b in zip(logits[group_size], logits[OFF], strict=True)]
        firsts = [_first_divergence(a, b) for a, b in zip(tokens[group_size], tokens[OFF], strict=True)]
        diverged = [f for f in firsts if f is not None]
        rows.append({
            "model": model_label,
            "setting": setting_label(group_size, device_value),
            "group_size": device_value if group_size is None else group_size,
            "max Δ logit": max(float(d.max()) for d in diffs),
            "mean Δ logit": float(np.mean([d.mean() for d in diffs])),
            "top-1 changed (prefill positions)": float(np.mean([
                np.mean(a.argmax(-1) != b.argmax(-1)) for a, b in zip(logits[group_size], logits[OFF], strict=True)])),
            "prompts": len(texts),
            "prompts diverged": len(diverged),
            "first divergent token": min(diverged) if diverged else None,
        })
    return rows
