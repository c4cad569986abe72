"""What every sub-command shares: one parent parser (preset, target, device, work folder), help formatting, and how a
command finds its models."""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..settings import DEFAULT_PRESET, DOWNLOADS_ENV, WORKDIR_ENV, env_device, env_preset, env_workdir


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (unless its help already says it, or there is none) and keeps the examples in the
    epilog as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        # `is`, not `in (None, False)`: 0 == False, and a default of 0 (a seed, a weight) is worth showing
        if "default" in text or action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


LARGEST_COUNT = 2**31 - 1  # OpenVINO takes counts as C++ integers; past this a value fails deep inside, not here


def _whole_number_any(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _whole_number(text: str) -> int:
    value = _whole_number_any(text)
    if value > LARGEST_COUNT:
        raise argparse.ArgumentTypeError(f"must be at most {LARGEST_COUNT:,}, got {value:,}")
    return value


def positive_int(text: str) -> int:
    """An argparse type for counts that must be at least 1 (repeats, tokens, steps...)."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type for counts that may be 0 (warm-up runs)."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type for rates and temperatures: a finite number above 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value:g}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type for weights that may be 0 (e.g. the KL weight): a finite number of at least 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value:g}")
    return value


def probability(text: str) -> float:
    """An argparse type for thresholds strictly between 0 and 1 (a confidence threshold)."""
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value:g}")
    return value


def unit_interval(text: str) -> float:
    """An argparse type for shares from 0 to 1, both included (a loss weight, a held-out share)."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value:g}")
    return value


LARGEST_SEED = 2**32 - 1  # numpy's random seed, which transformers.set_seed uses, takes no more


def seed(text: str) -> int:
    """An argparse type for random seeds: a whole number from 0 to 2**32 - 1."""
    value = _whole_number_any(text)
    if not 0 <= value <= LARGEST_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {LARGEST_SEED:,}, got {value:,}")
    return value


def held_out_share(text: str) -> float:
    """An argparse type for the share of records held out of training: at least 0 and below 0.5."""
    value = _number(text)
    if not 0 <= value < 0.5:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 0.5 (most records must train), got {value:g}")
    return value


def fraction(text: str) -> float:
    """An argparse type for shares above 0 and at most 1 (the int4 ratio)."""
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, got {value:g}")
    return value


def model_options(*, target: bool = True, device: bool = True, preset: bool = True) -> argparse.ArgumentParser:
    """The parent parser every model command shares: ``--preset``, ``--target``, ``--device`` and ``--workdir``
    (`preset` False: a command that takes its models only as folders, e.g. `heal`).

    ``--preset`` always means the same thing: ``$TUTORIAL_PRESET``, else the default preset; its models are converted
    on first use. ``--target`` (where offered) replaces the preset's target with an OpenVINO folder of your own.
    """
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("models and place")
    if preset:
        group.add_argument("--preset", default=env_preset(),
                           help=f"model preset (see `presets`); from $TUTORIAL_PRESET, else {DEFAULT_PRESET!r}")
    if target:
        group.add_argument("--target", type=Path, help="an OpenVINO target folder instead of the preset's target")
    if device:
        group.add_argument("--device", default=env_device(),
                           help="OpenVINO device; from $TUTORIAL_DEVICE, else GPU when present, else CPU")
    group.add_argument("--workdir", type=Path, default=env_workdir(),
                       help="folder for converted models and outputs; from $TUTORIAL_WORKDIR, else artifacts/")
    return parent


def add_command(sub: argparse._SubParsersAction, name: str, summary: str, description: str, examples: list[str],
                parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
    """A sub-command with a one-line summary (in `--help` of the whole CLI), a description and examples."""
    epilog = "examples:\n" + "\n".join(f"  python -m helpers {name} {example}".rstrip() for example in examples)
    return sub.add_parser(name, help=summary, description=description, epilog=epilog, parents=parents or [],
                          formatter_class=HelpFormatter)


@dataclass
class Models:
    """The folders a command runs on."""

    target: Path
    draft: Path | None


def resolve_device(args: argparse.Namespace, physical: bool = False) -> str:
    """``--device``, else the machine's default device, checked (`physical`: no AUTO/HETERO/MULTI)."""
    from ..devices import check_device, default_device

    return check_device(args.device if args.device else default_device(), physical=physical)


def is_model_folder(folder: Path) -> bool:
    """An OpenVINO IR folder, or a Hugging Face checkpoint (config.json beside safetensors weights)."""
    return (folder / "openvino_model.xml").is_file() or ((folder / "config.json").is_file()
                                                         and any(folder.glob("*.safetensors")))


def check_output_file(path: str | Path | None, option: str = "--json", reads: Sequence[str | Path | None] = ()) -> None:
    """Refuse an output file that could not be written (a folder in the way, a read-only or missing parent), or that
    would replace a file the command reads (`reads`) or sits inside a model folder, before minutes of work."""
    from ..fsutil import check_writable

    if path is None:
        return
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder: give a file name, e.g. {path / 'results.json'}.")
    resolved = path.resolve()
    if any(read is not None and Path(read).expanduser().resolve() == resolved for read in reads):
        raise ConfigError(f"{option} {path} is also an input of this command: write the results to another file.")
    if any(is_model_folder(folder) for folder in resolved.parents):
        raise ConfigError(f"{option} {path} is inside a model folder, which holds only the model's own files: write "
                          "the results elsewhere.")
    check_writable(path.parent)


def resolve_models(args: argparse.Namespace, with_draft: bool = True) -> Models:
    """``--target`` (and ``--draft``, if any) when given, else the preset's converted target and draft.

    `with_draft` False, or ``--no-draft``: no draft."""
    from ..conversion import check_ov_model_dir, prepare_preset
    from ..presets import get_preset

    draft = getattr(args, "draft", None)
    if draft and getattr(args, "no_draft", False):
        raise ConfigError(f"--draft {draft} and --no-draft contradict each other: drop one of them.")
    wants_draft = with_draft and not getattr(args, "no_draft", False)
    if args.target:
        return Models(check_ov_model_dir(args.target), check_ov_model_dir(draft) if draft and wants_draft else None)
    models = prepare_preset(get_preset(args.preset), workdir=args.workdir)
    return Models(models.target, (Path(draft) if draft else models.draft) if wants_draft else None)


def invocation(argv: Sequence[str] | None = None) -> str:
    """The command line that is running, as something one can paste again: ``python benchmarks/<script>.py ...`` when
    a script runs it, else ``python -m helpers`` with `argv` (what `commands.main` parsed; default: sys.argv[1:])."""
    script = sys.argv[0] if sys.argv else ""
    if script.endswith(".py") and os.path.basename(os.path.dirname(os.path.abspath(script))) == "benchmarks":
        words = ["python", script, *sys.argv[1:]]
    else:
        words = ["python", "-m", "helpers", *(sys.argv[1:] if argv is None else argv)]
    env = " ".join(f"{name}={shlex.quote(os.environ[name])}" for name in (WORKDIR_ENV, DOWNLOADS_ENV)
                   if os.environ.get(name))
    return (env + " " if env else "") + shlex.join(words)
