"""Measuring commands: `bench` (target alone vs speculative decoding vs prompt lookup) and `dq` (dynamic
quantization)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings import BENCH
from ..tables import markdown_table
from .common import (
    add_command,
    check_output_file,
    invocation,
    model_options,
    non_negative_int,
    positive_int,
    probability,
    resolve_device,
    resolve_models,
)


def cmd_bench(args: argparse.Namespace) -> int:
    from ..benchmark import keep_earlier_partial, partial_results_path
    from ..prompts import builtin_prompts, load_prompts
    from ..speculative import EXACT_PROPERTIES, SpeculativeSetup, run_speculative_benchmark, with_predictions

    device = resolve_device(args)  # the cheap checks first, before a preset is converted
    prompts = load_prompts(args.prompts) if args.prompts else builtin_prompts()
    check_output_file(args.json, reads=[args.prompts])
    models = resolve_models(args)
    setup = SpeculativeSetup(
        target=models.target, draft=models.draft, device=device,
        assistant_tokens=tuple(args.num_assistant_tokens), confidence_thresholds=tuple(args.confidence_threshold),
        prompt_lookup=args.prompt_lookup, max_new_tokens=args.max_new_tokens,
        properties=EXACT_PROPERTIES if args.exact else None,
    )
    partial = partial_results_path(args.json) if args.json else None
    if partial is not None and (kept := keep_earlier_partial(partial)):
        print(f"runs of an earlier interrupted benchmark kept in {kept}")
    result = run_speculative_benchmark(setup, prompts, repeats=args.repeats, warmup=args.warmup,
                                       enable_thinking=args.thinking, partial_path=partial)
    if args.json:  # written before anything else can fail; then the runs appended on the way are no longer needed
        result.settings["command"] = invocation(args.argv)  # every result file names the command that made it
        print(f"wrote {result.to_json(args.json)}")
        partial.unlink(missing_ok=True)
    columns = ["label", "ttft_ms", "tpot_ms", "throughput_tps", "acceptance_rate", "cost_ratio", "tokens_per_step",
               "speedup", "speedup_lo", "speedup_hi", "predicted_speedup", "identical_to_baseline"]
    print(markdown_table(with_predictions(result.summary()), columns))
    print(f"\nspeedup = median over (prompt, repeat) pairs of TPOT(target alone) / TPOT(config); lo/hi = quartiles. "
          f"{len(prompts)} prompts x {args.repeats} repeats, interleaved; peak RSS {result.peak_rss_mb:.0f} MiB.")
    return 0


def cmd_dq(args: argparse.Namespace) -> int:
    from ..dynamic_quant import (
        compare_timing,
        device_defaults,
        fingerprint,
        runtime_graph_check,
        settings_for,
        uncompressed_control,
    )
    from ..fsutil import write_json
    from ..generation import check_within_context

    device = resolve_device(args, physical=True)  # DQ defaults and properties belong to one physical device
    settings_for(args.group_sizes)  # refuse bad group sizes before any work
    check_output_file(args.json)
    models = resolve_models(args, with_draft=not args.target)
    if args.timing:
        check_within_context(models.target, max(args.timing_lengths) + args.max_new_tokens, "The longest "
                             "--timing-lengths prompt with its --max-new-tokens", "Lower --timing-lengths.")
    model_dirs: dict[str, Path] = {"target": models.target}
    if models.draft is not None:
        model_dirs["draft"] = models.draft
    if not args.no_control:
        model_dirs["control (uncompressed)"] = uncompressed_control(workdir=args.workdir)
    for folder in model_dirs.values():  # each fingerprint prefills a prompt, then decodes one token after it
        check_within_context(folder, max(args.lengths) + 1, f"The longest --lengths prompt on {folder.name}",
                             "Lower --lengths.")
    print("## Defaults per device\n")
    print(markdown_table(device_defaults()))
    if device.startswith("GPU"):
        print("\n## dynamic_quantize nodes in the runtime graph\n")
        print(markdown_table(runtime_graph_check(model_dirs, device, args.group_sizes)))
    print(f"\n## Is DQ applied? ({device}: logits vs DQ off, same inputs; every setting compiled twice)\n")
    results = fingerprint(model_dirs, device, args.group_sizes, args.lengths)
    print(markdown_table([r.row() for r in results]))
    output: dict[str, Any] = {"device": device, "fingerprint": [asdict(r) | {"verdict": r.verdict} for r in results]}
    if args.timing:
        timing = compare_timing(model_dirs["target"], device, args.timing_lengths, args.group_size_on,
                                args.max_new_tokens, args.repeats)
        print(f"\n## Speed: {timing.on_label} against {timing.off_label} (speedup = off / on, median of pairs)\n")
        print(markdown_table(timing.rows, ["prompt tokens", "TTFT off (ms)", "TTFT on (ms)", "TTFT speedup",
                                           "TPOT off (ms)", "TPOT on (ms)", "TPOT speedup", "pairs"]))
        output["timing"] = timing.to_dict()
    if args.json:
        write_json(Path(args.json), json.loads(json.dumps(output, default=str)))
        print(f"\nwrote {args.json}")
    return 0


def cmd_breakdown(args: argparse.Namespace) -> int:
    from ..fsutil import write_json
    from ..generation import check_within_context
    from ..sd_breakdown import BreakdownSettings, breakdown_report, measure_breakdown
    from ..sd_loop import check_k

    for k in args.num_assistant_tokens:
        check_k(k)  # before converting or loading anything
    device = resolve_device(args)
    check_output_file(args.json)
    models = resolve_models(args)
    if models.draft is None:
        raise ConfigError("The breakdown compares speculative decoding with the target alone: it needs a draft.")
    check_within_context(models.target, args.context + max(args.ns), "The forward-pass control (--context plus the "
                         "largest --ns, on the target)", "Lower --context or --ns.")
    settings = BreakdownSettings(
        target=models.target, draft=models.draft, ks=tuple(args.num_assistant_tokens), prompts=args.prompts,
        max_new_tokens=args.max_new_tokens, repeats=args.repeats, warmup=args.warmup, device=device,
        exact=args.exact, context=args.context, ns=tuple(args.ns), forward_repeats=args.forward_repeats)
    data = measure_breakdown(settings)
    data["settings"]["command"] = invocation(args.argv)
    print(breakdown_report(data))
    if args.json:
        write_json(Path(args.json), data)
        print(f"wrote {args.json}")
    return 0


def cmd_prefix_reuse(args: argparse.Namespace) -> int:
    from ..fsutil import write_json
    from ..prefix_reuse import measure_prefix_reuse, reuse_record

    device = resolve_device(args)
    check_output_file(args.json)
    models = resolve_models(args)
    runs = measure_prefix_reuse(models.target, device, models.draft, answer_tokens=args.answer_tokens,
                                repeats=args.repeats)
    record = reuse_record(runs, {"target": str(models.target), "draft": str(models.draft) if models.draft else None,
                                 "device": device, "answer_tokens": args.answer_tokens, "repeats": args.repeats,
                                 "command": invocation(args.argv)})
    print(markdown_table(record["summary"]))
    print("answer_prefilled_again: the follow-up's extra prefill over the control's, in units of prefilling the "
          "answer from scratch (0: the pipeline reused the KV of its own answer; 1: it read the answer again)")
    if args.json:
        write_json(Path(args.json), record)
        print(f"wrote {args.json}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..dynamic_quant import DEFAULT_GROUP_SIZES

    p = add_command(sub, "bench", "benchmark the target alone against speculative decoding and prompt lookup",
                    "Interleaved benchmark with OpenVINO GenAI's own metrics: the target alone, then the draft at each "
                    "k (and confidence threshold), then prompt lookup. Prints TTFT, TPOT, acceptance, the draft/target "
                    "cost ratio c, the speedup over the target alone (median of per-pair ratios, with quartiles) and "
                    "the formula's prediction.",
                    ["--preset qwen3-8b --device GPU -k 1 2 3 4 5 --prompt-lookup --repeats 3 --json bench.json",
                     "--target DIR --draft DIR --prompts my_prompts.jsonl --exact"],
                    parents=[model_options()])
    p.add_argument("--draft", type=Path, help="OpenVINO draft folder (default: the preset's draft; none with --target)")
    p.add_argument("--no-draft", action="store_true", help="benchmark without a draft model")
    p.add_argument("--num-assistant-tokens", "-k", type=positive_int, nargs="+", default=list(BENCH.assistant_tokens),
                   metavar="K", help="draft tokens per step to try")
    p.add_argument("--confidence-threshold", type=probability, nargs="*", default=[], metavar="T",
                   help="also try dynamic speculation: the draft stops when its top probability falls below T")
    p.add_argument("--prompt-lookup", action="store_true", help="also run prompt-lookup decoding")
    p.add_argument("--prompts", help="JSONL file of prompts ({\"id\", \"text\"} per line); default: the built-in set")
    p.add_argument("--max-new-tokens", type=positive_int, default=BENCH.max_new_tokens, help="tokens per answer")
    p.add_argument("--repeats", type=positive_int, default=BENCH.repeats, help="timed runs per prompt and configuration")
    p.add_argument("--warmup", type=non_negative_int, default=BENCH.warmup, help="untimed runs per configuration")
    p.add_argument("--thinking", action="store_true", help="Qwen3 thinking on (longer answers)")
    p.add_argument("--exact", action="store_true", help="f32 inference and KV cache, no dynamic quantization")
    p.add_argument("--json", help="write runs and summary to this JSON file")
    p.set_defaults(handler=cmd_bench)

    p = add_command(sub, "breakdown", "where speculative decoding's time goes: pipeline vs a from-scratch loop",
                    "Split one speculative step into its measured parts with OpenVINO GenAI's own per-model metrics "
                    "(draft time per drafted token, target time per verify call against one plain decode step, the "
                    "rest), run the same pair through speculative decoding written from scratch on the stateful IRs "
                    "(the control), time raw forwards that append n tokens to the KV cache (t(n)/t(1)), and compare "
                    "the formula with measured parts to the measured speedup. Everything interleaved.",
                    ["--preset qwen2.5-coder-1.5b-offline -k 2 3 4 --max-new-tokens 128 --json breakdown.json",
                     "--target DIR --draft DIR -k 3 --prompts 2 --repeats 1"],
                    parents=[model_options()])
    p.add_argument("--draft", type=Path, help="OpenVINO draft folder (default: the preset's draft)")
    p.add_argument("--num-assistant-tokens", "-k", type=positive_int, nargs="+", default=[3], metavar="K",
                   help="draft tokens per step to try")
    p.add_argument("--prompts", type=positive_int, default=4, help="how many built-in prompts")
    p.add_argument("--max-new-tokens", type=positive_int, default=BENCH.max_new_tokens, help="tokens per answer")
    p.add_argument("--repeats", type=positive_int, default=2, help="timed runs per prompt and configuration")
    p.add_argument("--warmup", type=non_negative_int, default=BENCH.warmup, help="untimed runs per configuration")
    p.add_argument("--exact", action="store_true", help="f32 inference and KV cache, no dynamic quantization")
    p.add_argument("--context", type=positive_int, default=256, help="KV-cache length of the t(n) control")
    p.add_argument("--ns", type=positive_int, nargs="+", default=[1, 2, 3, 4, 5, 8], metavar="N",
                   help="tokens appended per forward in the t(n) control")
    p.add_argument("--forward-repeats", type=positive_int, default=20, help="repeats of the t(n) control")
    p.add_argument("--json", help="write settings, every run, the breakdowns and the control to this file")
    p.set_defaults(handler=cmd_breakdown)

    p = add_command(sub, "prefix-reuse", "does a pipeline reuse the KV cache of its own last answer? (agent follow-ups)",
                    "An agent's next call re-sends the conversation, which ends with the model's own answer. For the "
                    "plain pipeline, prompt lookup and the draft (fresh pipelines, prefix caching on, order rotating), "
                    "it times the prefill of the first prompt + the pipeline's answer + a new turn against a control "
                    "(the first prompt + a new turn), with OpenVINO GenAI's TTFT.",
                    ["--preset qwen2.5-coder-1.5b-offline --answer-tokens 300 --repeats 2 --json reuse.json",
                     "--preset tiny --answer-tokens 24 --repeats 1 --no-draft"],
                    parents=[model_options()])
    p.add_argument("--draft", type=Path, help="OpenVINO draft folder (default: the preset's draft; none with --target)")
    p.add_argument("--no-draft", action="store_true", help="only the plain pipeline and prompt lookup")
    p.add_argument("--answer-tokens", type=positive_int, default=BENCH.reuse_answer_tokens,
                   help="length of the first answer, which the follow-up reads back")
    p.add_argument("--repeats", type=positive_int, default=BENCH.reuse_repeats, help="fresh pipelines per mode")
    p.add_argument("--json", help="write settings, every run and the summary to this file")
    p.set_defaults(handler=cmd_prefix_reuse)

    p = add_command(sub, "dq", "dynamic quantization: defaults, is it applied, and (--timing) its speed effect",
                    "Dynamic quantization of activations: each device's default group size, whether it is applied to "
                    "each model (a numeric fingerprint against DQ off, with an uncompressed control), and with --timing "
                    "its effect on TTFT and TPOT for short and long prompts.",
                    ["--preset tiny", "--target DIR --group-sizes 0 32 128 --timing"],
                    parents=[model_options()])
    p.add_argument("--group-sizes", type=int, nargs="+", default=list(DEFAULT_GROUP_SIZES), metavar="G",
                   help="settings to compare with DQ off (the device's own setting is always included)")
    p.add_argument("--lengths", type=positive_int, nargs="+", default=[16, 128], metavar="N",
                   help="fingerprint prompt lengths (keep one <= 64 and one > 64 for GPUs)")
    p.add_argument("--no-control", action="store_true", help="skip the uncompressed tiny control model")
    p.add_argument("--timing", action="store_true", help="also time DQ off vs on for short and long prompts")
    p.add_argument("--timing-lengths", type=positive_int, nargs="+", default=[32, 512, 2048, 4096], metavar="N",
                   help="prompt lengths in tokens for --timing")
    p.add_argument("--group-size-on", type=positive_int, default=None, help="DQ group for the 'on' pipeline (default: device's)")
    p.add_argument("--max-new-tokens", type=positive_int, default=32, help="tokens per --timing run")
    p.add_argument("--repeats", type=positive_int, default=3, help="pairs per --timing length")
    p.add_argument("--json", help="write the results to this JSON file")
    p.set_defaults(handler=cmd_dq)
