"""`python -m helpers suite` (also `python benchmarks/run_suite.py`): the resumable benchmark suite of a preset."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..settings import DISTILL, HEAL_RECIPES, SUITE, heal_recipe
from ..tables import markdown_table
from .common import (
    add_command,
    check_output_file,
    invocation,
    model_options,
    non_negative_int,
    positive_float,
    positive_int,
    resolve_device,
)

if TYPE_CHECKING:
    from ..pruned_drafts import HealingPlan


# how --list shows a step's status
LISTED_STATUS = {"done": "done", "todo": "todo",
                 "stale": "stale: measured with other settings (move its JSON away to measure again)"}


def healing_plan(args: argparse.Namespace) -> HealingPlan | None:
    """The pruning + healing settings from the command line (None without --prune-depths)."""
    from ..pruned_drafts import HealingPlan

    if not args.prune_depths:
        return None
    recipe = heal_recipe(args.heal_recipe)
    overrides = {name: value for name, value in (("steps", args.heal_steps), ("learning_rate", args.heal_lr),
                                                 ("batch_size", args.heal_batch_size),
                                                 ("max_length", args.heal_max_length),
                                                 ("neighbour_layers", args.heal_neighbour_layers)) if value is not None}
    if args.heal_bf16:
        overrides["bf16"] = True
    if "steps" in overrides:  # warm-up and checkpoints follow a changed step count
        steps = overrides["steps"]
        overrides.update(warmup_steps=min(recipe.warmup_steps, max(1, steps // 10)), save_steps=max(1, steps // 3))
    if args.heal_warmup_steps is not None:
        overrides["warmup_steps"] = args.heal_warmup_steps
    if args.heal_save_steps is not None:
        overrides["save_steps"] = args.heal_save_steps
    heal = None if args.no_heal else replace(recipe, **overrides)
    return HealingPlan(depths=tuple(args.prune_depths), prompts=args.distill_prompts,
                       max_new_tokens=args.distill_max_new_tokens, heal=heal, repair=args.repair,
                       head_tokens=tuple(args.head_tokens or ()))


def cmd_suite(args: argparse.Namespace) -> int:
    from ..presets import get_preset
    from ..prompts import builtin_prompts, load_prompts
    from ..speculative import EXACT_PROPERTIES
    from ..suite import SuiteSettings, prepare_models, run_suite, selected_steps, step_status, steps_to_measure

    settings = SuiteSettings(
        preset=get_preset(args.preset),
        prompts=load_prompts(args.prompts) if args.prompts else builtin_prompts(),
        ks=tuple(args.num_assistant_tokens), lookup_ks=tuple(args.lookup_k), draft_formats=tuple(args.draft_formats),
        max_new_tokens=args.max_new_tokens,
        repeats=args.repeats, warmup=args.warmup, device=resolve_device(args),
        properties=dict(EXACT_PROPERTIES) if args.exact else {},
        results_dir=Path(args.results_dir) if args.results_dir else None, steps=tuple(args.steps or ()),
        plan=healing_plan(args), pruned_k=args.pruned_k, agent=not args.no_agent, agent_repeats=args.agent_repeats,
        agent_max_steps=args.agent_max_steps, agent_max_new_tokens=args.agent_max_new_tokens, agent_search=args.search,
        agent_task=args.agent_task, workdir=args.workdir,
    )
    if args.no_agent and settings.steps:  # name the switch, not "unknown step"
        switched_off = ({s.name for s in replace(settings, agent=True).steps_planned()}
                        - {s.name for s in settings.steps_planned()}) & set(settings.steps)
        if switched_off:
            raise ConfigError(f"Step(s) {', '.join(sorted(switched_off))} are switched off by --no-agent: drop "
                              "--no-agent, or leave those steps out of --steps.")
    if args.list:
        print(markdown_table([{"step": s.name, "status": LISTED_STATUS[step_status(s, settings)],
                               "configurations": len(s.runs) + 1,
                               "purpose": s.purpose} for s in selected_steps(settings)]))
        return 0
    check_output_file(settings.folder / "summary.json", "--results-dir")  # before hours of work it could not save
    if args.prepare_only:
        models = prepare_models(settings, steps_to_measure(settings, selected_steps(settings)))
        print(markdown_table([{"model": str(key), "folder": str(path)} for key, path in sorted(models.items(), key=str)]))
        return 0
    print(markdown_table(run_suite(settings, invocation(args.argv))))
    print(f"\nsummary: {settings.folder / 'summary.md'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    recipe = heal_recipe("cpu-suite")
    p = add_command(sub, "suite", "resumable benchmark suite: target int4/int8 alone, int4/int8 drafts (k sweep), "
                                  "prompt lookup, pruned + healed drafts, the agent task",
                    "Every decoding configuration of a preset, each step interleaved against the int4 target alone, "
                    "written to benchmarks/results/<preset>/ (one JSON per step, summary.md, summary.json, plots). A "
                    "finished step is skipped, so an interrupted suite continues where it stopped.",
                    ["--preset qwen2.5-coder-1.5b-offline -k 3 5 --repeats 2 --prune-depths 4 8 --heal-bf16",
                     "--preset tiny --list"],
                    parents=[model_options(target=False)])
    p.add_argument("--num-assistant-tokens", "-k", type=positive_int, nargs="+", default=list(SUITE.assistant_tokens),
                   metavar="K", help="k values for the unpruned drafts")
    p.add_argument("--lookup-k", type=positive_int, nargs="+", default=list(SUITE.lookup_tokens), metavar="K",
                   help="k values for prompt lookup")
    p.add_argument("--draft-formats", nargs="+", choices=["int8", "int4"], default=list(SUITE.draft_formats),
                   help="draft precisions to pair with each target precision")
    p.add_argument("--prompts", help="JSONL file of prompts; default: the built-in set")
    p.add_argument("--max-new-tokens", type=positive_int, default=SUITE.max_new_tokens, help="tokens per answer")
    p.add_argument("--repeats", type=positive_int, default=SUITE.repeats, help="timed runs per prompt and configuration")
    p.add_argument("--warmup", type=non_negative_int, default=SUITE.warmup, help="untimed runs per configuration")
    p.add_argument("--exact", action="store_true", help="f32 inference and KV cache, no dynamic quantization")
    p.add_argument("--results-dir", help="default: benchmarks/results/<preset>")
    p.add_argument("--steps", nargs="+", metavar="STEP", help="run only these steps (see --list)")
    p.add_argument("--list", action="store_true", help="show the steps and which are done, then exit")
    p.add_argument("--prepare-only", action="store_true",
                   help="convert, prune and heal every model the steps to do need, then exit (measure later, on a quiet "
                        "machine)")
    g = p.add_argument_group("pruned + healed drafts (steps pruned-drafts and lm-head-int4; off without --prune-depths)")
    g.add_argument("--prune-depths", type=positive_int, nargs="+", metavar="N", help="layers to remove, one draft per value")
    g.add_argument("--pruned-k", type=positive_int, default=SUITE.pruned_k,
                   help="num_assistant_tokens for the pruned-draft and agent steps")
    g.add_argument("--distill-prompts", type=positive_int, default=DISTILL.prompts,
                   help="target answers to heal on: the 120 built-in prompts, then standard-library coding tasks")
    g.add_argument("--distill-max-new-tokens", type=positive_int, default=DISTILL.max_new_tokens,
                   help="tokens per target answer")
    g.add_argument("--repair", action="store_true",
                   help="also repair each cut without training (ReplaceMe: a least-squares map folded into the layer "
                        "before it); healing then starts from the repaired draft")
    g.add_argument("--no-heal", action="store_true", help="no fine-tuning (plain and repaired drafts only)")
    g.add_argument("--head-tokens", type=positive_int, nargs="+", metavar="N",
                   help="also each draft with its output layer trimmed to the N most frequent tokens of the target's "
                        "answers (FR-Spec), e.g. 32768")
    g.add_argument("--heal-recipe", choices=list(HEAL_RECIPES), default="cpu-suite",
                   help="named healing settings (settings.HEAL_RECIPES); the options below override single fields")
    g.add_argument("--heal-steps", type=positive_int, help=f"optimizer steps per pruned draft (cpu-suite: {recipe.steps})")
    g.add_argument("--heal-lr", type=positive_float, help=f"peak learning rate (cpu-suite: {recipe.learning_rate:g})")
    g.add_argument("--heal-batch-size", type=positive_int, help=f"examples per step (cpu-suite: {recipe.batch_size})")
    g.add_argument("--heal-max-length", type=positive_int, help=f"tokens per example (cpu-suite: {recipe.max_length})")
    g.add_argument("--heal-warmup-steps", type=non_negative_int,
                   help=f"linear warm-up steps (cpu-suite: {recipe.warmup_steps}; with --heal-steps: a tenth of them, at most "
                        "that)")
    g.add_argument("--heal-save-steps", type=positive_int, metavar="N",
                   help=f"steps between checkpoints, where held-out agreement is measured and the best weights kept "
                        f"(cpu-suite: {recipe.save_steps}; with --heal-steps: a third of them)")
    g.add_argument("--heal-neighbour-layers", type=non_negative_int, metavar="N",
                   help=f"kept layers trained on each side of the cut; 0: every layer (cpu-suite: {recipe.neighbour_layers})")
    g.add_argument("--heal-bf16", action="store_true", help="bfloat16 autocast for healing (GPUs; on an AMX CPU: "
                   "as good as fp32, speed not settled)")
    a = p.add_argument_group("agent step")
    a.add_argument("--no-agent", action="store_true", help="skip the slide-deck agent step")
    a.add_argument("--agent-repeats", type=positive_int, default=SUITE.agent_repeats, help="runs per configuration")
    a.add_argument("--agent-max-steps", type=positive_int, default=SUITE.agent_max_steps, help="agent steps per run")
    a.add_argument("--agent-max-new-tokens", type=positive_int, default=SUITE.agent_max_new_tokens,
                   help="tokens per model call")
    a.add_argument("--agent-task", default="", help="default: the blog's task, with the search step spelled out")
    a.add_argument("--search", choices=["auto", "online", "offline"], default="auto",
                   help="the agent's search: web, offline notes, or auto (probe the network first)")
    p.set_defaults(handler=cmd_suite)
