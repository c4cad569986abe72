import pytest

from helpers.commands import main


def test_presets_and_devices(capsys):
    assert main(["presets"]) == 0
    assert "qwen3-8b" in capsys.readouterr().out
    assert main(["devices"]) == 0
    assert "CPU" in capsys.readouterr().out


def test_convert_tiny_preset(capsys, tiny_models):
    assert main(["convert", "--preset", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "reused" in out and "optimum-cli export openvino" in out


def test_errors_are_one_line_not_a_traceback(capsys):
    assert main(["convert", "--preset", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown preset 'nope'") and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["agent", "--threads", "0"], ["agent", "--assistant-confidence-threshold", "1.5"], ["agent", "--prefix-caching", "maybe"],
    ["agent", "--kv-cache-precision", "int3"], ["agent", "--dq-group-size", "-1"], ["bench", "--repeats", "0"],
    ["bench", "--max-new-tokens", "0"], ["dq", "--lengths", "0"], ["suite", "--warmup", "-1"],
])
def test_nonsense_numbers_are_refused_before_any_work(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument" in err and "Traceback" not in err


def test_every_command_has_a_description_defaults_and_examples(capsys):
    from helpers.commands import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        assert sub.description and "examples:" in (sub.epilog or ""), name
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help text"
