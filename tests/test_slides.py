import math
import os

import pytest

from helpers import slides
from helpers.errors import ToolInputError


def _slide(title="Sizes", bullets=("0.6B to 32B dense", "two MoE models")):
    return {"title": title, "bullets": list(bullets)}


def test_deck_round_trip_with_chart(tmp_path):
    spec = slides.demo_deck_spec()
    path = slides.make_deck(tmp_path, **spec, filename="qwen3")
    assert path == tmp_path.resolve() / "qwen3.pptx"
    read = slides.read_deck(path)
    assert len(read) == 1 + len(spec["slides"])
    assert read[0]["title"] == spec["title"] and spec["subtitle"] in read[0]["lines"]
    for got, want in zip(read[1:], spec["slides"], strict=True):
        assert got["title"] == want["title"]
        assert [line.lstrip("• ") for line in got["lines"]] == want["bullets"]
        assert len(got["pictures"]) == (1 if "chart" in want else 0)
    assert read[3]["pictures"][0][:8] == b"\x89PNG\r\n\x1a\n"


def test_loose_inputs_models_often_send_are_accepted(tmp_path):
    spec = slides.parse_deck_spec("Qwen3", '[{"title": "Modes", "bullets": "- thinking\\n- non-thinking"}]')
    assert spec.slides[0].bullets == ("thinking", "non-thinking")
    assert slides.parse_deck_spec("  Qwen3  ", [_slide()]).title == "Qwen3"


@pytest.mark.parametrize(("title", "slide_list", "message"), [
    ("", [_slide()], "title is missing"),
    (None, [_slide()], "title is missing"),
    ("T", [], "slides is empty"),
    ("T", "not json [", "must be a list"),
    ("T", {"title": "x"}, "must be a list"),
    ("T", [_slide()] * (slides.MAX_SLIDES + 1), f"keep at most {slides.MAX_SLIDES}"),
    ("T", [_slide(bullets=["b"] * (slides.MAX_BULLETS + 1))], "split it into two slides"),
    ("x" * (slides.MAX_TITLE_CHARS + 1), [_slide()], "characters long"),
    ("T", [{"bullets": ["b"]}], "Slide 1 title is missing"),
    ("T", [_slide(), {"title": "Empty"}], "Slide 2 has neither bullets nor a chart"),
    ("T", ["just text"], "must be an object"),
    ("T", [{**_slide(), "notes": "x"}], "unknown field"),
    ("T", [{**_slide(), "chart": {"labels": ["a", "b"], "values": [1]}}], "as many labels as values"),
    ("T", [{**_slide(), "chart": {"labels": ["a"], "values": ["lots"]}}], "must be numbers"),
    ("T", [{**_slide(), "chart": {"labels": ["a"], "values": [math.nan]}}], "finite"),
    ("T", [{**_slide(), "chart": {"labels": list("abcdefghijklm"), "values": [1] * 13}}], "at most"),
])
def test_bad_specs_are_refused_with_a_fix(tmp_path, title, slide_list, message):
    with pytest.raises(ToolInputError, match=message):
        slides.make_deck(tmp_path, title, slide_list)
    assert not list(tmp_path.iterdir()), "a refused request writes nothing"


@pytest.mark.parametrize("name", ["../escape.pptx", "/tmp/abs.pptx", "sub/deck.pptx", ".hidden.pptx", "..", "a\\b.pptx",
                                  "deck.pptx/../../x.pptx", "~/deck.pptx"])
def test_paths_outside_the_folder_are_refused(tmp_path, name):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ToolInputError, match="refused|outside"):
        slides.make_deck(out, "T", [_slide()], filename=name)
    assert not any(tmp_path.rglob("*.pptx"))


def test_symlink_pointing_outside_is_refused(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere / "target.pptx", out / "link.pptx")
    with pytest.raises(ToolInputError, match="outside"):
        slides.safe_deck_path(out, "link.pptx")


def test_names_get_the_pptx_suffix_and_a_default(tmp_path):
    assert slides.safe_deck_path(tmp_path, "overview").name == "overview.pptx"
    assert slides.safe_deck_path(tmp_path, None).name == slides.DEFAULT_FILENAME


def test_write_is_atomic(tmp_path, monkeypatch):
    good = slides.make_deck(tmp_path, "T", [_slide()], filename="deck.pptx")
    before = good.read_bytes()

    def broken(data):
        raise RuntimeError("disk full")

    monkeypatch.setattr(slides, "atomic_write_bytes", lambda path, data: broken(data))
    with pytest.raises(RuntimeError):
        slides.make_deck(tmp_path, "Other", [_slide()], filename="deck.pptx")
    assert good.read_bytes() == before
    monkeypatch.undo()
    slides.make_deck(tmp_path, "Other", [_slide()], filename="deck.pptx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deck.pptx"], "no temporary files left behind"
    assert slides.read_deck(good)[0]["title"] == "Other"


def test_previews_fall_back_to_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setattr(slides.shutil, "which", lambda name: None)
    deck = slides.make_deck(tmp_path, **slides.demo_deck_spec())
    images, method = slides.preview_images(deck)
    assert "matplotlib" in method
    assert len(images) == 1 + len(slides.demo_deck_spec()["slides"])
    assert all(p.read_bytes()[:4] == b"\x89PNG" and p.parent == tmp_path / "deck-previews" for p in images)


def test_long_bullets_are_shortened_at_a_sentence_or_word():
    sentence = "Qwen3 comes in six dense sizes. "
    text = sentence * 12  # ~380 characters
    short = slides.shorten(text.strip(), slides.MAX_BULLET_CHARS)
    assert len(short) <= slides.MAX_BULLET_CHARS and short.endswith("sizes.")
    words = slides.shorten("word " * 100, 50)
    assert len(words) <= 50 and words.endswith("word…")
    deck = slides.parse_deck_spec("T", [_slide(bullets=[text, "short"])])
    assert deck.slides[0].bullets[0] == short and deck.slides[0].bullets[1] == "short"
