"""`python -m helpers agent`: the smolagents slide-deck agent on a preset."""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..agent_levers import KV_CACHE_PRECISIONS, AgentSetup, default_setup
from ..settings import AGENT, BLOG_TASK, TINY_PRESET
from ..tables import markdown_table
from .common import add_command, model_options, non_negative_int, positive_int, probability, resolve_device

PREFIX_CACHING = {"default": None, "on": True, "off": False}
LEVER_OPTIONS = ("num_assistant_tokens", "assistant_confidence_threshold", "prefix_caching", "cache_size_gb",
                 "kv_cache_precision", "num_threads", "dq_group_size")


def cmd_agent(args: argparse.Namespace) -> int:
    # smolagents takes seconds to import: only this command loads it
    from ..agent import OUTPUT_NAME, print_thinking
    from ..agent_levers import load_agent_model
    from ..agent_tools import choose_search_tool
    from ..conversion import prepare_preset
    from ..fsutil import check_writable
    from ..paths import outputs_dir
    from ..presets import get_preset

    preset = get_preset(args.preset)
    device = resolve_device(args)
    output_dir = Path(args.output_dir).expanduser() if args.output_dir else outputs_dir(args.workdir, OUTPUT_NAME)
    check_writable(output_dir)  # a read-only place or a file in the way fails before the models load
    models = prepare_preset(preset, workdir=args.workdir)
    search = choose_search_tool(args.search)
    print(search.message)
    tiny = preset.name == TINY_PRESET
    setup = agent_setup(args, device)
    print(f"model setup: {setup.label} {setup.describe() or '(OpenVINO GenAI defaults)'}")
    model = load_agent_model(
        setup, models.target, device, draft_dir=models.draft,
        max_new_tokens=args.max_new_tokens or (AGENT.tiny_max_new_tokens if tiny else AGENT.max_new_tokens),
        enable_thinking=args.thinking, on_thinking=print_thinking if args.thinking and not args.quiet else None,
    )
    if tiny:
        print("Note: the tiny preset's model writes gibberish: expect nonsense steps and no deck (use a real preset).")
    tasks = args.task or [BLOG_TASK]
    for number, task in enumerate(tasks, 1):
        if len(tasks) > 1:
            kept = " (same pipeline: what the tasks share, the system prompt and tools, is in its prefix cache)"
            print(f"\ntask {number} of {len(tasks)}{kept if number > 1 else ''}: {task}")
        run_one_task(model, task, args, output_dir, search, {"preset": preset.name, "device": device,
                                                             "search": search.message, "setup": setup.describe()})
    return 0


def run_one_task(model: Any, task: str, args: argparse.Namespace, output_dir: Path, search: Any,
                 settings: dict[str, Any]) -> None:
    """One task with fresh tools and a fresh agent on the loaded `model`; prints its steps and writes its run log."""
    from ..agent import build_agent, run_agent
    from ..agent_tools import default_tools
    from ..errors import AgentStoppedError

    agent = build_agent(model, default_tools(output_dir, search), max_steps=args.max_steps, stream=not args.quiet,
                        verbosity=0 if args.quiet else 1)
    log_path = output_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.json"
    try:
        run = run_agent(agent, task)
    except AgentStoppedError as exc:  # keep the log of what it did, then say why it stopped
        exc.run.settings.update(settings)
        raise AgentStoppedError(f"{exc} The run log is kept: {exc.run.to_json(log_path)}") from exc
    run.settings.update(settings)
    log = run.to_json(log_path)
    print(markdown_table(run.steps, ["step", "kind", "seconds", "input_tokens", "output_tokens", "acceptance_rate",
                                     "tokens_per_s", "error"]))
    print(f"\nfinal answer: {run.final_answer[:300]}")
    print("deck: " + (", ".join(str(p) for p in run.decks) if run.decks else "none written (the model never called "
                                                                             "make_slide_deck successfully)"))
    print(f"run log: {log}")


