"""The recorded real-pair figures the notebooks show beside their tiny plumbing checks."""

from __future__ import annotations

import json

import pytest

from helpers import reference
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
