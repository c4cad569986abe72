"""The recorded real-pair figures the notebooks show beside their tiny plumbing checks: the suite's summary rows, its
healing record, trimmed-head pairs, the breakdown and the agent step."""

from __future__ import annotations

import json

import pytest

from helpers import reference, suite
from helpers.sd_breakdown import break_even_acceptance, with_control

MACHINE = {"devices": {"CPU": "Some CPU"}, "logical_cores": 2, "ram_gib": 8.0, "openvino": "2026.4.1-123-abc"}


def test_the_committed_breakdown_reads_with_its_caption():
    record = reference.breakdown_reference(3)
    assert [b["label"] for b in record.breakdown] == ["pipeline SD k=3", "loop SD k=3"]
    assert all(0 < b["acceptance_rate"] < 1 for b in record.breakdown)  # filled in from the parts of an older file
    assert {p["label"] for p in record.parts} >= {"pipeline target alone", "loop greedy"}
    assert record.control[0]["n"] == 1 and record.control[0]["ratio"] == 1.0
    assert "Real pair (qwen2.5-coder-1.5b-offline" in record.caption and "python -m helpers breakdown" in record.caption
    assert "cores" in record.caption and "OpenVINO 2026" in record.caption
    rows = with_control(record.breakdown, record.control)
    assert all(r["control_t(k+1)/t(1)"] == pytest.approx(1.308, abs=1e-3) for r in rows)  # t(4)/t(1) of the file
    assert all(r["c"] < r["break_even_acceptance"] < 1 for r in rows)
    # the formula with measured parts is tokens per step over the break-even tokens
    assert all(r["predicted"] == pytest.approx(r["tokens_per_step"] / r["break_even_tokens"]) for r in rows)


def test_a_missing_breakdown_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "REPO_ROOT", tmp_path)
    record = reference.breakdown_reference(5, preset="some-preset")
    assert record.breakdown == record.parts == record.control == []
    assert "not measured yet" in record.caption
    assert "--preset some-preset -k 5 --json benchmarks/results/some-preset/breakdown-k5.json" in record.caption


def test_a_breakdown_file_is_read_as_written(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "REPO_ROOT", tmp_path)
    row = {"label": "pipeline SD k=2", "k": 2, "acceptance_rate": 0.5, "t_plain_ms": 10.0, "draft_ms": 8.0,
           "draft_token_ms": 4.0, "verify_ratio": 1.5, "rest_ratio": 0.2, "c": 0.4}
    data = {"settings": {"target": "/x/target-int4", "draft": "/x/draft-int8", "prompts": ["a", "b"], "repeats": 3,
                         "max_new_tokens": 64, "exact": True, "command": "python -m helpers breakdown -k 2"},
            "machine": MACHINE, "parts": [{"label": "pipeline SD k=2", "acceptance_rate": 0.9}],
            "breakdown": [row], "control": {"rows": [{"n": 1, "ratio": 1.0}, {"n": 3, "ratio": 1.2}]}}
    path = reference.breakdown_path(2, "p")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    record = reference.breakdown_reference(2, preset="p")
    assert record.breakdown == [row]  # the row's own acceptance wins over the parts'
    assert record.control == data["control"]["rows"] and record.identical_to_baseline == {}
    assert record.caption == ("Real pair (p: target target-int4, draft draft-int8), k=2, 2 prompts x 3 repeats, 64 new "
                              "tokens, exact arithmetic (f32, no dynamic quantization); measured on Some CPU, 2 cores, "
                              "8.0 GiB, OpenVINO 2026.4.1: `python -m helpers breakdown -k 2`")
    assert with_control(record.breakdown, record.control)[0]["control_t(k+1)/t(1)"] == 1.2
    assert break_even_acceptance(row) == pytest.approx(0.4 + (1.5 + 0.2 - 1) / 2)


