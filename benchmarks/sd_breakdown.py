"""Where speculative decoding's time goes: OpenVINO GenAI's pipeline against a from-scratch loop on the same IRs.

Runs, interleaved per prompt and repeat (the order rotates between repeats):
  1. the target alone (LLMPipeline), 2. the speculative LLMPipeline for every k,
  3. a plain greedy loop and 4. a from-scratch speculative loop for every k, both on the stateful IRs
     (helpers.sd_loop; one infer request per model),
then the raw-OpenVINO control t(n)/t(1) on the target IR (helpers.forward_cost). It prints the per-step breakdown
(draft, verify, rest) of each speculative configuration, the formula with measured parts against the measured speedup
(median of per-pair TPOT ratios, quartiles), and t(1) against the pipeline's TPOT.

Example:
  python benchmarks/sd_breakdown.py --target models/qwen2.5-coder-1.5b-instruct-int4 \\
      --draft models/qwen2.5-coder-0.5b-instruct-int4 -k 2 3 4 --prompts 4 --max-new-tokens 128 --repeats 2 \\
      --json benchmarks/results/sd_breakdown.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without `pip install -e .`

from helpers.benchmark import builtin_prompts, machine_description, peak_rss_mb
from helpers.errors import ConfigError
from helpers.forward_cost import forward_cost, quartiles
from helpers.fsutil import write_json
from helpers.generation import chat_prompt, generation_config, load_pipeline
from helpers.sd_breakdown import StepParts, explain, loop_parts, median_parts, pipeline_parts, pipeline_raw
from helpers.sd_loop import StatefulLM, chat_token_ids, check_k, eos_token_ids, greedy_generate, speculative_generate
from helpers.speculative import EXACT_PROPERTIES
from helpers.tables import markdown_table

PIPE_PLAIN, LOOP_PLAIN = "pipeline target alone", "loop greedy"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sd_breakdown.py", description=__doc__.split("\n\n")[0],
        epilog=__doc__[__doc__.index("Example:"):], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, help="OpenVINO target model folder (stateful optimum export)")
    parser.add_argument("--draft", required=True, help="OpenVINO draft model folder (same tokenizer)")
    parser.add_argument("-k", "--num-assistant-tokens", type=int, nargs="+", default=[3], metavar="K",
                        help="draft tokens per step (default: 3)")
    parser.add_argument("--prompts", type=int, default=4, help="how many built-in prompts to use (default: 4)")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="(default: 128)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats per prompt (default: 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per configuration first (default: 1)")
    parser.add_argument("--device", default="CPU", help="(default: CPU)")
    parser.add_argument("--exact", action="store_true",
                        help="f32 inference and KV cache, no dynamic quantization (default: the device defaults)")
    parser.add_argument("--context", type=int, default=256, help="KV-cache length of the t(n) control (default: 256)")
    parser.add_argument("--ns", type=int, nargs="+", default=[1, 2, 3, 4, 5, 8], metavar="N",
                        help="token counts n of the t(n) control (default: 1 2 3 4 5 8)")
    parser.add_argument("--forward-repeats", type=int, default=20, help="repeats of the t(n) control (default: 20)")
    parser.add_argument("--json", help="write settings, every run, the breakdowns and the control to this file")
    args = parser.parse_args(argv)
    for k in args.num_assistant_tokens:
        check_k(k)
    if min(args.prompts, args.repeats, args.max_new_tokens, args.forward_repeats) < 1 or args.warmup < 0:
        raise ConfigError("--prompts, --repeats, --max-new-tokens and --forward-repeats must be >= 1, --warmup >= 0.")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement of the script, as plain data."""
    props = EXACT_PROPERTIES if args.exact else {}
    prompts = builtin_prompts()[: args.prompts]
    ks = list(dict.fromkeys(args.num_assistant_tokens))
    base = load_pipeline(args.target, args.device, **props)
    sd = load_pipeline(args.target, args.device, draft_dir=args.draft, **props)
    target, draft = StatefulLM(args.target, args.device, props), StatefulLM(args.draft, args.device, props)
    eos = eos_token_ids(args.target)
    texts = {p.id: chat_prompt(base, p.text) for p in prompts}
    ids = {p.id: chat_token_ids(args.target, p.text) for p in prompts}

    def runner(label: str) -> Any:
        k = int(label.rsplit("=", 1)[1]) if "k=" in label else 0
        if label.startswith("pipeline"):
            pipe, config = (sd, generation_config(args.max_new_tokens, num_assistant_tokens=k)) if k else \
                (base, generation_config(args.max_new_tokens))

            def go(pid: str) -> tuple[StepParts, list[int] | str]:
                result = pipe.generate([texts[pid]], config)
                raw_lists[len(runs)] = pipeline_raw(result)
                return pipeline_parts(result, label, k), result.texts[0]
        else:
            def go(pid: str) -> tuple[StepParts, list[int] | str]:
                out = speculative_generate(target, draft, ids[pid], k, args.max_new_tokens, eos) if k else \
                    greedy_generate(target, ids[pid], args.max_new_tokens, eos)
                parts = loop_parts(out)
                parts.label = label
                return parts, out.tokens
        return go

    runs: list[dict[str, Any]] = []
    raw_lists: dict[int, dict[str, list[float]]] = {}  # run index -> GenAI's raw metrics
    labels = [PIPE_PLAIN, *[f"pipeline SD k={k}" for k in ks], LOOP_PLAIN, *[f"loop SD k={k}" for k in ks]]
    runners = {label: runner(label) for label in labels}
    for label in labels:
        for _ in range(args.warmup):
            runners[label](prompts[0].id)
    raw_lists.clear()
    started = time.perf_counter()
    for repeat in range(args.repeats):
        shift = repeat % len(labels)
        for prompt in prompts:
            for label in labels[shift:] + labels[:shift]:
                parts, output = runners[label](prompt.id)
                runs.append({"label": label, "prompt": prompt.id, "repeat": repeat, "parts": parts, "output": output})
                print(f"  {label:24s} {prompt.id:14s} r{repeat} tpot {parts.tpot_ms:7.1f} ms, "
                      f"{parts.tokens_per_step:4.2f} tok/step", file=sys.stderr)
    bench_s = time.perf_counter() - started
    context = [t for p in prompts for t in ids[p.id]]
    context = (context * (args.context // max(len(context), 1) + 1))[: args.context]
    control = forward_cost(target, context, args.ns, repeats=args.forward_repeats)

    def pairs(label: str, baseline: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        base_runs = {(r["prompt"], r["repeat"]): r for r in runs if r["label"] == baseline}
        return [(base_runs[(r["prompt"], r["repeat"])], r) for r in runs if r["label"] == label]

    medians = {label: median_parts([r["parts"] for r in runs if r["label"] == label]) for label in labels}
    breakdowns, identical = [], {}
    for label in labels:
        baseline = PIPE_PLAIN if label.startswith("pipeline") else LOOP_PLAIN
        matched = pairs(label, baseline)
        identical[label] = sum(b["output"] == c["output"] for b, c in matched) / len(matched)
        if label in (PIPE_PLAIN, LOOP_PLAIN):
            continue
        ratios = [b["parts"].tpot_ms / c["parts"].tpot_ms for b, c in matched if c["parts"].tpot_ms > 0]
        breakdowns.append(explain(medians[label], medians[baseline], quartiles(ratios)))
    return {
        "settings": {**{k: v for k, v in vars(args).items()}, "properties": {k: str(v) for k, v in props.items()},
                     "prompts": [p.id for p in prompts], "benchmark_seconds": bench_s},
        "machine": machine_description(), "peak_rss_mb": peak_rss_mb(),
        "prompt_tokens": {pid: len(v) for pid, v in ids.items()},
        "parts": [medians[label].row() for label in labels],
        "breakdown": [b.row() for b in breakdowns],
        "identical_to_baseline": identical,
        "control": control.to_dict(),
        "runs": [{**{k: v for k, v in r.items() if k != "parts"}, "parts": r["parts"].row(),
                  "output": r["output"] if isinstance(r["output"], str) else list(r["output"]),
                  "raw": raw_lists.get(i)} for i, r in enumerate(runs)],
    }


def overhead_row(parts: dict[str, Any]) -> dict[str, Any]:
    """How much of a step is model inference, and where the rest sits (draft, verify, between)."""
    infer = parts["draft_infer_ms"] + parts["verify_infer_ms"]
    draft_extra = parts["draft_ms"] - parts["draft_infer_ms"]
    verify_extra = parts["verify_ms"] - parts["verify_infer_ms"]
    other = parts["trim_ms"] + parts["draft_prefill_ms"] + parts["rest_ms"]
    return {"label": parts["label"], "step_ms": parts["step_ms"], "infer_ms": infer,
            "non_infer_ms": parts["step_ms"] - infer, "draft_non_infer_ms": draft_extra,
            "verify_non_infer_ms": verify_extra, "other_ms": other,
            "non_infer_per_token_ms": (parts["step_ms"] - infer) / parts["tokens_per_step"]}


def report(data: dict[str, Any]) -> str:
    """The tables the script prints."""
    control = data["control"]
    t1, t1s = control["rows"][0]["t_ms"], control["t1_steady_ms"][1]
    plain = {p["label"]: p for p in data["parts"]}
    out = ["## Per-step parts (medians over runs; ms per decode step)", markdown_table(data["parts"], [
        "label", "runs", "generated", "tokens_per_step", "acceptance_rate", "tpot_ms", "step_ms", "draft_ms",
        "draft_calls_per_step", "draft_token_ms", "draft_infer_ms", "verify_ms", "verify_infer_ms", "sampling_ms",
        "trim_ms", "draft_prefill_ms", "rest_ms"])]
    rows = []
    for b in data["breakdown"]:
        n = min(b["k"] + 1, max(r["n"] for r in control["rows"]))
        t_n = next((r for r in control["rows"] if r["n"] == n), None)
        rows.append({**b, "control_t(k+1)/t(1)": t_n["ratio"] if t_n else None})
    out += ["", "## Breakdown and the formula with measured parts (ratios relative to one plain step t_plain)",
            markdown_table(rows, ["label", "k", "tokens_per_step", "t_plain_ms", "c", "draft_ms", "verify_ms",
                                  "verify_ratio", "control_t(k+1)/t(1)", "trim_ms", "draft_prefill_ms", "rest_ms",
                                  "rest_ratio",
                                  "blog_predicted", "predicted", "measured", "measured_lo", "measured_hi",
                                  "agreement"]),
            "", "predicted = tokens/step * t_plain / (draft + verify + trim + draft_prefill + rest); "
                "blog_predicted = tokens/step / (k c + 1); measured = median over (prompt, repeat) pairs of "
                "TPOT(baseline) / TPOT(SD), lo/hi quartiles.",
            "", f"## Raw-OpenVINO control on the target IR, KV cache of {control['context']} tokens, "
                f"{control['repeats']} repeats (ms of request.infer() only)",
            markdown_table(control["rows"], ["n", "t_ms", "t_lo_ms", "t_hi_ms", "ratio", "ratio_lo", "ratio_hi"]),
            "", f"t(1) right after a KV trim {t1:.1f} ms; t(1) after another forward (plain decoding) {t1s:.1f} ms "
                f"(quartiles {control['t1_steady_ms'][0]:.1f}-{control['t1_steady_ms'][2]:.1f}); one trim "
                f"(query_state + set_state) {control['trim_ms'][1]:.1f} ms.",
            f"Plain decode step: pipeline {plain[PIPE_PLAIN]['step_ms']:.1f} ms (infer "
            f"{plain[PIPE_PLAIN]['verify_infer_ms']:.1f}, sampler {plain[PIPE_PLAIN]['sampling_ms']:.1f}), TPOT "
            f"{plain[PIPE_PLAIN]['tpot_ms']:.1f}; from-scratch loop {plain[LOOP_PLAIN]['step_ms']:.1f} ms (infer "
            f"{plain[LOOP_PLAIN]['verify_infer_ms']:.1f}).",
            "", "Inference vs everything else, ms per step (non-infer = scheduling, sampler, bookkeeping):",
            markdown_table([overhead_row(p) for p in data["parts"]], ["label", "step_ms", "infer_ms", "non_infer_ms",
                                                                      "draft_non_infer_ms", "verify_non_infer_ms",
                                                                      "other_ms", "non_infer_per_token_ms"]),
            "", "Identical to the baseline's output (share of runs): " + ", ".join(
                f"{k}: {v:.2f}" for k, v in data["identical_to_baseline"].items()),
            f"Prompt tokens: {data['prompt_tokens']}; peak RSS {data['peak_rss_mb']:.0f} MiB; "
            f"benchmark {data['settings']['benchmark_seconds']:.0f} s."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = run(args)
    print(report(data))
    if args.json:
        write_json(Path(args.json), data)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
