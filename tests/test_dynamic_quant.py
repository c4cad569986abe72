from pathlib import Path

import numpy as np
import pytest

from helpers import dynamic_quant as dq
from helpers.commands import main
from helpers.conversion import weight_precisions
from helpers.errors import ConfigError, DeviceError, ModelFolderError

SETTINGS = (0, 32, 256)


def cpu_has_vnni() -> bool:
    """The CPU plugin only quantizes activations with VNNI (avx2_vnni / avx512_vnni); elsewhere DQ never applies."""
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.is_file() and any(flag in cpuinfo.read_text() for flag in ("avx512_vnni", "avx_vnni"))


def cpu_infers_in_f32() -> bool:
    """CPUs with AMX infer in bf16 by default, and there the fingerprint shows no dynamic quantization on these
    tiny layers (seen on a Xeon with amx_int8); on f32 VNNI CPUs it does."""
    import openvino as ov

    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name() == "f32"


@pytest.fixture(scope="module")
def control() -> Path:
    return dq.uncompressed_control()


@pytest.fixture(scope="module")
def models(tiny_models, control) -> dict[str, Path]:
    return {"target": tiny_models.target, "draft": tiny_models.draft, "control": control}


@pytest.fixture(scope="module")
def prints(models) -> list[dq.Fingerprint]:
    return dq.fingerprint(models, "CPU", SETTINGS, lengths=(16, 96))


@pytest.mark.parametrize("value", [0, 32, 256, np.int64(64)])
def test_group_size_accepts_whole_numbers(value):
    assert dq.check_group_size(value) == int(value)
    assert dq.dq_properties(value) == {dq.PROPERTY: int(value)}
    assert dq.dq_properties(None) == {}


@pytest.mark.parametrize("value, message", [(-1, "cannot be negative"), (1.5, "whole number"), ("64", "whole number"),
                                            (True, "whole number"), (None, "whole number")])
def test_bad_group_size_is_refused_with_the_fix(value, message):
    with pytest.raises(ConfigError, match=message) as info:
        dq.check_group_size(value)
    assert "0 to turn dynamic quantization off" in str(info.value)


def test_settings_always_hold_default_and_off_once():
    assert dq.settings_for([64, 0, 64, 32]) == [None, 0, 64, 32]
    assert dq.setting_label(None, 32) == "default (32)" and dq.setting_label(0) == "0 (off)"


def test_unsupported_property_is_a_device_error(tiny_models):
    with pytest.raises(DeviceError, match="does not support GPU_ENABLE_LOOP_UNROLLING"):
        dq.check_properties("CPU", {"GPU_ENABLE_LOOP_UNROLLING": True})
    with pytest.raises(ConfigError):
        dq.check_properties("CPU", {dq.PROPERTY: -1})
    with pytest.raises(DeviceError, match="case-sensitive: use 'DYNAMIC_QUANTIZATION_GROUP_SIZE'"):
        dq.check_properties("CPU", {"dynamic_quantization_group_size": 64})
    import openvino as ov

    model = ov.Core().read_model(tiny_models.draft / "openvino_model.xml")
    with pytest.raises(DeviceError):
        dq.compile_ir(model, "CPU", {"NOT_A_PROPERTY": 1})


def test_cpu_defaults_are_read_from_the_device():
    row = next(r for r in dq.device_defaults() if r["device"] == "CPU")
    assert isinstance(row[dq.PROPERTY], int) and row[dq.PROPERTY] >= 0
    assert row["INFERENCE_PRECISION_HINT"] in ("f32", "bf16", "f16")
    assert row["XMX (GPU_HW_MATMUL)"].startswith("n/a")
    assert dq.has_xmx("CPU") is None
    assert dq.default_group_size("CPU") == row[dq.PROPERTY]


