"""Errors that speak the user's language: each says what went wrong and what to do next."""

from __future__ import annotations


class TutorialError(Exception):
    """Base class for every error raised on purpose by `helpers`.

    The message always ends with the fix, so a notebook user never has to read a traceback from deep inside a library.
    """


class UnknownPresetError(TutorialError, KeyError):
    """A preset name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would otherwise print the message with quotes around it
        return str(self.args[0]) if self.args else ""


class ModelFolderError(TutorialError):
    """A model folder that is missing, incomplete, half-written or not an OpenVINO model."""


class HubUnreachableError(TutorialError):
    """The Hugging Face hub cannot be reached (offline machine, firewall, HF_HUB_OFFLINE=1)."""


class DeviceError(TutorialError):
    """An OpenVINO device name that is not available on this machine, or a property it does not support."""


class NotEnoughMemoryError(TutorialError):
    """Free RAM is below what a preset needs."""


class TokenizerMismatchError(TutorialError):
    """Draft and target do not share a tokenizer, so speculative decoding would produce garbage."""


class PromptFileError(TutorialError):
    """A prompts or data file that is missing, empty or malformed."""


class ConfigError(TutorialError):
    """A parameter out of range (number of assistant tokens, group size, layers to prune, ...)."""


class ToolInputError(TutorialError):
    """An agent tool called with missing, malformed or out-of-range arguments, or an output path outside its folder.

    The message is what the model reads back as the tool's error, so it says exactly what to change in the call.
    """


class AgentStoppedError(TutorialError):
    """An agent run that had to stop (e.g. its conversation outgrew the model's context); `run` holds what it did."""

    def __init__(self, message: str, run: object = None) -> None:
        super().__init__(message)
        self.run = run


class MissingPackageError(TutorialError, ImportError):
    """An optional package (e.g. `datasets`) that a feature needs is not installed; the message names the pip command."""


class LocalWeightsError(TutorialError):
    """Weights on disk that cannot be used: a download that fails its size or sha256 check, or a GGUF file whose
    architecture or quantization type transformers cannot read."""
