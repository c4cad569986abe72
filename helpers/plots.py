"""Matplotlib figures for the notebooks. Each function takes result data and returns a Figure (nothing is shown or saved
here; the notebook displays it, `save_figure` writes it)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def _detached(make_figure: Callable[..., Any]) -> Callable[..., Any]:
    """Close the figure in pyplot once made: the notebook then shows the returned figure exactly once (the inline
    backend would otherwise also show every open figure at the end of the cell)."""

    @functools.wraps(make_figure)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        figure = make_figure(*args, **kwargs)
        _pyplot().close(figure)
        return figure

    return wrapper


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


@_detached
def plot_benchmark_summary(rows: Sequence[Mapping[str, Any]], title: str = "Benchmark summary") -> Any:
    """Three panels per configuration: time to first token, time per output token (with IQR), throughput."""
    plt = _pyplot()
    labels = [str(r["label"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].barh(labels, [r["ttft_ms"] for r in rows], color="#4c72b0")
    axes[0].set_xlabel("TTFT (ms, median)")
    half_iqr = [(r.get("tpot_iqr_ms") or 0) / 2 for r in rows]
    low = [min(h, r["tpot_ms"]) for h, r in zip(half_iqr, rows, strict=True)]  # a time is never below 0
    axes[1].barh(labels, [r["tpot_ms"] for r in rows], xerr=[low, half_iqr], color="#55a868")
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


# Axis labels for the summary keys that plots show.
METRIC_LABELS = {
    "ttft_ms": "TTFT: time to first token (ms, median)",
    "tpot_ms": "TPOT: time per output token (ms, median)",
    "throughput_tps": "throughput (tokens/s, median)",
    "generated_tokens": "generated tokens",
    "speedup": "speedup over the baseline (median of pairs)",
}


@_detached
def plot_per_prompt(rows: Sequence[Mapping[str, Any]], metric: str = "tpot_ms", title: str | None = None) -> Any:
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
    ax.set_xlabel("prompt")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(title or f"{METRIC_LABELS.get(metric, metric).split(' (')[0]} per prompt")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


@_detached
def plot_speedup_vs_k(rows: Sequence[Mapping[str, Any]], title: str = "Measured vs predicted speedup") -> Any:
    """Measured speedup (median and IQR of per-pair ratios) and the formula's prediction against k."""
    plt = _pyplot()
    points = sorted((r for r in rows if r.get("k") and r.get("predicted_speedup") is not None
                     and r.get("speedup") is not None), key=lambda r: r["k"])  # undefined speedups are not drawn
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


@_detached
def plot_speedup_model(acceptance_rates: Sequence[float], cost_ratios: Sequence[float], max_k: int = 10,
                       title: str = "The formula: speedup = E[tokens per step] / (k·c + 1)") -> Any:
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
    ax.set_ylabel("predicted speedup over the target alone")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


@_detached
def plot_forward_cost(series: Mapping[str, Sequence[Mapping[str, Any]]],
                      title: str = "What one forward appending n tokens costs") -> Any:
    """t(n)/t(1) against n (median and quartiles) for each series of `helpers.forward_cost` rows, between the two
    bounds: 1 (checking n tokens is free: memory-bound) and n (it costs n one-token steps: compute-bound)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    top = 1
    for label, rows in series.items():
        points = sorted(rows, key=lambda r: r["n"])
        if not points:
            continue
        ns = [r["n"] for r in points]
        ratios = [r["ratio"] for r in points]
        low = [max(r["ratio"] - r["ratio_lo"], 0.0) for r in points]
        high = [max(r["ratio_hi"] - r["ratio"], 0.0) for r in points]
        ax.errorbar(ns, ratios, yerr=[low, high], marker="o", capsize=3, label=label)
        top = max(top, *ns)
    bounds = list(range(1, top + 1))
    ax.plot(bounds, [1.0] * len(bounds), color="grey", linewidth=1, label="1: free (memory-bound)")
    ax.plot(bounds, bounds, color="grey", linewidth=1, linestyle=":", label="n: n one-token steps (compute-bound)")
    ax.set_xlabel("n = tokens appended to the KV cache in one forward")
    ax.set_ylabel("t(n) / t(1)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


@_detached
def plot_slide_chart(labels: Sequence[str], values: Sequence[float], title: str = "", ylabel: str = "") -> Any:
    """A plain bar chart sized for a slide (the slide tool inserts it as a picture)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    bars = ax.bar(list(labels), list(values), color="#4c72b0")
    ax.bar_label(bars, fmt="%g", fontsize=9)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


