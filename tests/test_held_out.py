"""The held-out prompts of a healing plan: a stable split, and the subset whose acceptance is measured."""

import json

from helpers.pruned_drafts import HealingPlan, _held_out
from helpers.settings import HealConfig


def _write(path, ids):
    path.write_text("".join(json.dumps({"id": i, "chat_prompt": f"<q>{i}", "answer": f"a{i}"}) + "\n" for i in ids))
    return path


def test_acceptance_prompts_are_a_stable_subset_of_the_held_out_ones(tmp_path):
    plan = HealingPlan(depths=(4,), prompts=200, heal=HealConfig(held_out=0.1))
    ids = [f"p{n}" for n in range(200)]
    data = _write(tmp_path / "a.jsonl", ids)
    held, digest = _held_out(plan, data)
    assert len(held) == 20
    subset, subset_digest = _held_out(plan, data, limit=8)
    assert len(subset) == 8 and {r["id"] for r in subset} < {r["id"] for r in held}
    assert subset_digest != digest  # another set of prompts: cached figures are not mixed up
    # the same subset whatever the file's order, and a limit at or above the held-out count changes nothing
    reordered = _write(tmp_path / "b.jsonl", list(reversed(ids)))
    assert {r["id"] for r in _held_out(plan, reordered, limit=8)[0]} == {r["id"] for r in subset}
    assert _held_out(plan, data, limit=20)[1] == digest and _held_out(plan, data, limit=500)[1] == digest
