from pathlib import Path

from helpers import paths, settings


def test_default_workdir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORIAL_WORKDIR", str(tmp_path / "w"))
    assert paths.resolve_workdir() == (tmp_path / "w").resolve()
    assert paths.models_dir() == (tmp_path / "w" / "models").resolve()
    assert paths.outputs_dir(None, "nb").is_dir()


def test_a_given_workdir_wins_and_the_environment_is_not_touched(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORIAL_WORKDIR", str(tmp_path / "env"))
    given = tmp_path / "given"
    assert paths.models_dir(given) == given.resolve() / "models"
    assert paths.outputs_dir(given, "nb") == given.resolve() / "outputs" / "nb"
    assert Path(settings.env_workdir()) == (tmp_path / "env").resolve()


def test_downloads_dir_prefers_cache_then_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("TUTORIAL_DOWNLOADS", raising=False)
    assert paths.downloads_dir(tmp_path / "w") == (tmp_path / "w" / "downloads").resolve()
    monkeypatch.setenv("TUTORIAL_DOWNLOADS", str(tmp_path / "shared"))
    assert paths.downloads_dir(tmp_path / "w") == (tmp_path / "shared").resolve()
    assert paths.downloads_dir(tmp_path / "w", cache=tmp_path / "mine") == (tmp_path / "mine").resolve()
