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