@_detached
def plot_slide_preview(title: str, lines: Sequence[str], pictures: Sequence[bytes] = (), number: int = 1,
                       is_title: bool = False) -> Any:
    """A 16:9 sketch of one slide: its title, text lines and pictures (for machines without LibreOffice)."""
    import io
    import textwrap

    import matplotlib.image as mpimg

    plt = _pyplot()
    fig = plt.figure(figsize=(6.4, 3.6))
    frame = fig.add_axes((0, 0, 1, 1))  # a full-size frame keeps the slide's shape when saved with a tight bbox
    frame.add_patch(plt.Rectangle((0.002, 0.002), 0.996, 0.996, fill=False, edgecolor="#999999", linewidth=2))
    frame.axis("off")
    if is_title:
        fig.text(0.5, 0.58, textwrap.fill(title, 40), ha="center", va="center", fontsize=18, weight="bold")
        fig.text(0.5, 0.38, "\n".join(lines), ha="center", va="center", fontsize=11, color="#555555")
    else:
        fig.text(0.05, 0.9, textwrap.shorten(title, 60), ha="left", va="top", fontsize=15, weight="bold")
        width = 48 if pictures else 90
        body = "\n".join(textwrap.fill(line, width, subsequent_indent="   ") for line in lines)
        fig.text(0.06, 0.74, body, ha="left", va="top", fontsize=8.5, linespacing=1.5)
        for i, blob in enumerate(pictures[:1]):
            ax = fig.add_axes((0.55, 0.06, 0.42, 0.7 - i * 0.1))
            ax.imshow(mpimg.imread(io.BytesIO(blob)))
            ax.axis("off")
    fig.text(0.97, 0.03, str(number), ha="right", va="bottom", fontsize=8, color="#888888")
    return fig