def test_xmx_is_read_from_gpu_capabilities(monkeypatch):
    import openvino as ov

    class FakeCore:
        def get_property(self, device, name):
            assert name == "OPTIMIZATION_CAPABILITIES"
            return ["FP32", "FP16", "INT8", dq.GPU_XMX_CAPABILITY] if device == "GPU.0" else ["FP32", "FP16"]

    monkeypatch.setattr(ov, "Core", FakeCore)
    assert dq.has_xmx("GPU.0") is True
    assert dq.has_xmx("GPU.1") is False


def test_dynamic_quantize_nodes_are_counted():
    class Info(dict):
        pass

    class Any:
        def __init__(self, text):
            self.text = text

        def astype(self, _):
            return self.text

    class Node:
        def __init__(self, layer_type):
            self.layer_type = layer_type

        def get_rt_info(self):
            return Info(layerType=Any(self.layer_type))

        def get_type_name(self):
            return "ExecutionNode"

        def get_friendly_name(self):
            return f"{self.layer_type}_1"

    class Compiled:
        def get_runtime_model(self):
            return self

        def get_ops(self):
            return [Node(t) for t in ("fully_connected", "dynamic_quantize", "DynamicQuantize", "gemm")]

    assert dq.count_dq_nodes(Compiled()) == 2


def test_cpu_runtime_graph_does_not_show_dq(tiny_models):
    rows = dq.runtime_graph_check({"target": tiny_models.target}, "CPU", [0, 32])
    assert [r["setting"].split()[0] for r in rows] == ["default", "0", "32"]
    assert all(r["dynamic_quantize nodes"] == 0 for r in rows)
    assert len({r["layer types"] for r in rows}) == 1  # same kernels whether DQ is on or off


def test_control_export_is_really_uncompressed(control):
    assert set(weight_precisions(control)) <= {"f32", "f16"}
    assert dq.weights_summary(control).startswith("f")


def test_fingerprint_is_reproducible_and_the_control_never_changes(prints, tiny_models):
    assert len(prints) == 3 * 4  # models x (default, off, 32, 256)
    assert all(p.reproducible for p in prints), "two compilations of one setting must give identical logits"
    for p in prints:
        assert set(p.max_diff) == {"prefill 16", "decode after 16", "prefill 96", "decode after 96"}
        assert all(p.max_diff[k] >= p.mean_diff[k] >= 0 for k in p.max_diff)
        if p.group_size == 0:
            assert p.verdict == "off (reference)" and not any(p.max_diff.values())
        if p.model == "control":
            assert not p.applied_to and p.verdict in ("not applied", "off (reference)")
        if p.verdict == "applied":
            assert all(v > 0 for v in p.max_diff.values())
    # The default setting behaves exactly like an explicit group size equal to the device's default.
    default = {p.model: p.max_diff for p in prints if p.group_size is None}
    explicit = {p.model: p.max_diff for p in prints if p.group_size == prints[0].device_value}
    assert all(default[m] == explicit[m] for m in explicit)
    if cpu_has_vnni() and cpu_infers_in_f32() and dq.default_group_size("CPU"):
        assert any(p.verdict == "applied" for p in prints if p.model in ("target", "draft"))
    table = dq.verdict_table(prints)
    assert [r["model"] for r in table] == ["target", "draft", "control"]


def test_fingerprint_needs_a_stateful_llm():
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 4], np.float32, name="x")
    model = ov.Model([ops.relu(x)], [x], "not-an-llm")
    with pytest.raises(ModelFolderError, match="stateful LLM"):
        dq.fixed_inputs(model, 4)


def test_pipeline_route_agrees_with_direct_compile(prints, models):
    rows = dq.pipeline_fingerprint({k: models[k] for k in ("target", "control")}, "CPU", [0, 32], max_new_tokens=4)
    assert all(r["bit-identical rerun"] == "yes" for r in rows)
    assert all(r["prompt tokens"] > dq.GPU_MIN_TOKENS for r in rows)
    both = dq.agreement(prints, rows)
    assert len(both) == 2 * 3 and all(r["agree"] == "yes" for r in both)