def test_suite_rows_and_caption(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "REPO_ROOT", tmp_path)
    rows, caption = reference.reference_rows(("x",))
    assert rows == [] and "not measured yet" in caption
    summary = {"preset": "p", "reference": "alone", "command": "run", "machines": [MACHINE],
               "rows": [{"step": "x", "label": "alone"}, {"step": "x", "label": "k=3"}, {"step": "y", "label": "k=3"}]}
    path = reference.summary_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(summary))
    rows, caption = reference.reference_rows(("x",))
    assert rows == [{"step": "x", "label": "k=3"}]
    assert caption == "Real pair (p), speedup over 'alone', measured by the benchmark suite on Some CPU, 2 cores, 8.0 GiB, " \
                      "OpenVINO 2026.4.1: `run`"
    # with the step's own result file and machine, the caption names them, not the summary's latest command
    other = {**MACHINE, "devices": {"CPU": "Other CPU"}}
    summary["machines"] = [{**MACHINE, "step": "y"}, {**other, "step": "x"}]
    path.write_text(json.dumps(summary))
    (path.parent / "x.json").write_text(json.dumps({"settings": {"suite": {"command": "run --steps x"}}}))
    rows, caption = reference.reference_rows(("x",))
    assert "Other CPU" in caption and caption.endswith("`run --steps x`")
    # rows of two steps run with different commands: each step is named with its own command and machine
    (path.parent / "y.json").write_text(json.dumps({"settings": {"suite": {"command": "run --steps y"}}}))
    rows, caption = reference.reference_rows(("x", "y"))
    assert [r["step"] for r in rows] == ["x", "y"]
    assert "each step with its own command" in caption
    assert "- x, on Other CPU, 2 cores, 8.0 GiB, OpenVINO 2026.4.1: `run --steps x`" in caption
    assert "- y, on Some CPU, 2 cores, 8.0 GiB, OpenVINO 2026.4.1: `run --steps y`" in caption
    assert {"acceptance_pooled", "acceptance_rate"} <= set(reference.COLUMNS)


# The real-pair reader for the agent step: rows, per-kind-of-work rows and a caption, or "not measured yet".

from helpers.reference import agent_reference  # noqa: E402

AGENT_JSON = {
    "baseline": "target int4 alone",
    "machine": {"devices": {"CPU": "Some CPU"}, "logical_cores": 2, "ram_gib": 23.5, "openvino": "2026.4.1-123-abc"},
    "settings": {"suite": {"command": "python benchmarks/run_suite.py --steps agent",
                           "signature": {"preset": "qwen2.5-coder-1.5b-offline"}}},
    "agent_summary": [
        {"label": "target int4 alone", "runs": 2, "agent_seconds": 50.0, "ttft_ms": 10000.0, "task_speedup": 1.0},
        {"label": "draft k=3", "runs": 2, "agent_seconds": 40.0, "ttft_ms": 10000.0, "task_speedup": 1.25,
         "acceptance_rate": 0.8},
    ],
    "agent_runs": [
        {"label": "draft k=3", "repeat": 1, "task": "Explain Qwen3's thinking and non-thinking modes in a slide deck",
         "seconds": 40.0, "totals": {"ttft_ms": 500.0}, "steps": [{"input_tokens": 2360}], "decks": ["a.pptx"]},
        {"label": "target int4 alone", "repeat": 0, "task": "Summarize", "seconds": 50.0,
         "totals": {"ttft_ms": 20000.0}, "steps": [], "decks": []},
    ],
    "agent_work": [{"label": "draft k=3", "work": "slides", "steps": 2, "seconds": 9.0, "ttft_ms": 900.0,
                    "output_tokens": 300, "acceptance_rate": 0.9}],
    "agent_time_split": [{"label": "target int4 alone", "runs": 2, "wall_s": 50.0, "prefill_s": 10.0, "decode_s": 35.0,
                          "other_s": 5.0, "decode_free_ceiling": 3.33}],
}


def test_a_missing_result_says_not_measured_yet(tmp_path):
    found = agent_reference("some-preset", path=tmp_path / "agent.json")
    assert not found.measured and found.rows == [] and found.work == [] and found.prefill_rows() == []
    assert found.run_rows() == []
    assert "not measured yet" in found.caption and "--preset some-preset --steps agent" in found.caption


def test_a_damaged_result_is_named_not_called_unmeasured(tmp_path):
    path = tmp_path / "agent-warm.json"
    path.write_text('{"agent_summary": [')  # cut off mid-write
    found = agent_reference("some-preset", path=path)
    assert not found.measured and "not measured yet" not in found.caption
    assert str(path) in found.caption and "git checkout" in found.caption and "--steps agent-warm" in found.caption


def test_a_recorded_agent_step_gives_rows_work_and_a_caption(tmp_path):
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(AGENT_JSON))
    found = agent_reference(path=path)
    assert found.measured and found.reference == "target int4 alone"
    assert [r["label"] for r in found.rows] == ["target int4 alone", "draft k=3"]
    assert found.work[0]["work"] == "slides" and found.time_split[0]["decode_free_ceiling"] == 3.33
    assert "Some CPU, 2 cores" in found.caption and "OpenVINO 2026.4.1:" in found.caption
    assert "--steps agent" in found.caption
    shares = {r["label"]: r["prefill_share"] for r in found.prefill_rows()}
    assert shares == {"target int4 alone": 0.2, "draft k=3": 0.25}
    first, second = found.run_rows()
    assert (first["repeat"], first["prefill_share"], first["first_prompt_tokens"], first["decks"]) == (0, 0.4, None, 0)
    assert (second["first_prompt_tokens"], second["decks"], second["prefill_s"]) == (2360, 1, 0.5)
    assert len(second["task"]) == 40 and second["task"].endswith("…")