@_detached
def plot_agent_steps(rows: Sequence[Mapping[str, Any]], title: str = "Agent steps") -> Any:
    """Per agent step and configuration: wall time (bars) and draft acceptance rate (markers, right panel).

    `rows` carry ``label``, ``step``, ``seconds`` and optionally ``acceptance_rate`` (None without a draft).
    """
    plt = _pyplot()
    labels = list(dict.fromkeys(str(r["label"]) for r in rows))
    steps = sorted({int(r["step"]) for r in rows})
    width = 0.8 / max(len(labels), 1)
    fig, (ax_time, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.6))
    for i, label in enumerate(labels):
        mine = [r for r in rows if str(r["label"]) == label]
        seconds = {int(r["step"]): r["seconds"] for r in mine}
        ax_time.bar([s + i * width for s in steps], [seconds.get(s, 0) for s in steps], width, label=label, color=f"C{i}")
        accepted = [(int(r["step"]), r["acceptance_rate"]) for r in mine if r.get("acceptance_rate") is not None]
        if accepted:
            ax_acc.plot([s for s, _ in accepted], [a for _, a in accepted], marker="o", linestyle="", label=label,
                        color=f"C{i}")
    ax_time.set_xticks([s + width * (len(labels) - 1) / 2 for s in steps], [str(s) for s in steps])
    ax_time.set_xlabel("agent step")
    ax_time.set_ylabel("wall time (s)")
    ax_time.legend(fontsize=8)
    ax_acc.set_xticks(steps)
    ax_acc.set_ylim(-0.05, 1.05)
    ax_acc.set_xlabel("agent step")
    ax_acc.set_ylabel("draft acceptance rate")
    for ax in (ax_time, ax_acc):
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@_detached
def plot_step_prefill(steps: Sequence[Mapping[str, Any]], title: str = "Where an agent step's time goes") -> Any:
    """Per agent step: the prefill of the re-sent conversation (TTFT) stacked under the rest of the step's wall time.

    `steps` are `agent.AgentRun.steps` (``step``, ``seconds``, ``ttft_ms``, optionally ``work`` and ``input_tokens``).
    """
    plt = _pyplot()
    xs = list(range(len(steps)))
    prefill = [(s.get("ttft_ms") or 0.0) / 1000 for s in steps]
    rest = [max((s.get("seconds") or 0.0) - p, 0.0) for s, p in zip(steps, prefill, strict=True)]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.bar(xs, prefill, color="#c44e52", label="prefill of the conversation (TTFT)")
    ax.bar(xs, rest, bottom=prefill, color="#4c72b0", label="decoding, tool calls and the rest")
    names = [f"{s['step']}: {s.get('work', '')}\n{s.get('input_tokens') or '?'} tokens in" for s in steps]
    ax.set_xticks(xs, names, fontsize=8)
    ax.set_xlabel("agent step: work (conversation tokens re-sent)")
    ax.set_ylabel("wall time (s)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _grouped_bars(ax: Any, rows: Sequence[Mapping[str, Any]], group: str, series: str, value: str,
                  names: Sequence[str] | None = None) -> None:
    """Bars of `value`, one group per distinct `group` (x axis) and one colour per `series` name (in `names` order, so
    two panels given the same names colour a series alike). Missing values (None) leave a gap."""
    groups = list(dict.fromkeys(str(r[group]) for r in rows))
    names = list(names or dict.fromkeys(str(r[series]) for r in rows))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        by_group = {str(r[group]): r.get(value) for r in rows if str(r[series]) == name}
        shown = [(j, by_group[g]) for j, g in enumerate(groups) if by_group.get(g) is not None]
        if shown:
            ax.bar([j + i * width for j, _ in shown], [v for _, v in shown], width, label=name, color=f"C{i % 10}")
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(groups))], groups, fontsize=8)
    ax.grid(axis="y", alpha=0.3)


