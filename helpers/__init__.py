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
- ``pruning``: angular distances, depth pruning, distillation data and healing
- ``agent``: a smolagents model on OpenVINO GenAI and the slide-deck tools
- ``plots``: matplotlib figures for all of the above
"""

__version__ = "0.1.0"
