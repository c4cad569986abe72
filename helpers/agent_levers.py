"""The agent's speed levers: every way to set up its model's pipeline, one field each, so each lever can be measured
alone and combined against the plain target with OpenVINO GenAI's default settings (the 1.00x reference).

The levers: prefix caching (on by default in OpenVINO GenAI's paged-attention pipelines, so the lever is switching it
off, or sizing its cache), a draft model with a fixed k or a confidence threshold, prompt lookup (agent steps copy a lot
from their context: tool outputs, earlier code), KV-cache precision, thread count and dynamic-quantization group size.
`AgentSetup` describes one combination; `load_agent_model` builds the smolagents model for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .settings import SUITE

KV_CACHE_PRECISIONS = ("u8", "u4", "f16", "bf16", "f32")
LOOKUP_SWEEP_STEP = "agent-lookup-sweep"  # the suite step that varies prompt lookup (its result file's name)
WARM_STEP = "agent-warm"  # the suite step whose pipelines served another task first (its result file's name)


@dataclass(frozen=True)
class AgentSetup:
    """One configuration of the agent's model. The defaults are the plain target with OpenVINO GenAI's defaults."""

    label: str = "target alone (defaults)"
    draft: bool = False  # speculative decoding with the preset's draft
    prompt_lookup: bool = False  # speculative decoding with n-grams from the prompt instead of a draft
    num_assistant_tokens: int | None = None  # k for a draft or prompt lookup
    assistant_confidence_threshold: float | None = None  # draft only: stop drafting below this confidence
    max_ngram_size: int = 3  # prompt lookup
    prefix_caching: bool | None = None  # None: the pipeline's default (on); False: off; True: explicitly on
    cache_size_gb: int | None = None  # KV-cache pool of the paged-attention scheduler; None: OpenVINO GenAI's default
    kv_cache_precision: str | None = None  # None: the device default (u8 on CPU)
    num_threads: int | None = None  # None: the device default (all cores)
    dq_group_size: int | None = None  # dynamic quantization; None: device default (32 on CPU), 0: off

    def __post_init__(self) -> None:
        if self.draft and self.prompt_lookup:
            raise ConfigError(f"{self.label}: use a draft or prompt lookup, not both (OpenVINO GenAI runs one).")
        assisted = self.draft or self.prompt_lookup
        if not assisted and (self.num_assistant_tokens is not None or self.assistant_confidence_threshold is not None):
            raise ConfigError(f"{self.label}: num_assistant_tokens / a confidence threshold need a draft or prompt lookup.")
        if self.prompt_lookup and self.assistant_confidence_threshold is not None:
            raise ConfigError(f"{self.label}: prompt lookup takes a fixed k (num_assistant_tokens), not a threshold.")
        if self.kv_cache_precision is not None and self.kv_cache_precision not in KV_CACHE_PRECISIONS:
            raise ConfigError(f"{self.label}: KV-cache precision must be one of {', '.join(KV_CACHE_PRECISIONS)}, "
                              f"got {self.kv_cache_precision!r}.")
        for name, value, low in (("num_threads", self.num_threads, 1), ("cache_size_gb", self.cache_size_gb, 1),
                                 ("dq_group_size", self.dq_group_size, 0), ("max_ngram_size", self.max_ngram_size, 1)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
                raise ConfigError(f"{self.label}: {name} must be a whole number >= {low}, got {value!r}.")
        if self.cache_size_gb is not None and self.prefix_caching is False:
            raise ConfigError(f"{self.label}: cache_size_gb sizes the prefix cache; it means nothing with prefix caching off.")

    @property
    def speculative(self) -> bool:
        return self.draft or self.prompt_lookup

    def properties(self) -> dict[str, Any]:
        """OpenVINO compile properties for target (and draft)."""
        props: dict[str, Any] = {}
        if self.kv_cache_precision is not None:
            props["KV_CACHE_PRECISION"] = self.kv_cache_precision
        if self.num_threads is not None:
            props["INFERENCE_NUM_THREADS"] = self.num_threads
        if self.dq_group_size is not None:
            props["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = self.dq_group_size
        return props

    def describe(self) -> dict[str, Any]:
        """Every field that differs from the defaults (what this configuration changes)."""
        defaults = asdict(AgentSetup())
        return {name: value for name, value in asdict(self).items() if name != "label" and value != defaults[name]}


def load_agent_model(setup: AgentSetup, target_dir: str | Path, device: str = "CPU", draft_dir: str | Path | None = None,
                     properties: dict[str, Any] | None = None, **model_kwargs: Any) -> Any:
    """The agent's `agent_model.OpenVINOGenAIModel` for `setup` (`model_kwargs`: max_new_tokens, enable_thinking ...).

    `properties`: extra OpenVINO properties under the setup's own (e.g. the suite's exact-precision settings)."""
    from .agent_model import OpenVINOGenAIModel
    from .generation import context_length, load_pipeline

    if setup.draft and draft_dir is None:
        raise ConfigError(f"{setup.label}: this configuration uses a draft; pass draft_dir.")
    pipe = load_pipeline(target_dir, device, draft_dir=draft_dir if setup.draft else None,
                         prompt_lookup=setup.prompt_lookup, prefix_caching=setup.prefix_caching,
                         cache_size_gb=setup.cache_size_gb, **{**(properties or {}), **setup.properties()})
    return OpenVINOGenAIModel(
        pipe, speculative=setup.draft, prompt_lookup=setup.prompt_lookup, label=setup.label,
        num_assistant_tokens=setup.num_assistant_tokens, assistant_confidence_threshold=setup.assistant_confidence_threshold,
        max_ngram_size=setup.max_ngram_size if setup.prompt_lookup else None,
        context_length=model_kwargs.pop("context_length", None) or context_length(target_dir), **model_kwargs,
    )


def draft_setup(k: int) -> AgentSetup:
    """The preset's draft proposing `k` tokens per step, everything else at OpenVINO GenAI's defaults."""
    return AgentSetup(f"draft k={k}", draft=True, num_assistant_tokens=k)


def lookup_setup(k: int) -> AgentSetup:
    """Prompt lookup proposing `k` tokens per step (n-grams of 3), everything else at OpenVINO GenAI's defaults."""
    return AgentSetup(f"prompt lookup k={k}", prompt_lookup=True, num_assistant_tokens=k)


