"""scripts/cloud_links.py derives the Binder and Colab links from the git remote, so no README placeholder is needed."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from cloud_links import github_path


@pytest.mark.parametrize("url", ["https://github.com/intel/ov-agent.git", "git@github.com:intel/ov-agent.git",
                                 "https://github.com/intel/ov-agent", "ssh://git@github.com/intel/ov-agent.git\n"])
def test_github_path_from_any_remote_form(url):
    assert github_path(url) == "intel/ov-agent"


def test_a_remote_that_is_not_github_is_refused():
    with pytest.raises(SystemExit, match="not a GitHub repository"):
        github_path("https://gitlab.com/intel/ov-agent.git")


def test_readme_has_no_placeholder():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "OWNER/REPO" not in readme
