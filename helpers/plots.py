"""Matplotlib figures for the notebooks. Each function takes result data and returns a Figure (nothing is shown or saved
here; the notebook displays it, `save_figure` writes it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: str | Path) -> Path:
    """Save a figure as PNG (atomically: written to a temporary name, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp, dpi=120, bbox_inches="tight")
    tmp.replace(path)
    return path


def plot_benchmark_summary(rows: Sequence[Mapping[str, Any]], title: str = "") -> Any:
    """Three panels per configuration: time to first token, time per output token (with IQR), throughput."""
    plt = _pyplot()
    labels = [str(r["label"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].barh(labels, [r["ttft_ms"] for r in rows], color="#4c72b0")
    axes[0].set_xlabel("TTFT (ms, median)")
    axes[1].barh(labels, [r["tpot_ms"] for r in rows], xerr=[r.get("tpot_iqr_ms", 0) / 2 for r in rows], color="#55a868")
    axes[1].set_xlabel("TPOT (ms/token, median ± IQR/2)")
    axes[2].barh(labels, [r["throughput_tps"] for r in rows], color="#c44e52")
    axes[2].set_xlabel("throughput (tokens/s)")
    for ax in axes[1:]:
        ax.set_yticklabels([])
    for ax in axes:
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_per_prompt(rows: Sequence[Mapping[str, Any]], metric: str = "tpot_ms") -> Any:
    """One group of bars per prompt, one bar per configuration (rows from ``summary(by_prompt=True)``)."""
    plt = _pyplot()
    prompts = list(dict.fromkeys(r["prompt"] for r in rows))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(prompts)), 3.6))
    for i, label in enumerate(labels):
        values = {r["prompt"]: r[metric] for r in rows if r["label"] == label}
        ax.bar([p + i * width for p in range(len(prompts))], [values.get(p, 0) for p in prompts], width, label=label)
    ax.set_xticks([p + width * (len(labels) - 1) / 2 for p in range(len(prompts))], prompts, rotation=20, ha="right")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_speedup_vs_k(rows: Sequence[Mapping[str, Any]], title: str = "Measured vs predicted speedup") -> Any:
    """Measured speedup (median and IQR of per-pair ratios) and the formula's prediction against k."""
    plt = _pyplot()
    points = sorted((r for r in rows if r.get("k") and r.get("predicted_speedup") is not None), key=lambda r: r["k"])
    fig, ax = plt.subplots(figsize=(6, 3.8))
    if points:
        ks = [r["k"] for r in points]
        measured = [r["speedup"] for r in points]
        low = [r["speedup"] - r["speedup_lo"] for r in points]
        high = [r["speedup_hi"] - r["speedup"] for r in points]
        ax.errorbar(ks, measured, yerr=[low, high], marker="o", capsize=3, label="measured (median, IQR)")
        ax.plot(ks, [r["predicted_speedup"] for r in points], marker="s", linestyle="--",
                label="E[tokens] / (k·c + 1) from measured α, c")
    ax.axhline(1.0, color="grey", linewidth=1)
    ax.set_xlabel("k = num_assistant_tokens (γ)")
    ax.set_ylabel("speedup over target alone")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_speedup_model(acceptance_rates: Sequence[float], cost_ratios: Sequence[float], max_k: int = 10) -> Any:
    """The formula alone: speedup against k for a few (alpha, c) pairs, to build intuition."""
    from .speculative import predicted_speedup

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ks = list(range(1, max_k + 1))
    for alpha in acceptance_rates:
        for c in cost_ratios:
            ax.plot(ks, [predicted_speedup(alpha, k, c) for k in ks], marker=".", label=f"α={alpha:g}, c={c:g}")
    ax.axhline(1.0, color="grey", linewidth=1)
    ax.set_xlabel("k = num_assistant_tokens (γ)")
    ax.set_ylabel("predicted speedup")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