def lever_setups(k: int = 3, lookup_k: int = 5, threshold: float = SUITE.confidence_threshold) -> list[AgentSetup]:
    """The reference, then every lever alone (the suite measures them interleaved, losers included)."""
    return [
        AgentSetup(),
        AgentSetup("prefix caching off", prefix_caching=False),
        draft_setup(k),
        AgentSetup(f"draft threshold={threshold:g}", draft=True, assistant_confidence_threshold=threshold),
        lookup_setup(lookup_k),
        AgentSetup("KV cache f16", kv_cache_precision="f16"),
        AgentSetup("DQ off", dq_group_size=0),
    ]


def combined_setups(k: int = 3, lookup_k: int = 5, threshold: float = SUITE.confidence_threshold) -> list[AgentSetup]:
    """The levers combined: each speculative lever with the setting that helped alone in single runs on this CPU
    (dynamic quantization off); the suite's agent step measures them against the levers alone."""
    return [AgentSetup(f"combined: prompt lookup k={lookup_k}, DQ off", prompt_lookup=True,
                       num_assistant_tokens=lookup_k, dq_group_size=0),
            AgentSetup(f"combined: draft threshold={threshold:g}, DQ off", draft=True,
                       assistant_confidence_threshold=threshold, dq_group_size=0)]


def lookup_sweep_setups(lookup_k: int = 5) -> list[AgentSetup]:
    """Prompt lookup around `lookup_k` (the suite's agent-lookup-sweep step): `lookup_k` itself as the control, fewer
    and more tokens per guess, and shorter and longer n-grams to match."""
    fewer, more = max(lookup_k - 2, 1), lookup_k * 2
    return [lookup_setup(lookup_k), lookup_setup(fewer), lookup_setup(more),
            *(AgentSetup(f"prompt lookup k={lookup_k}, n-gram {n}", prompt_lookup=True, num_assistant_tokens=lookup_k,
                         max_ngram_size=n) for n in (2, 5))]


def warm_setups(k: int = 3, lookup_k: int = 5) -> list[AgentSetup]:
    """The speculative levers again for the suite's agent-warm step, where every pipeline has served another task
    before the timed one (its system prompt is in the prefix cache): does the lever's gain grow once the first prefill
    is gone?"""
    return [lookup_setup(lookup_k), draft_setup(k)]