def test_results_older_than_the_work_table_still_read(tmp_path):
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({k: v for k, v in AGENT_JSON.items() if k not in ("agent_work", "agent_time_split")}))
    assert agent_reference(path=path).work == [] and agent_reference(path=path).time_split == []


def test_paths_point_into_the_results_folder():
    assert reference.agent_path("p").parts[-3:] == ("results", "p", "agent.json")
    assert reference.agent_path("p", archive="old").parts[-4:] == ("results", "archive", "old", "agent.json")
def _summary_row(step, label, acceptance, cost, speedup):
    return {"step": step, "label": label, "acceptance_rate": acceptance, "cost_ratio": cost, "speedup": speedup}


def test_missing_records_say_not_measured_yet(tmp_path):
    for rows, caption in (reference.healing_rows("some-preset", folder=tmp_path),
                          reference.head_size_rows(preset="some-preset", folder=tmp_path)):
        assert rows == [] and "not measured yet" in caption and "some-preset" in caption
    (tmp_path / "healing.json").write_text(json.dumps({"plan": None, "drafts": []}))
    assert reference.healing_rows(folder=tmp_path)[0] == []  # written before any pruned draft: still nothing to show


def test_healing_record_becomes_one_row_per_depth(tmp_path):
    heal = {"steps": 24, "learning_rate": 1e-4, "topk": 32, "neighbour_layers": 2}
    record = {"plan": {"depths": [4], "heal": heal}, "held-out share": 0.1, "unpruned held-out agreement": 0.7,
              "drafts": [{"depth": 4, "removed": "layers 10-13", "layers left": 20,
                          "repair MSE (pruned -> repaired)": [12.0, 3.0],
                          "held-out agreement": {"draft pruned4": 0.5, "draft pruned4-replaceme": 0.55,
                                                 "draft pruned4-replaceme-healed": 0.62},
                          "first loss": 1.5, "last loss": 0.9, "heal minutes": 21.5, "heal peak RAM GiB": 6.2}]}
    (tmp_path / reference.HEALING_RECORD).write_text(json.dumps(record))
    rows, caption = reference.healing_rows(folder=tmp_path)
    assert rows == [{"depth": 4, "removed": "layers 10-13", "layers left": 20, "unpruned": 0.7, "pruned": 0.5,
                     "replaceme": 0.55, "replaceme-healed": 0.62, "repair MSE": "12 -> 3",
                     "loss first -> last": "1.500 -> 0.900", "heal minutes": 21.5, "heal peak RAM GiB": 6.2}]
    assert "10%" in caption and "KL to the target's top-32" in caption and "2 layers each side" in caption
    assert reference.describe_heal(None) == "none"
    assert "cross-entropy" in reference.describe_heal({"steps": 60, "learning_rate": 2e-3, "topk": 0})
    # the suite's summary section is built from the same rows
    section = suite.healing_section(tmp_path)
    assert "replaceme-healed" in section and "0.62" in section
    record["drafts"][0]["healing: step kept"] = 52  # recorded since healing keeps its best step
    (tmp_path / reference.HEALING_RECORD).write_text(json.dumps(record))
    assert reference.healing_rows(folder=tmp_path)[0][0]["step kept"] == 52


