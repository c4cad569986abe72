import shutil

import pytest

from helpers import conversion
from helpers.conversion import (
    check_ov_model_dir,
    export_model,
    optimum_cli_command,
    prepare_model,
    read_manifest,
    weight_precisions,
)
from helpers.errors import HubUnreachableError, ModelFolderError
from helpers.presets import INT8_ASYM, WeightFormat, get_preset
from helpers.tiny import build_tiny_pair


def test_preset_conversion_writes_complete_folders(tiny_models):
    for path in (tiny_models.target, tiny_models.draft):
        assert check_ov_model_dir(path) == path
        assert read_manifest(path)["weights"]
    assert "i4" in weight_precisions(tiny_models.target)
    assert "i4" not in weight_precisions(tiny_models.draft)
    rows = tiny_models.size_rows()
    assert [r["model"] for r in rows] == ["target", "draft"]


def test_rerun_reuses_finished_work(tiny_models):
    again = prepare_model(get_preset("tiny").target)
    assert again.action == "reused"
    assert again.path == tiny_models.target


def test_interrupted_export_leaves_nothing_behind(tmp_path, monkeypatch, tiny_models):
    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(conversion, "save_openvino_tokenizers", explode)
    dest = tmp_path / "draft-int8"
    with pytest.raises(KeyboardInterrupt):
        export_model(build_tiny_pair().draft, dest, INT8_ASYM)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_half_written_folder_is_not_reused(tmp_path, tiny_models):
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_models.draft, damaged)
    (damaged / "openvino_detokenizer.xml").unlink()
    with pytest.raises(ModelFolderError, match="missing openvino_detokenizer.xml"):
        check_ov_model_dir(damaged)
    redone = export_model(build_tiny_pair().draft, damaged, INT8_ASYM)  # ours (manifest) but damaged: made again
    assert redone.action == "exported" and check_ov_model_dir(damaged)


def test_foreign_folder_is_never_replaced(tmp_path, tiny_models):
    foreign = tmp_path / "foreign"
    shutil.copytree(tiny_models.draft, foreign)
    (foreign / "conversion.json").unlink()
    before = sorted(p.name for p in foreign.iterdir())
    for overwrite in (False, True):
        with pytest.raises(ModelFolderError, match=r"not written by these helpers"):
            export_model(build_tiny_pair().draft, foreign, INT8_ASYM, overwrite=overwrite)
    assert sorted(p.name for p in foreign.iterdir()) == before


def test_changed_settings_are_converted_again(tmp_path, tiny_models):
    dest = tmp_path / "draft"
    export_model(build_tiny_pair().draft, dest, INT8_ASYM)
    again = export_model(build_tiny_pair().draft, dest, WeightFormat(bits=8, sym=True))
    assert again.action == "exported" and read_manifest(dest)["weights"] == "int8 sym"


def test_missing_and_hf_folders_get_a_fix(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        check_ov_model_dir(tmp_path / "nothing")
    with pytest.raises(ModelFolderError, match="Hugging Face checkpoint"):
        check_ov_model_dir(build_tiny_pair().target)
    config_only = tmp_path / "config-only"  # no weights: `convert` would refuse it, so it must not be suggested
    config_only.mkdir()
    (config_only / "config.json").write_text("{")
    with pytest.raises(ModelFolderError, match="neither an OpenVINO model nor a complete") as info:
        check_ov_model_dir(config_only)
    assert "helpers convert" not in str(info.value)


def test_hub_id_offline_says_hub_unreachable(tmp_path):
    with pytest.raises(HubUnreachableError, match=r"local folder|copy the folder"):
        export_model("Qwen/Qwen3-0.6B", tmp_path / "q", INT8_ASYM)
    assert not (tmp_path / "q").exists()


def test_download_offline_says_hub_unreachable(tmp_path):
    with pytest.raises(HubUnreachableError):
        prepare_model(get_preset("qwen3-8b").draft, method="download", workdir=tmp_path)


def test_a_finished_download_serves_later_commands(tmp_path, tiny_models):
    """After `convert --method download`, later commands (prepare_preset's "auto") use the published model, not the hub."""
    preset = get_preset("qwen3-8b")
    for spec, made in ((preset.target, tiny_models.target), (preset.draft, tiny_models.draft)):
        downloaded = conversion.model_dir_for(spec, tmp_path, downloaded=True)
        shutil.copytree(made, downloaded)
        conversion.write_json(downloaded / conversion.MANIFEST_NAME, {
            "source": spec.preconverted, "weights": "pre-converted", "method": "download",
            "files": conversion.file_sizes(downloaded)})
    result = prepare_model(spec, method="auto", workdir=tmp_path)
    assert (result.action, result.path) == ("reused", downloaded)
    assert conversion.prepare_preset(preset, workdir=tmp_path).draft == downloaded  # "auto" by default
    with pytest.raises(HubUnreachableError):  # asked to convert, it converts (here: the hub, offline)
        prepare_model(spec, method="convert", workdir=tmp_path)
    (downloaded / "openvino_model.bin").write_bytes(b"")  # damaged since: not reused, so the hub is asked (offline here)
    with pytest.raises(HubUnreachableError):
        prepare_model(spec, method="auto", workdir=tmp_path)


def test_bad_source_is_named(tmp_path):
    with pytest.raises(ModelFolderError, match="neither an existing folder"):
        export_model("not-a-model", tmp_path / "x", INT8_ASYM)


def test_cli_command_matches_weight_format():
    command = optimum_cli_command("Qwen/Qwen3-8B", "out", WeightFormat(bits=4, group_size=128, ratio=0.8))
    assert command == ("optimum-cli export openvino --model Qwen/Qwen3-8B --task text-generation-with-past "
                       "--weight-format int4 --group-size 128 --ratio 0.8 out")


def test_a_copied_work_folder_stays_valid(tmp_path, monkeypatch, tiny_models):
    from helpers import paths

    original = paths.resolve_workdir()
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("tiny-hf", "models"):
        shutil.copytree(original / name, moved / name)
    models = conversion.prepare_preset(get_preset("tiny"), workdir=moved)
    assert [r.action for r in models.results] == ["reused", "reused"]
    assert models.target.is_relative_to(moved.resolve())
