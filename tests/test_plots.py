import matplotlib

matplotlib.use("Agg")

from helpers import plots

ROWS = [
    {"label": "target alone", "ttft_ms": 5.0, "tpot_ms": 1.0, "tpot_iqr_ms": 0.1, "throughput_tps": 1000.0,
     "speedup": 1.0, "speedup_lo": 1.0, "speedup_hi": 1.0},
    {"label": "draft k=2", "ttft_ms": 4.0, "tpot_ms": 0.8, "tpot_iqr_ms": 0.2, "throughput_tps": 1250.0, "k": 2,
     "speedup": 1.25, "speedup_lo": 1.1, "speedup_hi": 1.3, "predicted_speedup": 1.3},
    {"label": "draft k=4", "ttft_ms": 4.0, "tpot_ms": 0.7, "tpot_iqr_ms": 0.2, "throughput_tps": 1400.0, "k": 4,
     "speedup": 1.4, "speedup_lo": 1.2, "speedup_hi": 1.5, "predicted_speedup": 1.45},
]


def test_summary_plot_has_three_panels_with_one_bar_per_config():
    fig = plots.plot_benchmark_summary(ROWS, title="t")
    assert len(fig.axes) == 3
    assert all(len(ax.patches) == len(ROWS) for ax in fig.axes)


def test_speedup_vs_k_plots_measured_and_predicted():
    fig = plots.plot_speedup_vs_k(ROWS)
    ax = fig.axes[0]
    predicted = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert list(predicted[0].get_xdata()) == [2, 4]


def test_per_prompt_and_model_plots(tmp_path):
    rows = [{"label": lab, "prompt": p, "tpot_ms": 1.0} for lab in ("a", "b") for p in ("x", "y", "z")]
    fig = plots.plot_per_prompt(rows)
    assert len(fig.axes[0].patches) == 6
    model = plots.plot_speedup_model([0.5, 0.9], [0.1])
    assert len(model.axes[0].get_lines()) == 3  # two curves and the 1.0 line
    saved = plots.save_figure(model, tmp_path / "m.png")
    assert saved.stat().st_size > 1000 and not list(tmp_path.glob(".*"))


def test_forward_cost_plot_draws_each_series_between_the_bounds():
    rows = [{"n": n, "ratio": r, "ratio_lo": r - 0.1, "ratio_hi": r + 0.2} for n, r in ((1, 1.0), (4, 1.3), (8, 1.8))]
    fig = plots.plot_forward_cost({"real": rows, "tiny": rows[:2], "empty": []}, title="t(n)")
    ax = fig.axes[0]
    assert ax.get_title() == "t(n)" and ax.get_xlabel() and ax.get_ylabel() == "t(n) / t(1)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"real", "tiny"} <= set(labels) and len(labels) == 4  # two series and the two bounds, no empty series
    compute_bound = next(line for line in ax.get_lines() if line.get_linestyle() == ":")
    assert list(compute_bound.get_xdata()) == list(compute_bound.get_ydata()) == list(range(1, 9))
