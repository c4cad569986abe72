"""The benchmark suite on the tiny preset: every step measured once, results written, finished steps skipped."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from helpers import suite
from helpers.commands import main
from helpers.errors import ConfigError
from helpers.presets import get_preset
from helpers.prompts import builtin_prompts
from helpers.settings import SUITE


def tiny_settings(tmp_path, **changes) -> suite.SuiteSettings:
    values = {"preset": get_preset("tiny"), "prompts": builtin_prompts()[:2], "ks": (2, 4), "lookup_ks": (3,),
              "max_new_tokens": 8, "repeats": 1, "warmup": 0, "results_dir": tmp_path}
    values.update(changes)
    return suite.SuiteSettings(**values)


def test_suite_measures_every_step_then_resumes(tiny_models, tmp_path, monkeypatch):
    settings = tiny_settings(tmp_path)
    actions = suite.run_suite(settings, command="python -m helpers suite --preset tiny", progress=False)
    steps = suite.default_steps(settings.ks, settings.lookup_ks)
    names = [s.name for s in steps]
    assert names == ["target-alone", "int4-target-int8-draft", "int4-target-int4-draft", "int8-target-int8-draft",
                     "int8-target-int4-draft", "prompt-lookup"]
    assert [a["step"] for a in actions] == names and {a["action"] for a in actions} == {"measured"}

    draft_int8 = json.loads((tmp_path / "int8-target-int4-draft.json").read_text())
    assert draft_int8["baseline"] == suite.REFERENCE
    labels = [row["label"] for row in draft_int8["summary"]]
    assert labels == [suite.REFERENCE, "target int8 alone", "int8 + int4 draft k=2", "int8 + int4 draft k=4"]
    models = draft_int8["settings"]["suite"]["models"]
    assert models["draft int4"].endswith("tiny-draft-int4") and models["target int8"].endswith("tiny-target-int8")
    assert draft_int8["settings"]["suite"]["command"] == "python -m helpers suite --preset tiny"
    assert draft_int8["machine"]["logical_cores"] >= 1
    for row in draft_int8["summary"]:
        assert row["runs"] == len(settings.prompts)
        if "draft" in row["label"]:
            assert 0.0 <= row["acceptance_rate"] <= 1.0

    rows = suite.summary_rows(settings)
    assert len(rows) == sum(len(s.runs) + 1 for s in steps)
    assert all(r["speedup"] == 1.0 for r in rows if r["label"] == suite.REFERENCE)  # the reference against itself
    summary = (tmp_path / "summary.md").read_text()
    assert "int4 + prompt lookup k=3" in summary and "## Machine" in summary and "--preset tiny" in summary
    assert "Steps not measured yet: none" in summary
    assert (tmp_path / "overview.png").stat().st_size > 0 and (tmp_path / "speedup_vs_k_int4-target-int8-draft.png").is_file()

    # a second run measures nothing: every step has its result
    def no_measuring(*args, **kwargs):
        raise AssertionError("a finished step was measured again")

    monkeypatch.setattr(suite, "run_step", no_measuring)
    again = suite.run_suite(settings, command="again", progress=False)
    assert {a["action"] for a in again} == {"skipped (done)"}
    assert json.loads((tmp_path / "summary.json").read_text())["command"] == "again"


def test_results_made_with_other_settings_are_not_mixed(tiny_models, tmp_path):
    settings = tiny_settings(tmp_path, steps=("target-alone",))
    suite.run_suite(settings, progress=False)
    with pytest.raises(ConfigError, match="other settings"):
        suite.run_suite(tiny_settings(tmp_path, steps=("target-alone",), max_new_tokens=9), progress=False)
    with pytest.raises(ConfigError, match="Unknown suite step"):
        suite.selected_steps(tiny_settings(tmp_path, steps=("agent",)))


def test_cli_lists_steps_without_measuring(tmp_path, capsys):
    assert main(["suite", "--preset", "tiny", "--results-dir", str(tmp_path), "--list"]) == 0
    out = capsys.readouterr().out
    assert "int4-target-int8-draft" in out and "todo" in out
    assert not list(tmp_path.glob("*.json"))
    # a result made with other settings is listed as stale; the list does not stop at it
    (tmp_path / "target-alone.json").write_text(json.dumps({"settings": {"suite": {"signature": {"other": 1}}}}))
    assert main(["suite", "--preset", "tiny", "--results-dir", str(tmp_path), "--list"]) == 0
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["target-alone"].startswith("stale") and rows["prompt-lookup"] == "todo"
    # preparing or measuring refuses it instead of working over it
    assert main(["suite", "--preset", "tiny", "--results-dir", str(tmp_path), "--steps", "target-alone",
                 "--prepare-only"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_pruned_drafts_and_agent_steps(tiny_models, tmp_path):
    from helpers.distill import HealConfig
    from helpers.pruned_drafts import HealingPlan

    # soft targets from the OpenVINO target and only the layers next to the cut trained: the CPU recipe's path
    heal = HealConfig(steps=2, learning_rate=2e-3, batch_size=2, max_length=64, warmup_steps=0, save_steps=2, topk=4,
                      neighbour_layers=1, held_out=0.25)
    plan = HealingPlan(depths=(1,), prompts=4, max_new_tokens=12, heal=heal, repair=True, head_tokens=(1024,))
    settings = tiny_settings(tmp_path, plan=plan, pruned_k=2, ks=(2, 3), agent=True, agent_repeats=1,
                             agent_max_steps=1, agent_max_new_tokens=24, agent_search="offline",
                             steps=("pruned-drafts", "pruned-drafts-sweep", "lm-head-int4", "agent", suite.WARM_STEP))
    actions = suite.run_suite(settings, command="suite with pruning", progress=False)
    assert [a["action"] for a in actions] == ["measured"] * 5

    pruned = json.loads((tmp_path / "pruned-drafts.json").read_text())
    labels = [row["label"] for row in pruned["summary"]]
    variants = ["unpruned", "head1k", "pruned1", "pruned1-replaceme", "pruned1-replaceme-healed",
                "pruned1-replaceme-healed-head1k"]
    assert labels == [suite.REFERENCE, *(f"int4 + {v} int4 draft k=2" for v in variants)]
    sweep = json.loads((tmp_path / "pruned-drafts-sweep.json").read_text())
    principal = ["unpruned", "head1k", "pruned1-replaceme-healed-head1k"]
    assert [row["label"] for row in sweep["summary"]] == [
        suite.REFERENCE, *(f"int4 + {v} int4 draft k={k}" for v in principal for k in (1, 3)),  # k=1 always swept
        *(f"int4 + {v} int4 draft threshold={t:g}" for v in principal for t in SUITE.sweep_thresholds)]
    healing = json.loads((tmp_path / "healing.json").read_text())
    agreement = healing["drafts"][0]["held-out agreement"]
    assert set(agreement) == {"draft pruned1", "draft pruned1-replaceme", "draft pruned1-replaceme-healed"}
    assert all(0.0 <= a <= 1.0 for a in [*agreement.values(), healing["unpruned held-out agreement"]])
    assert healing["drafts"][0]["heal peak RAM GiB"] > 0 and healing["held-out share"] == 0.25
    exports = {e["draft"]: e for e in healing["export held-out agreement"]}  # the int4 OpenVINO exports, measured too
    assert set(exports) == {f"draft {v} int4".replace("draft unpruned", "draft") for v in variants} | {
        "draft pruned1-replaceme-healed int4-all"}
    assert exports["draft pruned1-replaceme-healed-head1k int4"]["checkpoint"] == "draft pruned1-replaceme-healed"
    for name, export in exports.items():
        assert 0.0 <= export["acceptance k=2"] <= 1.0
        # agreement needs logits at every position; a trimmed head's graph returns the last position only
        assert export["export agreement"] is None if "head" in name else 0.0 <= export["export agreement"] <= 1.0
    models = pruned["settings"]["suite"]["models"]
    assert len({models[f"draft {v} int4"] for v in variants[1:]}) == len(variants) - 1  # every variant its own folder
    assert pruned["settings"]["suite"]["signature"]["healing_plan"]["head_tokens"] == [1024]
    healed_dir = models["draft pruned1-replaceme-healed int4"]
    assert json.loads((Path(healed_dir) / "conversion.json").read_text())["weights"].startswith("int4")
    trimmed = Path(models["draft pruned1-replaceme-healed-head1k int4"])
    assert len(json.loads((trimmed / "frspec_tokens.json").read_text())["token_ids"]) == 1024
    for row in pruned["summary"][1:]:
        assert 0.0 <= row["acceptance_rate"] <= 1.0

    lm_head = json.loads((tmp_path / "lm-head-int4.json").read_text())
    assert [row["label"] for row in lm_head["summary"]][1:] == ["int4 + unpruned int4-all draft k=2",
                                                                "int4 + pruned1-replaceme-healed int4-all draft k=2"]
    assert "all-layers" in json.loads((Path(lm_head["settings"]["suite"]["models"]["draft int4-all"])
                                       / "conversion.json").read_text())["weights"]

    agent = json.loads((tmp_path / "agent.json").read_text())
    agent_labels = [row["label"] for row in agent["agent_summary"]]
    assert agent_labels[0] == suite.REFERENCE
    assert "agent: draft k=2" in agent_labels and "agent: prefix caching off" in agent_labels
    assert agent_labels[-2:] == ["agent: head1k int4 draft k=2", "agent: pruned1-replaceme-healed-head1k int4 draft k=2"]
    assert len(agent["agent_runs"]) == len(agent_labels) and all(r["steps"] for r in agent["agent_runs"])
    assert {row["work"] for row in agent["agent_work"]} <= {"search", "slides", "answer", "code", "none"}
    warm = json.loads((tmp_path / f"{suite.WARM_STEP}.json").read_text())
    assert "served another task" in warm["settings"]["suite"]["pipelines"] and warm["settings"]["earlier task"]
    assert all(model["earlier task served"] for model in warm["settings"]["models"].values())
    assert "no prefix cache" in agent["settings"]["suite"]["pipelines"]
    summary = (tmp_path / "summary.md").read_text()
    assert "agent: pruned1-replaceme-healed-head1k int4 draft k=2" in summary.split(suite.WARM_STEP, 1)[1]
    assert "## Agent task" in summary and "decks_written" in summary and "pruned1-replaceme-healed int4-all" in summary
    assert "## Pruned drafts: repair and healing" in summary and "replaceme-healed" in summary
    assert "through each OpenVINO draft export" in summary
    assert "| pruned1-replaceme-healed int4 | pruned1-replaceme-healed |" in summary
    assert "## Pruned against unpruned drafts, pair by pair" in summary
    against = json.loads((tmp_path / "summary.json").read_text())["pruned_versus_unpruned"]
    assert {(r["step"], r["pruned draft"], r["against"]) for r in against} >= {
        ("pruned-drafts", "pruned1-replaceme-healed", "unpruned draft int4"),
        ("pruned-drafts", "pruned1-replaceme-healed-head1k", "unpruned head1k int4"),
        ("lm-head-int4", "pruned1-replaceme-healed", "unpruned draft int4-all")}
    assert all(r["pairs"] == len(settings.prompts) * settings.repeats for r in against)


def test_cli_plans_pruning_and_agent_steps(tmp_path, capsys):
    args = ["suite", "--preset", "tiny", "--results-dir", str(tmp_path), "--prune-depths", "1", "2", "--heal-steps", "5",
            "--list"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "pruned-drafts" in out and "lm-head-int4" in out and "agent" in out and "agent-lookup-sweep" in out
    assert "| agent-warm | todo |" in out
    assert main([*args[:-1], "--no-agent", "--list"]) == 0
    assert "| agent" not in capsys.readouterr().out  # neither agent step
    with pytest.raises(SystemExit) as refused:
        main(["suite", "--preset", "tiny", "--prune-depths", "0", "--list"])
    assert refused.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_each_pruned_draft_meets_the_unpruned_one_at_its_own_setting_pair_by_pair(tmp_path):
    from helpers.benchmark import BenchmarkResult, RunRecord
    from helpers.pruned_drafts import ModelKey

    unpruned, head = ModelKey("draft", "int4"), ModelKey("draft", "int4", head_tokens=32768)
    pruned = ModelKey("draft", "int4", pruned=4, healed=True, repair="replaceme", head_tokens=32768)
    runs = (suite.RunSpec("unpruned k=3", "int4", "draft", 3, unpruned), suite.RunSpec("head k=3", "int4", "draft", 3, head),
            suite.RunSpec("pruned k=3", "int4", "draft", 3, pruned),
            suite.RunSpec("pruned t=0.8", "int4", "draft", draft=pruned, threshold=0.8),
            suite.RunSpec("unpruned t=0.8", "int4", "draft", draft=unpruned, threshold=0.8),
            suite.RunSpec("pruned k=2", "int4", "draft", 2, pruned))  # no unpruned draft at k=2: no row
    step = suite.SuiteStep("pruned-drafts", "test", runs)
    tpot = {suite.REFERENCE: 100.0, "unpruned k=3": 80.0, "head k=3": 70.0, "pruned k=3": 50.0, "pruned t=0.8": 60.0,
            "unpruned t=0.8": 100.0, "pruned k=2": 40.0}
    records = [RunRecord(label, prompt, 0, 1.0, ms, 1.0, 1.0, 1, 1) for label, ms in tpot.items() for prompt in "ab"]
    rows = suite.pruned_versus_unpruned(step, BenchmarkResult(records=records, baseline=suite.REFERENCE))
    found = {(r["setting"], r["against"]): (round(r["difference"], 4), r["pairs"], r["wins"]) for r in rows}
    assert found == {("k=3", "unpruned draft int4"): (0.75, 2, 2),
                     ("k=3", "unpruned head32k int4"): (round(2 - 100 / 70, 4), 2, 2),
                     ("threshold=0.8", "unpruned draft int4"): (round(100 / 60 - 1, 4), 2, 2)}
    assert {r["pruned draft"] for r in rows} == {"pruned4-replaceme-healed-head32k"}


def test_healing_options_override_single_fields_of_the_recipe():
    from helpers.commands import build_parser
    from helpers.commands.suite import healing_plan
    from helpers.settings import heal_recipe

    def heal(*options: str):
        return healing_plan(build_parser().parse_args(["suite", "--prune-depths", "4", *options])).heal

    recipe = heal_recipe("cpu-suite")
    assert heal() == recipe
    every_layer = heal("--heal-steps", "80", "--heal-lr", "5e-5", "--heal-warmup-steps", "8",
                       "--heal-neighbour-layers", "0", "--heal-bf16")
    assert (every_layer.steps, every_layer.learning_rate, every_layer.warmup_steps, every_layer.neighbour_layers,
            every_layer.bf16, every_layer.save_steps) == (80, 5e-5, 8, 0, True, 26)
    sixty = heal("--heal-steps", "60")  # a changed step count moves the checkpoints (a third) and caps the warm-up
    assert (sixty.save_steps, sixty.warmup_steps) == (20, recipe.warmup_steps)  # a tenth of 60 is more than the recipe's
    # the committed 120-prompt steps were healed by the earlier recipe (48 steps, checkpoints every 8): these options
    # give exactly the settings their result files record, so the README's command for them still matches
    earlier = heal("--heal-steps", "48", "--heal-save-steps", "8")
    committed = json.loads((Path(__file__).parent.parent / "benchmarks/results/qwen2.5-coder-1.5b-offline/"
                            "pruned-drafts.json").read_text())["settings"]["suite"]["signature"]["healing_plan"]["heal"]
    assert asdict(earlier) == committed


def test_the_warm_agent_step_serves_another_task_first_and_says_so(tmp_path):
    from helpers.agent import AGENT_TASKS, EARLIER_TASK
    from helpers.pruned_drafts import HealingPlan

    settings = tiny_settings(tmp_path, plan=HealingPlan(depths=(1,), repair=True, head_tokens=(1024,)), agent=True)
    steps = {step.name: step for step in settings.steps_planned()}
    warm = steps[suite.WARM_STEP]
    assert warm.kind == "agent" and warm.earlier_task and not steps["agent"].earlier_task
    assert [run.label for run in warm.runs] == ["agent: prompt lookup k=3", "agent: draft k=3",
                                                "agent: pruned1-replaceme-healed-head1k int4 draft k=3"]
    assert warm.runs[1].draft == suite.UNPRUNED_DRAFT and warm.runs[2].draft.pruned == 1
    assert EARLIER_TASK not in AGENT_TASKS
    signature = suite.step_signature(warm, settings)
    assert signature["agent"]["earlier_task"] == EARLIER_TASK
    assert "earlier_task" not in suite.step_signature(steps["agent"], settings)["agent"], "older results still match"


def test_the_healing_record_keeps_other_depths_of_the_same_recipe(tmp_path):
    from types import SimpleNamespace

    from helpers.pruned_drafts import HealingPlan

    def record(depth: int, **plan_changes) -> dict:
        settings = tiny_settings(tmp_path, plan=HealingPlan(depths=(depth,), repair=True, **plan_changes),
                                 workdir=tmp_path / "work")
        draft = SimpleNamespace(row=lambda: {"depth": depth, "held-out agreement": {f"draft pruned{depth}": 0.5}})
        export = {"draft": f"draft pruned{depth} int4", "acceptance k=3": 0.4}
        return json.loads(suite.write_healing_record(settings, [draft], [export]).read_text())

    record(4)
    merged = record(8)
    assert [row["depth"] for row in merged["drafts"]] == [4, 8] and merged["plan"]["depths"] == [4, 8]
    assert [e["draft"] for e in merged["export held-out agreement"]] == ["draft pruned4 int4", "draft pruned8 int4"]
    assert [row["depth"] for row in record(8)["drafts"]] == [4, 8], "measuring a depth again replaces its row"
    other = record(8, prompts=7)  # other data: the earlier depths do not belong to this recipe
    assert [row["depth"] for row in other["drafts"]] == [8] and len(other["export held-out agreement"]) == 1


def test_each_healing_recipe_and_plan_exports_to_its_own_folder(tmp_path):
    from helpers.distill import HealConfig
    from helpers.pruned_drafts import HealingPlan, ModelKey, export_folder

    answers, more_answers = tmp_path / "answers-360.jsonl", tmp_path / "answers-720.jsonl"
    answers.write_text('{"id": "a"}\n')
    more_answers.write_text('{"id": "a"}\n{"id": "b"}\n')
    short, long = (HealingPlan(depths=(4,), heal=HealConfig(steps=steps)) for steps in (24, 72))
    healed = ModelKey("draft", "int4", 4, healed=True, head_tokens=32768)
    assert export_folder(tmp_path, healed, short, answers) != export_folder(tmp_path, healed, long, answers)
    assert export_folder(tmp_path, healed, short, answers) != export_folder(tmp_path, healed, short, more_answers)
    assert export_folder(tmp_path, healed, short, answers).name.startswith("pruned4-healed-head32k-int4-")
    trimmed = ModelKey("draft", "int4", head_tokens=32768)  # the unpruned draft's head: its tokens come from the answers
    assert export_folder(tmp_path, trimmed, short, answers) != export_folder(tmp_path, trimmed, short, more_answers)
    assert export_folder(tmp_path, trimmed, short, answers) == export_folder(tmp_path, trimmed, long, answers)
    plain = ModelKey("draft", "int4", 4)  # not trained: the same export whatever the recipe or the answers
    assert (export_folder(tmp_path, plain, short, answers) == export_folder(tmp_path, plain, long, more_answers)
            == tmp_path / "openvino" / "pruned4-int4")


def test_held_out_agreement_is_measured_once_per_checkpoint(tmp_path, monkeypatch):
    """A rerun that reuses a checkpoint reads its agreement back; a rewritten checkpoint is measured again."""
    import os

    from helpers import distill
    from helpers.distill import HealConfig
    from helpers.pruned_drafts import HealingPlan, ModelKey, held_out_agreement

    data = tmp_path / "answers.jsonl"
    data.write_text("".join(json.dumps({"id": f"p{i}", "chat_prompt": "q", "answer": "a"}) + "\n" for i in range(8)))
    checkpoint = tmp_path / "draft"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    calls = []
    monkeypatch.setattr(distill, "agreement", lambda path, held, max_length: calls.append(len(held)) or 0.5)
    plan = HealingPlan(depths=(1,), heal=HealConfig(held_out=0.25))
    key = ModelKey("draft", "", 1)
    assert held_out_agreement({key: checkpoint}, plan, data) == {"draft pruned1": 0.5}
    assert held_out_agreement({key: checkpoint}, plan, data) == {"draft pruned1": 0.5}
    assert calls == [2]  # measured once, on the 2 held-out records
    os.utime(checkpoint / "model.safetensors", ns=(1, 1))  # the checkpoint was written again
    held_out_agreement({key: checkpoint}, plan, data)
    assert calls == [2, 2]
