"""Hugging Face utilities shared by conversion, pruning and healing: loading a causal LM from a folder or hub id, telling
a Hugging Face checkpoint from an OpenVINO folder, torch threads for tiny models, and one clear error when the hub is
out of reach."""

from __future__ import annotations

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
    """Return `path` if it is a Hugging Face checkpoint folder (config and weights), else raise `ModelFolderError`."""
    path = Path(path).expanduser()
    if (path / "openvino_model.xml").is_file():
        raise ModelFolderError(f"{path} is an OpenVINO model. Pruning and healing work on the Hugging Face checkpoint "
                               "(the folder with config.json and *.safetensors); export to OpenVINO afterwards.")
    if not (path / "config.json").is_file() or (not any(path.glob("*.safetensors")) and not any(path.glob("*.bin"))):
        raise ModelFolderError(f"{path} is not a Hugging Face model folder (it needs config.json and *.safetensors).")
    return path


def load_causal_lm(source: str | Path, dtype: str = "float32") -> tuple[Any, Any]:
    """Model and tokenizer from a Hugging Face folder or hub id, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = str(source)
    local = Path(source).expanduser()
    if local.exists():
        check_hf_model_dir(local)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype))
    except network_errors() as exc:
        raise hub_unreachable(source, exc) from exc
    except OSError as exc:
        if local.exists():
            raise
        raise hub_unreachable(source, exc) from exc
    model.eval()
    return model, tokenizer
