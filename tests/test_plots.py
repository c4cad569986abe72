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


def test_step_prefill_stacks_prefill_under_the_rest():
    steps = [{"step": 1, "work": "search", "seconds": 2.0, "ttft_ms": 1500.0, "input_tokens": 4000},
             {"step": 2, "work": "slides", "seconds": 1.0, "ttft_ms": None, "input_tokens": None}]
    fig = plots.plot_step_prefill(steps, title="t")
    ax = fig.axes[0]
    assert [round(p.get_height(), 3) for p in ax.patches] == [1.5, 0.0, 0.5, 1.0]
    assert ax.get_title() == "t" and ax.get_xlabel() and ax.get_ylabel()


def test_prefix_cache_and_work_plots_leave_gaps_for_missing_values():
    calls = [{"pipeline": p, "call": c, "ttft_ms": t} for p, c, t in
             (("on", "first", 500.0), ("on", "again", 10.0), ("off", "first", 500.0), ("off", "again", 480.0))]
    fig = plots.plot_prefix_cache(calls)
    assert len(fig.axes[0].patches) == 4 and fig.axes[0].get_yscale() == "log"
    work = [{"label": "alone", "work": "search", "ttft_ms": 100.0, "acceptance_rate": None},
            {"label": "draft", "work": "search", "ttft_ms": 90.0, "acceptance_rate": 0.8},
            {"label": "draft", "work": "slides", "ttft_ms": 50.0, "acceptance_rate": 0.9}]
    fig = plots.plot_agent_work(work, title="w")
    prefill, acceptance = fig.axes
    assert len(prefill.patches) == 3 and len(acceptance.patches) == 2
    draft_colour = prefill.patches[1].get_facecolor()  # "alone" first, then "draft": one colour per configuration
    assert all(bar.get_facecolor() == draft_colour for bar in acceptance.patches)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["alone", "draft"]
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    no_draft = plots.plot_agent_work([work[0]])
    assert not no_draft.axes[1].patches and no_draft.axes[1].texts


def test_training_loss_plot_labels_its_axes_and_marks_the_warm_up():
    fig = plots.plot_training_loss([(1, 2.0), (2, 1.5), (3, 1.2)], ylabel="KL to the target", warmup_steps=2,
                                   title="healing")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "KL to the target" and ax.get_xlabel() and ax.get_title() == "healing"
    assert len(ax.get_lines()) == 2 and "warm-up" in ax.get_legend().get_texts()[0].get_text()
