"""Hugging Face utilities shared by conversion, pruning and healing: loading a causal LM from a folder or hub id, telling
a Hugging Face checkpoint from an OpenVINO folder, torch threads for tiny models, and one clear error when the hub is
out of reach."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import HubUnreachableError, ModelFolderError

SMALL_MODEL_PARAMS = 20_000_000  # below this, torch runs single-threaded (see threads_for)


def is_hub_id(source: str) -> bool:
    """True for text shaped like a Hugging Face hub id ``org/name`` (not a local path)."""
    return "/" in source and not source.startswith((".", "/", "~")) and source.count("/") == 1


def hub_unreachable(source: str, exc: BaseException) -> HubUnreachableError:
    """The one-line error for a model or dataset the hub could not deliver (offline machine, wrong id)."""
    return HubUnreachableError(
        f"Cannot fetch {source!r} from the Hugging Face hub ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}). "
        "This machine seems offline. Download the model on a connected machine "
        f"(`hf download {source} --local-dir {source.split('/')[-1]}`), copy the folder here and pass it as the source, "
        "or use the offline `tiny` preset."
    )


def is_closed_client_error(exc: BaseException) -> bool:
    """huggingface_hub retries a failed request on an httpx client it has already closed, and httpx then raises this
    RuntimeError in place of the connection error (seen offline with huggingface-hub 1.21)."""
    return isinstance(exc, RuntimeError) and "client has been closed" in str(exc)


def network_errors() -> tuple[type[BaseException], ...]:
    """The exception types a failed hub download raises (huggingface_hub's, httpx's and the built-in ones)."""
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    errors: list[type[BaseException]] = [LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError, ConnectionError]
    try:
        import httpx

        errors.append(httpx.HTTPError)
    except ImportError:
        pass
    return tuple(errors)


@contextmanager
def threads_for(model: Any) -> Iterator[None]:
    """Run torch on one thread for tiny models, the default otherwise.

    Tiny matrices gain nothing from several threads and lose time synchronising them: on a busy 2-core machine a
    training step of the tiny draft took 8x longer with two threads than with one.
    """
    import torch

    threads = torch.get_num_threads()
    if sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def check_hf_model_dir(path: str | Path) -> Path:
    """Return `path` if it is a readable Hugging Face checkpoint folder, else raise `ModelFolderError`.

    Cheap checks of what a load would trip over later with a traceback: config.json is a JSON object naming a
    ``model_type``, and every weight file is non-empty (a .safetensors header must parse).
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ModelFolderError(f"{path} is not a Hugging Face model folder ({_missing(path)}). {HF_FOLDER_HOW}")
    if (path / "openvino_model.xml").is_file():
        raise ModelFolderError(f"{path} is an OpenVINO model already. This step needs the Hugging Face checkpoint it was "
                               "exported from (the folder with config.json and *.safetensors).")
    weights = sorted([*path.glob("*.safetensors"), *path.glob("*.bin")])
    if not (path / "config.json").is_file() or not weights:
        raise ModelFolderError(f"{path} is not a Hugging Face model folder (it needs config.json and *.safetensors). "
                               f"{HF_FOLDER_HOW}")
    remake = "Copy or export the checkpoint again."
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelFolderError(f"{path / 'config.json'} is unreadable ({exc}). {remake}") from exc
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ModelFolderError(f"{path / 'config.json'} names no model_type: it is not a model's config. {remake}")
    for weight_file in weights:
        problem = weight_file_problem(weight_file)
        if problem:
            raise ModelFolderError(f"{weight_file} is damaged ({problem}). {remake}")
    return path


HF_FOLDER_HOW = ("Pass a folder saved by transformers' save_pretrained (what `python -m helpers prune` and `heal` "
                 "write), or download one: `huggingface-cli download Qwen/Qwen3-0.6B --local-dir DIR`.")
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")  # a Hugging Face folder has one of them


def _missing(path: Path) -> str:
    return "it is a file" if path.exists() else "it does not exist"


def check_hf_tokenizer_dir(path: str | Path) -> Path:
    """Return `path` if it holds a Hugging Face tokenizer (a checkpoint, or an OpenVINO export, which keeps one), else
    raise `ModelFolderError`: transformers would otherwise take a missing folder for a hub id and fail with a traceback."""
    path = Path(path).expanduser()
    if not path.is_dir() or not any((path / name).is_file() for name in HF_TOKENIZER_FILES):
        why = _missing(path) if not path.is_dir() else f"it has no tokenizer: none of {', '.join(HF_TOKENIZER_FILES)}"
        raise ModelFolderError(f"{path} is not a Hugging Face model folder ({why}). {HF_FOLDER_HOW}")
    return path


def weight_file_problem(path: Path) -> str | None:
    """Why a weight file cannot be read, or None. A .safetensors file starts with an 8-byte header size and a JSON
    header giving each tensor's byte range; a truncated download or save, or an empty placeholder, fails here."""
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file"
        if path.suffix != ".safetensors":
            return None
        with path.open("rb") as handle:
            header_size = int.from_bytes(handle.read(8), "little")
            if header_size <= 0 or 8 + header_size > size:
                return "truncated safetensors header"
            header = json.loads(handle.read(header_size))
        ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
        if not all(type(end) is int and end >= 0 for end in ends):
            return "the safetensors header is not JSON describing tensors"
        expected = 8 + header_size + max(ends, default=0)
        if size < expected:  # a copy or save cut short keeps its header: the tensors' bytes are missing
            return f"truncated safetensors data ({size:,} of {expected:,} bytes)"
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        return "the safetensors header is not JSON describing tensors"
    return None


def load_causal_lm(source: str | Path, dtype: str = "float32") -> tuple[Any, Any]:
    """Model and tokenizer from a Hugging Face folder or hub id, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = str(source)
    local = Path(source).expanduser()
    if local.exists():
        check_hf_model_dir(local)
    elif not is_hub_id(source):
        raise ModelFolderError(f"{local} does not exist, and {source!r} is not a Hugging Face id like "
                               "'Qwen/Qwen3-0.6B'. Check the path.")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype))
    except network_errors() as exc:
        raise hub_unreachable(source, exc) from exc
    except MemoryError:
        raise
    except Exception as exc:  # a local folder that passed the cheap checks but still does not load
        if not local.exists():
            if isinstance(exc, OSError) or is_closed_client_error(exc):
                raise hub_unreachable(source, exc) from exc
            raise
        first_line = (str(exc).splitlines() or [""])[0][:200]
        raise ModelFolderError(f"{local} does not load as a Hugging Face model ({type(exc).__name__}: {first_line}). "
                               "Copy or export the checkpoint again.") from exc
    model.eval()
    return model, tokenizer