def test_exact_length_prompts(tiny_models):
    from helpers.generation import chat_prompt, load_pipeline

    pipe = load_pipeline(tiny_models.target, "CPU")
    for n in (40, 300):
        prompt = dq.exact_length_prompt(pipe, n)
        assert pipe.get_tokenizer().encode(chat_prompt(pipe, prompt.text)).input_ids.get_shape()[-1] == n
    with pytest.raises(ConfigError, match="too short"):
        dq.exact_length_prompt(pipe, 3)


def test_timing_compares_off_and_on_per_length(tiny_models):
    timing = dq.compare_timing(tiny_models.target, "CPU", lengths=[100, 40], max_new_tokens=4, repeats=1, warmup=0)
    assert [r["prompt tokens"] for r in timing.rows] == [40, 100]
    assert all(r["pairs"] == 1 and r["TTFT speedup"] > 0 and r["TPOT speedup"] > 0 for r in timing.rows)
    assert timing.benchmark.baseline == timing.off_label
    with pytest.raises(ConfigError, match="compare DQ off with itself"):
        dq.compare_timing(tiny_models.target, "CPU", lengths=[40], group_size_on=0)


def test_accuracy_rows(tiny_models):
    rows = dq.accuracy(tiny_models.target, "CPU", [0, 32], prompts=["def add(a, b):"], max_new_tokens=6)
    assert [r["setting"].split()[0] for r in rows] == ["default", "32"]  # DQ off is the reference, not a row
    for r in rows:
        assert r["max Δ logit"] >= r["mean Δ logit"] >= 0
        assert 0 <= r["top-1 changed (prefill positions)"] <= 1
        assert r["first divergent token"] is None or 0 <= r["first divergent token"] < 6
        assert (r["first divergent token"] is None) == (r["prompts diverged"] == 0)


def test_plots_take_rows():
    from helpers import plots

    timing = [{"prompt tokens": n, "TTFT speedup": 1.1, "TTFT speedup lo": 1.0, "TTFT speedup hi": 1.2,
               "TPOT speedup": 1.0, "TPOT speedup lo": 0.9, "TPOT speedup hi": 1.1} for n in (32, 512)]
    assert len(plots.plot_dq_speedup_vs_length(timing).axes) == 1
    accuracy = [{"model": "target", "group_size": g, "mean Δ logit": 0.01, "max Δ logit": 0.1,
                 "first divergent token": None if g > 64 else 3} for g in (32, 64, 128)]
    assert len(plots.plot_dq_group_tradeoff(accuracy).axes) == 2


def test_cli_prints_both_tables(capsys, tiny_models):
    assert main(["dq", "--target", str(tiny_models.target), "--group-sizes", "0", "32", "--lengths", "16",
                 "--no-control"]) == 0
    out = capsys.readouterr().out
    assert "Defaults per device" in out and "Is DQ applied?" in out and "off (reference)" in out


def test_cli_errors_are_one_line(capsys, tiny_models):
    assert main(["dq", "--target", str(tiny_models.target), "--group-sizes", "-5", "--no-control"]) == 2
    err = capsys.readouterr().err
    assert "cannot be negative" in err and "Traceback" not in err
    assert main(["dq", "--target", str(tiny_models.target / "missing"), "--no-control"]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "Traceback" not in err


def test_fake_quantize_error_is_bounded_by_half_a_step_and_shrinks_with_groups():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 256)).astype(np.float32)
    x[:, ::64] *= 30  # outliers, as real activations have
    assert np.array_equal(dq.fake_quantize(x, 0), x)
    for g in (32, 256):
        groups = x.reshape(2, -1, g)
        step = (groups.max(-1) - groups.min(-1)) / 255
        error = np.abs(dq.fake_quantize(x, g) - x).reshape(2, -1, g).max(-1)
        assert np.all(error <= step / 2 + 1e-5)
    rows = {r["group size"]: r for r in dq.quantization_error(x, [32, 256])}
    assert rows["32"]["mean error"] < rows["256"]["mean error"]
    assert rows["32"]["scales per row"] == 8 and rows["256"]["scales per row"] == 1
    with pytest.raises(ConfigError, match="divisor"):
        dq.fake_quantize(x, 48)
