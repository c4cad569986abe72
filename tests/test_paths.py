from helpers import paths


def test_workdir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORIAL_WORKDIR", str(tmp_path / "w"))
    assert paths.workdir() == (tmp_path / "w").resolve()
    assert paths.models_dir() == (tmp_path / "w" / "models").resolve()
    assert paths.outputs_dir("nb").is_dir()


def test_use_workdir_sets_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORIAL_WORKDIR", str(tmp_path / "before"))
    assert paths.use_workdir(tmp_path / "after") == (tmp_path / "after").resolve()
    assert paths.use_workdir(None) == (tmp_path / "after").resolve()