@_detached
def plot_prefix_cache(rows: Sequence[Mapping[str, Any]], title: str = "Prefix caching: time to first token") -> Any:
    """TTFT of each call (``call``) per pipeline (``pipeline``), log scale: a prompt served from the cache is 10-100x
    faster to start, so both ends stay readable."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 3.6))
    _grouped_bars(ax, rows, "call", "pipeline", "ttft_ms")
    ax.set_yscale("log")
    ax.set_xlabel("call (in order, on a fresh pipeline)")
    ax.set_ylabel("TTFT (ms, log scale)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


@_detached
def plot_agent_work(rows: Sequence[Mapping[str, Any]], title: str = "Agent steps by kind of work") -> Any:
    """Per kind of step work (search, slides, answer, code) and configuration: median prefill per step, and the draft's
    acceptance rate (configurations without a draft have none). `rows` are `agent.AgentComparison.work_rows`; one
    legend, one colour per configuration in both panels."""
    plt = _pyplot()
    names = list(dict.fromkeys(str(r["label"]) for r in rows))
    fig, (ax_prefill, ax_acc) = plt.subplots(1, 2, figsize=(12, 3.6))
    _grouped_bars(ax_prefill, rows, "work", "label", "ttft_ms", names)
    ax_prefill.set_ylabel("prefill per step (ms, median)")
    accepted = [r for r in rows if r.get("acceptance_rate") is not None]
    if accepted:
        _grouped_bars(ax_acc, [r for r in rows if r.get("work") in {a["work"] for a in accepted}], "work", "label",
                      "acceptance_rate", names)
    else:
        ax_acc.text(0.5, 0.5, "no draft acceptance recorded", ha="center", va="center", transform=ax_acc.transAxes)
    ax_acc.set_ylim(0, 1.05)
    ax_acc.set_ylabel("draft acceptance rate (median)")
    for ax in (ax_prefill, ax_acc):
        ax.set_xlabel("kind of step work")
    fig.legend(*ax_prefill.get_legend_handles_labels(), fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@_detached
def plot_dq_speedup_vs_length(rows: Sequence[Mapping[str, Any]], title: str = "Dynamic quantization: on vs off") -> Any:
    """TTFT and TPOT speedup of DQ on over DQ off (median and quartiles of paired ratios) against prompt length.

    `rows` come from ``dynamic_quant.timing_rows``. The dotted line marks 64 tokens, at or below which GPUs skip DQ.
    """
    plt = _pyplot()
    points = sorted((r for r in rows if r.get("prompt tokens")), key=lambda r: r["prompt tokens"])
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for metric, marker in (("TTFT", "o"), ("TPOT", "s")):
        xs = [r["prompt tokens"] for r in points]
        ys = [r[f"{metric} speedup"] for r in points]
        low = [max(r[f"{metric} speedup"] - r[f"{metric} speedup lo"], 0) for r in points]
        high = [max(r[f"{metric} speedup hi"] - r[f"{metric} speedup"], 0) for r in points]
        ax.errorbar(xs, ys, yerr=[low, high], marker=marker, capsize=3, label=f"{metric} speedup (off / on)")
    ax.axhline(1.0, color="grey", linewidth=1)
    ax.axvline(64, color="grey", linestyle=":", linewidth=1)
    ax.text(64, ax.get_ylim()[1], " GPU: no DQ at ≤ 64 tokens", fontsize=7, va="top", color="grey")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("prompt tokens")
    ax.set_ylabel("speedup (> 1: DQ faster)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


@_detached
def plot_dq_group_tradeoff(rows: Sequence[Mapping[str, Any]], title: str = "What each DQ group size costs") -> Any:
    """Logit error against DQ off, and the first generated token that differs, per group size (and model).

    `rows` come from ``dynamic_quant.accuracy``; settings that repeat a group size (the default) are drawn once.
    """
    plt = _pyplot()
    models = list(dict.fromkeys(r["model"] for r in rows))
    sizes = sorted({int(r["group_size"]) for r in rows})
    width = 0.8 / max(len(models), 1)
    fig, (ax_err, ax_div) = plt.subplots(1, 2, figsize=(11, 3.6))
    for i, model in enumerate(models):
        by_size = {int(r["group_size"]): r for r in rows if r["model"] == model}
        xs = [j + i * width for j in range(len(sizes))]
        colour = f"C{i}"
        maxima = [by_size[s]["max Δ logit"] if s in by_size else 0 for s in sizes]
        ax_err.bar(xs, [by_size[s]["mean Δ logit"] if s in by_size else 0 for s in sizes], width, color=colour,
                   alpha=0.6, label=f"{model}: mean")
        shown = [(x, top) for x, top in zip(xs, maxima, strict=True) if top > 0]
        ax_err.scatter([x for x, _ in shown], [top for _, top in shown], marker="v", color=colour, zorder=3,
                       label=f"{model}: max")
        for x, top in zip(xs, maxima, strict=True):
            if top == 0:  # identical to DQ off: the plugin did not apply this group size
                ax_err.text(x, 0, "not applied", ha="center", va="bottom", fontsize=7, rotation=90)
        firsts = [by_size.get(s, {}).get("first divergent token") for s in sizes]
        bars = ax_div.bar(xs, [f if f is not None else 0 for f in firsts], width, color=colour, label=model)
        for bar, first in zip(bars, firsts, strict=True):
            if first is None:
                ax_div.text(bar.get_x() + bar.get_width() / 2, 0, "same", ha="center", va="bottom", fontsize=7, rotation=90)
    centre = [j + width * (len(models) - 1) / 2 for j in range(len(sizes))]
    for ax in (ax_err, ax_div):
        ax.set_xticks(centre, [str(s) for s in sizes])
        ax.set_xlabel("DYNAMIC_QUANTIZATION_GROUP_SIZE")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    ax_err.set_ylabel("|logit − logit(DQ off)|")
    ax_div.set_ylabel("first divergent generated token (earliest)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


@_detached
def plot_angular_distances(matrix: Sequence[Sequence[float | None]], chosen: tuple[int, int] | None = None,
                           title: str = "Angular distance d(l, n) between a block's input and output") -> Any:
    """Heatmap of d(l, n): rows are block sizes n = 1.., columns start layers l; the chosen (start, size) is boxed.

    Light cells are blocks that change the hidden state least, the candidates for removal (``pruning.angular_distances``);
    a red triangle marks the lightest cell of each row.
    """
    import numpy as np

    plt = _pyplot()
    data = np.ma.masked_invalid(np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float))
    rows, columns = data.shape
    fig, ax = plt.subplots(figsize=(min(max(7.0, 2 + 0.6 * columns), 14), min(max(4.5, 1.5 + 0.5 * rows), 9)))
    image = ax.imshow(data, cmap="viridis_r", aspect="auto", origin="lower")
    low, high = (float(data.min()), float(data.max())) if data.count() else (0.0, 1.0)
    fig.colorbar(image, ax=ax, label="arccos(cos) / π")
    for n in range(rows):
        best = int(np.ma.argmin(data[n])) if data[n].count() else None
        if best is not None:
            ax.plot(best, n - 0.32, marker="^", color="red", markersize=6)  # below the number, not on it
        if columns <= 12:
            for layer in range(columns):
                if not np.ma.is_masked(data[n, layer]):
                    value = float(data[n, layer])
                    dark = high > low and (value - low) / (high - low) > 0.55  # viridis_r is dark at high values
                    ax.text(layer, n, f"{value:.2f}", ha="center", va="center", fontsize=9,
                            color="white" if dark else "black")
    if chosen is not None:
        start, size = chosen
        ax.add_patch(plt.Rectangle((start - 0.5, size - 1.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set_xticks(range(columns))
    ax.set_yticks(range(rows), [str(n + 1) for n in range(rows)])
    ax.set_xlabel("first removed layer l")
    ax.set_ylabel("layers removed n")
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


@_detached
def plot_training_loss(losses: Sequence[tuple[int, float]], resumed_at: int | None = None,
                       title: str = "Healing: loss on the target's answers",
                       ylabel: str = "cross-entropy (answer tokens)", warmup_steps: int = 0) -> Any:
    """Training loss against optimizer step; dashed lines mark the end of the learning-rate warm-up and where a resumed
    run picked up."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    if losses:
        steps, values = zip(*losses, strict=True)
        ax.plot(steps, values, marker=".", linewidth=1)
    if warmup_steps:
        ax.axvline(warmup_steps, color="#c44e52", linestyle=":", linewidth=1, label=f"end of warm-up ({warmup_steps} steps)")
    if resumed_at:
        ax.axvline(resumed_at, color="grey", linestyle="--", linewidth=1, label=f"resumed from checkpoint {resumed_at}")
    if warmup_steps or resumed_at:
        ax.legend(fontsize=8)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