def preset_model_setups(recorded: dict[str, dict[str, Any]]) -> dict[str, AgentSetup]:
    """The configurations of a suite agent step (``{label: AgentSetup.describe()}`` as its result records them) that
    run the preset's own models: the levers and their combinations, rebuilt; not the pruned or trimmed drafts, which
    need folders the preset does not have."""
    rebuilt = {label.removeprefix("agent: "): AgentSetup(label.removeprefix("agent: "), **fields)
               for label, fields in recorded.items()}
    ks = {s.num_assistant_tokens for s in rebuilt.values() if s.draft and s.num_assistant_tokens}
    lookup_ks = {s.num_assistant_tokens for s in rebuilt.values() if s.prompt_lookup and s.num_assistant_tokens}
    thresholds = {s.assistant_confidence_threshold for s in rebuilt.values() if s.assistant_confidence_threshold}
    thresholds = thresholds or {SUITE.confidence_threshold}
    known = {s.label: s for k in ks or {3} for lookup_k in lookup_ks or {5} for threshold in thresholds
             for s in [*lever_setups(k, lookup_k, threshold), *combined_setups(k, lookup_k, threshold),
                       *lookup_sweep_setups(lookup_k)]}
    return {label: setup for label, setup in rebuilt.items() if label in known and known[label] == setup}


def default_setup(device: str, k: int = 3, results: str | Path | Sequence[str | Path] | None = None
                  ) -> tuple[AgentSetup, str]:
    """The agent's default configuration for `device`, and the measured reason for it (printed by the agent command).

    On CPU: the configuration that was fastest end to end (median task speedup against the plain target in its own
    step) in the benchmark suite's agent steps on the offline pair (`results`: their JSON files; default: the
    committed agent.json and agent-lookup-sweep.json), among those that run the preset's own models and wrote every
    deck their reference wrote; OpenVINO GenAI's defaults when none was faster or nothing is measured. Elsewhere: the
    draft with the blog's k=3 (not measured here: no GPU)."""
    if not device.upper().startswith("CPU"):
        return (draft_setup(k),
                f"the blog's setting (speculative decoding, k={k}); not measured on {device} here")
    from .reference import agent_path, agent_reference

    if results is None:
        paths = [agent_path(), agent_path(step=LOOKUP_SWEEP_STEP)]
    else:
        paths = [Path(results)] if isinstance(results, (str, Path)) else [Path(p) for p in results]
    timed, damaged = [], []
    for path in paths:
        found = agent_reference(path=path)
        if not found.measured or not found.setups:
            damaged += [str(path)] if path.is_file() else []
            continue
        decks: dict[str, int] = {}
        for run in found.runs:
            decks[run["label"]] = decks.get(run["label"], 0) + len(run.get("decks") or [])
        candidates = preset_model_setups(found.setups)
        timed += [(row["task_speedup"], row, candidates[row["label"].removeprefix("agent: ")], found.source)
                  for row in found.rows if row["label"].removeprefix("agent: ") in candidates
                  and row.get("task_speedup") and decks.get(row["label"], 0) >= decks.get(found.reference or "", 0)]
    if not timed:
        if damaged:
            return AgentSetup(), (f"OpenVINO GenAI's defaults: {', '.join(damaged)} cannot be read as agent results "
                                  "(restore with `git checkout -- <file>`, or measure again with the suite)")
        return AgentSetup(), "OpenVINO GenAI's defaults: the suite's agent step has not measured the levers yet"
    speedup, row, setup, where = max(timed, key=lambda t: t[0])
    if speedup <= 1.0:
        return AgentSetup(), f"no lever was faster end to end than OpenVINO GenAI's defaults in {where}"
    low, high = row.get("task_speedup_lo"), row.get("task_speedup_hi")
    spread = f", IQR {low:.2f}-{high:.2f}" if low is not None and high is not None else ""
    return (setup, f"the fastest end to end in {where}: {speedup:.2f}x the target with OpenVINO GenAI's defaults "
                   f"(median of {row.get('runs')} runs{spread}; {row.get('agent_seconds', 0):.0f} s a task)")