def test_trimmed_heads_are_paired_with_the_same_draft_and_setting(tmp_path):
    reference_label = "target int4 alone"
    rows = [_summary_row("pruned-drafts", reference_label, None, None, 1.0),
            _summary_row("pruned-drafts", "int4 + unpruned int4 draft k=3", 0.66, 0.33, 1.09),
            _summary_row("pruned-drafts", "int4 + head32k int4 draft k=3", 0.62, 0.26, 1.30),
            _summary_row("pruned-drafts", "int4 + pruned4-replaceme int4 draft k=3", 0.56, 0.27, 1.09),
            _summary_row("pruned-drafts", "int4 + pruned4-replaceme-head32k int4 draft k=3", 0.54, 0.21, 1.24),
            _summary_row("pruned-drafts", "int4 + pruned8-head32k int4 draft k=3", 0.31, 0.17, 0.98),  # no full-head twin
            _summary_row("pruned-drafts-sweep", "int4 + head32k int4 draft threshold=0.4", 0.7, 0.3, 1.2),
            _summary_row("pruned-drafts", "int4 + unpruned int4 draft threshold=0.4", 0.77, 0.4, 1.13),  # other step
            _summary_row("int4-target-int4-draft", "int4 + head32k int4 draft k=2", 0.6, 0.3, 1.1)]  # step not asked
    (tmp_path / "summary.json").write_text(json.dumps({"reference": reference_label, "rows": rows}))
    pairs, caption = reference.head_size_rows(folder=tmp_path)
    assert [(r["draft"], r["setting"]) for r in pairs] == [("unpruned", "k=3"), ("pruned4-replaceme", "k=3")]
    assert pairs[0]["head tokens"] == 32768 and "32,768" in caption
    assert (pairs[0]["c (full head)"], pairs[0]["c (trimmed)"]) == (0.33, 0.26)
    assert (pairs[1]["acceptance (full head)"], pairs[1]["acceptance (trimmed)"]) == (0.56, 0.54)


def test_committed_reference_results_are_readable():
    """Whatever the suite has recorded so far for the reference preset reads without error."""
    rows, caption = reference.reference_rows(("pruned-drafts", "pruned-drafts-sweep"))
    assert caption.startswith("Real pair")
    assert all(r["step"] in ("pruned-drafts", "pruned-drafts-sweep") for r in rows)
    for read in (reference.healing_rows, reference.head_size_rows):
        rows, caption = read()
        assert caption.startswith("Real pair") and isinstance(rows, list)


def test_archived_runs_and_missing_steps(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "REPO_ROOT", tmp_path)
    assert reference.results_folder("p", archive="old").parts[-3:] == ("results", "archive", "old")
    summary = {"preset": "p", "reference": "alone", "command": "run", "machines": [MACHINE],
               "rows": [{"step": "x", "label": "alone"}, {"step": "x", "label": "int4 + head32k int4 draft k=3"},
                        {"step": "x", "label": "int4 + unpruned int4 draft k=3"}]}
    path = reference.summary_path("p", archive="old")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(summary))
    rows, caption = reference.reference_rows(("x",), "p", archive="old")
    assert len(rows) == 2 and "(archived run old)" in caption
    rows, caption = reference.reference_rows(("y",), "p", archive="old")  # the run exists but has no such step
    assert rows == [] and "y not measured yet" in caption
    pairs, caption = reference.head_size_rows(("x",), "p", archive="old")
    assert [p["draft"] for p in pairs] == ["unpruned"] and "(archived run old)" in caption
    rows, caption = reference.reference_rows(("x",), folder=path.parent)  # any run's folder, e.g. an experiment's
    assert len(rows) == 2 and "(old)" in caption
    assert reference.pruned_pair_rows(folder=path.parent)[0] == []
    pair = {"step": "x", "setting": "k=3", "pruned draft": "pruned4", "against": "unpruned draft int4", "difference": 0.1}
    path.write_text(json.dumps({**summary, "pruned_versus_unpruned": [pair]}))
    rows, caption = reference.pruned_pair_rows(folder=path.parent)
    assert rows == [pair] and "pair" in caption and "old" in caption


def test_export_rows_put_each_export_beside_its_checkpoint(tmp_path):
    from helpers.reference import HEALING_RECORD, export_rows

    assert export_rows(folder=tmp_path)[0] == [] and "not measured yet" in export_rows(folder=tmp_path)[1]
    record = {"unpruned held-out agreement": 0.88,
              "drafts": [{"depth": 4, "held-out agreement": {"draft pruned4": 0.78}}],
              "export held-out agreement": [
                  {"draft": "draft int4", "checkpoint": "draft", "export agreement": 0.87, "acceptance k=3": 0.76},
                  {"draft": "draft pruned4 int4", "checkpoint": "draft pruned4", "export agreement": 0.76,
                   "acceptance k=3": 0.63},
                  {"draft": "draft head32k int4", "checkpoint": "draft", "export agreement": None, "acceptance k=3": 0.75}]}
    (tmp_path / HEALING_RECORD).write_text(json.dumps(record))
    rows, caption = export_rows(folder=tmp_path)
    assert [(r["export"], r["checkpoint"], r["checkpoint agreement"]) for r in rows] == [
        ("unpruned int4", "unpruned", 0.88), ("pruned4 int4", "pruned4", 0.78), ("unpruned head32k int4", "unpruned", 0.88)]
    assert rows[1]["change"] == -0.02 and rows[2]["change"] is None and rows[2]["acceptance k=3"] == 0.75
    assert "held-out prompts" in caption
