from dataclasses import replace

import pytest

from helpers.errors import UnknownPresetError
from helpers.presets import PRESETS, get_preset, preset_from_env, presets_table, smaller_presets


def test_registry_has_the_blog_setup_a_laptop_preset_and_tiny():
    blog = get_preset("qwen3-8b")
    assert blog.target.preconverted == "OpenVINO/Qwen3-8B-int4-ov"
    assert blog.draft.preconverted == "OpenVINO/Qwen3-0.6B-int8-ov"
    assert blog.pruned_draft is not None and blog.pruned_draft.preconverted == "OpenVINO/Qwen3-pruned-6L-from-0.6B-int8-ov"
    assert (blog.target.weights.bits, blog.draft.weights.bits) == (4, 8)
    assert get_preset("qwen3-1.7b").ram_gb_run < blog.ram_gb_run
    assert get_preset("tiny").target.is_tiny


def test_unknown_preset_lists_valid_names():
    with pytest.raises(UnknownPresetError) as info:
        get_preset("qwen9-800b")
    message = str(info.value)
    for name in PRESETS:
        assert name in message


def test_preset_from_env(monkeypatch):
    monkeypatch.setenv("TUTORIAL_PRESET", "qwen3-1.7b")
    assert preset_from_env().name == "qwen3-1.7b"
    monkeypatch.setenv("TUTORIAL_PRESET", "nope")
    with pytest.raises(UnknownPresetError):
        preset_from_env()


def test_weight_format_cli_args_and_names():
    tiny = get_preset("tiny")
    assert tiny.target.weights.cli_args() == ["--weight-format", "int4", "--sym", "--group-size", "32"]
    assert tiny.draft.weights.cli_args() == ["--weight-format", "int8"]
    assert tiny.target.folder_name == "tiny-target-int4"
    assert get_preset("qwen3-8b").target.folder_name == "Qwen3-8B-int4"
    all_layers = replace(tiny.target, weights=replace(tiny.target.weights, all_layers=True))
    assert all_layers.folder_name == "tiny-target-int4-all" and all_layers.weights.cli_args()[-1] == "--all-layers"


def test_smaller_presets_and_table():
    names = [p.name for p in smaller_presets(get_preset("qwen3-8b"))]
    assert names == ["qwen3-1.7b", "qwen2.5-coder-1.5b-offline", "tiny"]
    assert {row["preset"] for row in presets_table()} == set(PRESETS)