def agent_setup(args: argparse.Namespace, device: str) -> AgentSetup:
    """The model setup from the command line: the measured default for the device unless levers are named."""
    chosen = {name: getattr(args, name) for name in LEVER_OPTIONS if getattr(args, name) is not None}
    if "prefix_caching" in chosen:
        chosen["prefix_caching"] = PREFIX_CACHING[chosen["prefix_caching"]]
    if args.no_draft or args.prompt_lookup or chosen.get("num_assistant_tokens") or chosen.get("assistant_confidence_threshold"):
        draft = not args.no_draft and not args.prompt_lookup
        k = chosen.pop("num_assistant_tokens", None)
        threshold = chosen.pop("assistant_confidence_threshold", None)
        if (draft or args.prompt_lookup) and k is None and threshold is None:
            k = AGENT.num_assistant_tokens
        mode = "prompt lookup" if args.prompt_lookup else "draft" if draft else "target alone"
        return AgentSetup(f"{mode} (command line)", draft=draft, prompt_lookup=args.prompt_lookup,
                          num_assistant_tokens=k, assistant_confidence_threshold=threshold, **chosen)
    setup, reason = default_setup(device)
    print(f"default for {device}: {setup.label} ({reason})")
    return replace(setup, **chosen) if chosen else setup


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "agent", "run the smolagents slide-deck agent on a preset; writes the deck and a JSON run log",
                    "A smolagents CodeAgent on an in-process OpenVINO GenAI pipeline (without lever options, the "
                    "device's measured default, printed with its reason: prompt lookup on CPU): it searches (web, or "
                    "offline notes when there is no internet), then writes a "
                    "python-pptx deck through the validated slide tool. Prints per-step times and acceptance.",
                    ["--preset qwen2.5-coder-1.5b-offline --search offline",
                     "--preset qwen2.5-coder-1.5b-offline --task 'Slides on Qwen3 sizes' --task 'Slides on Qwen3 modes'",
                     "--preset tiny --max-steps 1 --quiet --no-draft"],
                    parents=[model_options(target=False)])
    p.add_argument("--task", action="append", help="what to ask the agent (default: the blog's task); repeat it for "
                   "several tasks on one pipeline: the later ones find the system prompt in its prefix cache")
    p.add_argument("--max-steps", type=positive_int, default=AGENT.max_steps, help="agent steps before it must answer")
    p.add_argument("--max-new-tokens", type=positive_int, default=None,
                   help=f"per model call (default: {AGENT.tiny_max_new_tokens} on tiny, else {AGENT.max_new_tokens})")
    levers = p.add_argument_group("speed levers (default: the fastest combination measured for the device)")
    levers.add_argument("--no-draft", action="store_true", help="target alone, no speculative decoding")
    levers.add_argument("--prompt-lookup", action="store_true", help="prompt-lookup decoding instead of the draft")
    levers.add_argument("--num-assistant-tokens", "-k", type=positive_int, default=None,
                        help=f"draft (or lookup) tokens per step (default {AGENT.num_assistant_tokens})")
    levers.add_argument("--assistant-confidence-threshold", type=probability, default=None,
                        help="instead of k: the draft proposes while its confidence stays above this")
    levers.add_argument("--prefix-caching", choices=sorted(PREFIX_CACHING), default=None,
                        help="reuse the KV cache of the conversation's shared beginning (on by default in OpenVINO GenAI)")
    levers.add_argument("--cache-size-gb", type=positive_int, default=None, help="KV-cache pool for prefix caching")
    levers.add_argument("--kv-cache-precision", choices=KV_CACHE_PRECISIONS, default=None,
                        help="KV-cache precision (CPU default u8)")
    levers.add_argument("--threads", dest="num_threads", type=positive_int, default=None,
                        help="inference threads (default: all cores)")
    levers.add_argument("--dq-group-size", type=non_negative_int, default=None,
                        help="dynamic-quantization group size, 0 = off (CPU default 32)")
    p.add_argument("--thinking", action="store_true", help="Qwen3 thinking on (better plans, many more tokens)")
    p.add_argument("--search", choices=["auto", "online", "offline"], default=AGENT.search,
                   help="web search, offline notes, or auto (probe the network for ~2.5 s)")
    p.add_argument("--output-dir", help="where the deck and the run log go (default: <workdir>/outputs/agent)")
    p.add_argument("--quiet", action="store_true", help="no live agent output")
    p.set_defaults(handler=cmd_agent)