@_detached
def plot_draft_comparison(rows: Sequence[Mapping[str, Any]], title: str = "Drafts as speculative assistants") -> Any:
    """Acceptance rate, and measured against predicted speedup, for each draft (rows from ``pruning.comparison_rows``)."""
    plt = _pyplot()
    drafts = [r for r in rows if r.get("acceptance") is not None and r.get("speedup") is not None]
    labels = [str(r["candidate"]) for r in drafts]
    fig, (ax_acc, ax_speed) = plt.subplots(1, 2, figsize=(11, 3.4))
    ax_acc.barh(labels, [r["acceptance"] for r in drafts], color="#4c72b0")
    ax_acc.set_xlim(0, 1)
    ax_acc.set_xlabel("acceptance rate (median)")
    positions = list(range(len(drafts)))
    ax_speed.barh([p - 0.2 for p in positions], [r["speedup"] for r in drafts], height=0.4, color="#55a868",
                  label="measured (median of pairs)")
    ax_speed.barh([p + 0.2 for p in positions], [r.get("predicted") or 0 for r in drafts], height=0.4, color="#c44e52",
                  label="predicted E[tokens]/(k·c+1)")
    ax_speed.axvline(1.0, color="grey", linewidth=1)
    ax_speed.set_yticks(positions, [])
    ax_speed.set_xlabel("speedup over the target alone")
    ax_speed.legend(fontsize=8)
    for ax in (ax_acc, ax_speed):
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
