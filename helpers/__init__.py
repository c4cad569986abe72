"""Helpers for the OpenVINO agent-acceleration tutorial.

One module per concern; importing this package loads nothing heavy (OpenVINO, torch and transformers are imported
inside the functions that need them), so ``import helpers`` is instant and side-effect free. CONTRIBUTING.md shows
the layers and where new code goes.

- ``settings``: every default and environment variable; ``paths``: the work folder (always a parameter)
- ``presets``: the model registry; ``tiny``: the offline tiny Qwen3 pair; ``local_weights``: GGUF files to Hugging Face
- ``conversion``: Hugging Face -> OpenVINO export with NNCF compression, or pre-converted downloads
- ``hf``: loading Hugging Face models, hub errors; ``prompts``: every prompt source; ``devices``: devices and RAM
- ``generation``: loading pipelines (with a draft, prompt lookup, OpenVINO properties), chat prompts, configs
- ``benchmark``: PerfMetrics-based measurement and interleaved comparisons
- ``speculative``: draft-model and prompt-lookup decoding, the speedup formula
- ``dynamic_quant``: dynamic-quantization settings and the check that it is applied
- ``pruning``: angular distances between layer blocks, removing a block, exporting and comparing drafts
- ``distill``: distillation data from the target (resumable) and healing with transformers.Trainer
- ``pruned_drafts``: a preset's draft pruned and healed at several depths (what the suite measures)
- ``agent_model``: a smolagents model on OpenVINO GenAI; ``agent_tools``: search and slide tools;
  ``agent``: running and measuring the agent; ``slides``: the validated python-pptx deck and previews
- ``suite``: the resumable benchmark suite behind benchmarks/run_suite.py
- ``plots``: matplotlib figures; ``tables``: markdown tables; ``fsutil``: atomic files; ``errors``: error classes
- ``commands``: ``python -m helpers ...`` (every argparse line lives there)
"""

__version__ = "0.1.0"
