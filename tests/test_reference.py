"""The real-pair reader for the agent step: rows, per-kind-of-work rows and a caption, or "not measured yet"."""

import json

from helpers import reference
from helpers.reference import agent_reference

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
}


def test_a_missing_result_says_not_measured_yet(tmp_path):
    found = agent_reference("some-preset", path=tmp_path / "agent.json")
    assert not found.measured and found.rows == [] and found.work == [] and found.prefill_rows() == []
    assert found.run_rows() == []
    assert "not measured yet" in found.caption and "--preset some-preset --steps agent" in found.caption


def test_a_recorded_agent_step_gives_rows_work_and_a_caption(tmp_path):
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(AGENT_JSON))
    found = agent_reference(path=path)
    assert found.measured and found.reference == "target int4 alone"
    assert [r["label"] for r in found.rows] == ["target int4 alone", "draft k=3"]
    assert found.work[0]["work"] == "slides"
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
    path.write_text(json.dumps({k: v for k, v in AGENT_JSON.items() if k != "agent_work"}))
    assert agent_reference(path=path).work == []


def test_paths_point_into_the_results_folder():
    assert reference.agent_path("p").parts[-3:] == ("results", "p", "agent.json")
    assert reference.agent_path("p", archive="old").parts[-4:] == ("results", "archive", "old", "agent.json")
