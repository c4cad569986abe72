"""Commands that make a cheaper draft: `prune`, `distill-data`, `heal` (notebook 05's pipeline)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..paths import default_output, pruned_dir
from ..settings import DISTILL, heal_recipe
from ..tables import markdown_table
from .common import (
    add_command,
    check_output_file,
    held_out_share,
    model_options,
    non_negative_int,
    positive_float,
    positive_int,
    resolve_device,
    resolve_models,
    seed,
    unit_interval,
)

DISTILL_DATA_FILE = "distill.jsonl"


def cmd_prune(args: argparse.Namespace) -> int:
    # torch and transformers load only for the commands that train or prune (seconds of import time)
    from ..conversion import hf_source
    from ..hf import load_causal_lm
    from ..presets import get_preset
    from ..prompts import load_prompt_source
    from ..pruning import angular_distances, check_block, decoder_layers, deepest_block, prune_model

    source = args.source or hf_source(get_preset(args.preset).draft, args.workdir)
    calibrate = args.start is None and args.method != "deepest"
    # the calibration prompts are read (and refused) before the model loads
    texts = [p.text for p in load_prompt_source(args.calibration, limit=args.samples)] if calibrate else []
    model, tokenizer = load_causal_lm(source)
    num_layers = len(decoder_layers(model))
    if args.start is not None:
        block = check_block(num_layers, args.start, args.layers, args.allow_first, args.allow_last)
        method = "manual"
    elif args.method == "deepest":
        block, method = deepest_block(num_layers, args.layers), "deepest"
    else:
        distances = angular_distances(model, texts, token_mode=args.tokens, max_length=args.max_length, tokenizer=tokenizer)
        print(markdown_table(distances.best_blocks(args.allow_first, args.allow_last)))
        block, method = distances.best_block(args.layers, args.allow_first, args.allow_last), f"angular ({args.tokens} token)"
    del model
    output = args.output or pruned_dir(args.workdir) / f"{Path(str(source)).name}-pruned{args.layers}"
    result = prune_model(source, output, block, method=method, allow_first=args.allow_first, allow_last=args.allow_last,
                         overwrite=args.overwrite)
    print()
    print(markdown_table([result.row()]))
    print(f"\nremoved {block.describe()}; saved to {result.path}; greedy sample: {result.sample!r}")
    return 0


def cmd_distill_data(args: argparse.Namespace) -> int:
    from ..distill import generate_distillation_data
    from ..prompts import load_prompt_source

    device = resolve_device(args)  # the cheap checks first, before a preset is converted
    prompts = load_prompt_source(args.prompts, limit=args.samples, split=args.split, config_name=args.dataset_config,
                                 field=args.field)
    output = args.output or default_output(args.workdir, DISTILL_DATA_FILE)
    check_output_file(output, "--output", reads=[args.prompts])
    target = resolve_models(args, with_draft=False).target
    result = generate_distillation_data(target, prompts, output, device=device,
                                        max_new_tokens=args.max_new_tokens, enable_thinking=args.thinking,
                                        batch_size=args.batch_size)
    print(markdown_table([result.row()]))
    print(f"\nanswers in {Path(output).expanduser().resolve()}")
    return 0


def cmd_heal(args: argparse.Namespace) -> int:
    from ..distill import HealConfig, heal, is_main_process

    config = HealConfig(steps=args.steps, learning_rate=args.lr, batch_size=args.batch_size,
                        gradient_accumulation=args.gradient_accumulation, max_length=args.max_length,
                        warmup_steps=args.warmup_steps, freeze_embeddings=not args.train_embeddings,
                        kl_weight=args.kl_weight, kl_temperature=args.kl_temperature, save_steps=args.save_steps,
                        seed=args.seed, bf16=args.bf16, topk=args.topk if args.topk_file else 0,
                        ce_weight=args.ce_weight, neighbour_layers=args.neighbour_layers,
                        max_grad_norm=args.max_grad_norm, held_out=args.held_out)
    output = args.output or pruned_dir(args.workdir) / f"{Path(args.draft).expanduser().resolve().name}-healed"
    result = heal(args.draft, args.data, output, config, teacher_dir=args.teacher, target_dir=args.target,
                  stop_after_steps=args.stop_after, overwrite=args.overwrite, progress=is_main_process(),
                  topk_path=args.topk_file, cut=args.cut)
    if not is_main_process():  # one report per launch, not one per process
        return 0
    print(markdown_table([result.row()]))
    print(f"\ntraining {result.describe_resume()}")
    selection = result.describe_selection()
    if selection:
        print(selection)
    print(f"{'healed model: ' + str(result.path) if result.action != 'stopped' else 'stopped; run again to continue'}"
          f"  (checkpoints: {result.checkpoints})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..pruning import TOKEN_MODES

    p = add_command(sub, "prune", "depth-prune a Hugging Face draft model (angular distance or deepest layers)",
                    "Measure the angular distance between the input and output of every block of consecutive layers "
                    "(Gromov et al.), remove the block that changes its input least, and save the smaller model.",
                    ["--layers 6", "--source DIR --layers 2 --method deepest --output pruned2"],
                    parents=[model_options(target=False, device=False)])
    p.add_argument("--source", help="Hugging Face folder or hub id to prune (default: the preset's draft)")
    p.add_argument("--output", help="destination folder (default: <workdir>/pruned/<source name>-pruned<N>)")
    p.add_argument("--layers", "-n", type=positive_int, default=1, help="number of consecutive layers to remove")
    p.add_argument("--start", type=non_negative_int, help="remove the block starting at this layer instead of choosing one")
    p.add_argument("--method", choices=["angular", "deepest"], default="angular",
                   help="choose the block by angular distance, or drop the deepest layers before the last (baseline)")
    p.add_argument("--calibration", default="builtin",
                   help="calibration prompts: 'builtin', 'stdlib', 'builtin+stdlib', a JSONL file, or a Hugging Face "
                        "dataset id")
    p.add_argument("--samples", type=positive_int, default=DISTILL.calibration_texts, help="number of calibration prompts")
    p.add_argument("--tokens", choices=TOKEN_MODES, default="last", help="last token (the paper) or all real tokens")
    p.add_argument("--max-length", type=positive_int, default=256, help="tokens per calibration prompt")
    p.add_argument("--allow-first", action="store_true", help="allow removing the first layer")
    p.add_argument("--allow-last", action="store_true", help="allow removing the last layer")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier pruned folder at --output")
    p.set_defaults(handler=cmd_prune)

    p = add_command(sub, "distill-data", "have the OpenVINO target answer prompts (resumable JSONL)",
                    "The target answers prompts greedily, in batches; answers are appended to a JSONL file as they come, "
                    "so a killed run continues where it stopped.",
                    ["--prompts stdlib --samples 500 --output answers.jsonl",
                     "--target DIR --prompts my_prompts.jsonl --output answers.jsonl"],
                    parents=[model_options()])
    p.add_argument("--prompts", default="builtin", help="'builtin' (120 varied prompts), 'stdlib' (~1,100 coding tasks "
                   "made offline from Python's standard library), 'builtin+stdlib' (the first, then the second: the "
                   "benchmark suite's), a JSONL file, or a Hugging Face dataset id "
                   "(e.g. BAAI/Infinity-Instruct; needs `pip install datasets`)")
    p.add_argument("--samples", type=positive_int, default=None, help="number of prompts (default: all; 1000 for datasets)")
    p.add_argument("--dataset-config", help="dataset configuration name (e.g. 0625 for Infinity-Instruct)")
    p.add_argument("--split", default="train", help="dataset split")
    p.add_argument("--field", help="dataset column holding the prompt, if not detected")
    p.add_argument("--output", help=f"JSONL file to append answers to (default: <workdir>/{DISTILL_DATA_FILE})")
    p.add_argument("--max-new-tokens", type=positive_int, default=DISTILL.max_new_tokens, help="tokens per answer")
    p.add_argument("--batch-size", type=positive_int, default=DISTILL.batch_size, help="prompts per generate() call")
    p.add_argument("--thinking", action="store_true", help="Qwen3 thinking on")
    p.set_defaults(handler=cmd_distill_data)

    recipe = heal_recipe("full")
    p = add_command(sub, "heal", "fine-tune a pruned draft on distillation data (transformers.Trainer; resumable)",
                    "Heal a pruned draft on the target's answers with transformers.Trainer. Checkpoints go to "
                    "<output>-checkpoints; running the same command again resumes. On several GPUs: "
                    "accelerate launch -m helpers heal ...",
                    ["--draft pruned6 --data answers.jsonl --steps 200 --bf16",
                     "--draft pruned6 --data answers.jsonl --stop-after 20   # then run again to continue"],
                    parents=[model_options(target=False, device=False, preset=False)])
    p.add_argument("--draft", required=True, help="Hugging Face folder of the pruned draft")
    p.add_argument("--data", required=True, help="JSONL written by distill-data")
    p.add_argument("--output", help="healed model folder (default: <workdir>/pruned/<draft name>-healed)")
    p.add_argument("--steps", type=positive_int, default=recipe.steps, help="optimizer steps")
    p.add_argument("--lr", type=positive_float, default=recipe.learning_rate, help="peak learning rate")
    p.add_argument("--batch-size", type=positive_int, default=recipe.batch_size, help="examples per device and step")
    p.add_argument("--gradient-accumulation", type=positive_int, default=1, help="micro-batches per optimizer step")
    p.add_argument("--max-length", type=positive_int, default=recipe.max_length, help="tokens per example")
    p.add_argument("--warmup-steps", type=non_negative_int, default=recipe.warmup_steps, help="linear warm-up steps")
    p.add_argument("--save-steps", type=positive_int, default=50, help="checkpoint every this many steps")
    p.add_argument("--train-embeddings", action="store_true", help="also train embeddings and lm_head (frozen by default)")
    p.add_argument("--kl-weight", type=unit_interval, default=0.0, help="mix in KL to the teacher (needs --teacher)")
    p.add_argument("--kl-temperature", type=positive_float, default=1.0, help="softmax temperature for the KL term")
    p.add_argument("--teacher", help="Hugging Face folder of the target, for --kl-weight")
    p.add_argument("--topk-file", help="the target's recorded top-k log-probs (soft_distill.record_target_topk): train "
                   "on KL to them instead of the answer tokens alone")
    p.add_argument("--topk", type=positive_int, default=32, help="with --topk-file: how many of the recorded ids to use")
    p.add_argument("--ce-weight", type=unit_interval, default=recipe.ce_weight,
                   help="with --topk-file: share of hard-label cross-entropy mixed into the KL")
    p.add_argument("--neighbour-layers", type=non_negative_int, default=0,
                   help="train only this many kept layers on each side of the cut (needs --cut; 0: every layer)")
    p.add_argument("--cut", type=positive_int, help="index, in the pruned draft, of the first layer after the removed "
                   "block (the block's start in the original)")
    p.add_argument("--max-grad-norm", type=positive_float, default=recipe.max_grad_norm, help="gradient clipping")
    p.add_argument("--held-out", type=held_out_share, default=recipe.held_out,
                   help="share of the records never trained on (kept for measuring agreement)")
    p.add_argument("--target", help="folder with the target's tokenizer, to check the draft matches it")
    p.add_argument("--stop-after", type=positive_int, help="stop after this many steps (run again to continue)")
    p.add_argument("--seed", type=seed, default=0, help="random seed")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (GPUs; on an AMX CPU: as good as fp32, "
                   "speed not settled)")
    p.add_argument("--overwrite", action="store_true", help="discard checkpoints and any healed model at --output")
    p.set_defaults(handler=cmd_heal)
