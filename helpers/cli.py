"""Command line: one entry point, one sub-command per job. Errors of ours print as one line, not a traceback."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import TutorialError


def _cmd_presets(args: argparse.Namespace) -> int:
    from .presets import presets_table
    from .tables import markdown_table

    print(markdown_table(presets_table()))
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    from .devices import available_devices

    for name, full in available_devices().items():
        print(f"{name}\t{full}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .conversion import export_model, prepare_preset
    from .devices import check_memory
    from .presets import WeightFormat, get_preset
    from .tables import markdown_table

    if args.source:
        weights = WeightFormat(bits=int(args.weights.removeprefix("int").replace("fp16", "16")), sym=args.sym,
                               group_size=args.group_size, ratio=args.ratio)
        dest = args.output or Path(args.source).name + f"-{weights.tag}-ov"
        result = export_model(args.source, dest, weights, overwrite=args.overwrite)
        print(markdown_table([result.row()]))
        print(f"\nSame with optimum-cli:\n  {result.cli_command}")
        return 0
    preset = get_preset(args.preset)
    if not args.skip_memory_check:
        check_memory(preset, "convert" if args.method == "convert" else "run")
    models = prepare_preset(preset, method=args.method, include_pruned=args.with_pruned)
    print(markdown_table(models.size_rows()))
    for result in models.results:
        if result.cli_command:
            print(f"\n{result.role} with optimum-cli:\n  {result.cli_command}")
    print(f"\ntarget: {models.target}\ndraft:  {models.draft}")
    return 0


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert (or download) a preset's models, or one Hugging Face model")
    p.add_argument("--preset", default="tiny", help="preset name (see `presets`)")
    p.add_argument("--method", choices=["convert", "download"], default="convert",
                   help="export with optimum-intel + NNCF, or download the published OpenVINO conversion")
    p.add_argument("--with-pruned", action="store_true", help="also fetch the preset's published pruned draft")
    p.add_argument("--source", help="instead of a preset: a Hugging Face id or local folder to export")
    p.add_argument("--output", help="with --source: destination folder")
    p.add_argument("--weights", choices=["int4", "int8", "fp16"], default="int4")
    p.add_argument("--sym", action="store_true")
    p.add_argument("--group-size", type=int, default=None)
    p.add_argument("--ratio", type=float, default=1.0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    p.add_argument("--skip-memory-check", action="store_true")
    p.set_defaults(handler=_cmd_convert)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("presets", help="list the model presets").set_defaults(handler=_cmd_presets)
    sub.add_parser("devices", help="list OpenVINO devices").set_defaults(handler=_cmd_devices)
    _add_convert(sub)
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"helpers.{module_name}")
        module.register_cli(sub)
    return parser


# Modules that add sub-commands: each defines ``register_cli(subparsers)`` and imports its heavy libraries lazily.
COMMAND_MODULES: list[str] = ["speculative", "dynamic_quant", "agent", "suite", "local_weights", "pruning", "distill"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except TutorialError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
