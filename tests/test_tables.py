from helpers.tables import human_bytes, markdown_table, show_table


def test_markdown_table_formats_numbers_and_missing_values():
    text = markdown_table([{"a": 1.23456, "b": None}, {"a": 12345.6, "b": "x"}])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1.23 | - |", "| 12,346 | x |"]
    assert markdown_table([]) == "(no rows)"
    assert markdown_table([{"a": 1, "b": 2}], ["b"]).splitlines()[0] == "| b |"


def test_show_table_prints_outside_jupyter(capsys):
    show_table([{"a": 1}])
    assert "| a |" in capsys.readouterr().out


def test_human_bytes():
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 2**30) == "3.0 GiB"


def test_show_table_puts_its_caption_above(capsys):
    show_table([{"a": 1}], caption="tiny: a plumbing check")
    out = capsys.readouterr().out
    assert out.startswith("**tiny: a plumbing check**") and out.index("plumbing") < out.index("| a |")
