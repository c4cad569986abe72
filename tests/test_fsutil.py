import json

import pytest

from helpers.fsutil import append_jsonl, atomic_directory, read_jsonl, remove_stale_partials, write_json


def test_atomic_directory_commits_only_on_success(tmp_path):
    final = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_directory(final) as tmp:
        (tmp / "half.bin").write_text("x")
        raise RuntimeError("interrupted")
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(final) as tmp:
        (tmp / "done.bin").write_text("x")
    assert (final / "done.bin").is_file()


def test_atomic_directory_refuses_to_clobber_unless_asked(tmp_path):
    final = tmp_path / "model"
    final.mkdir()
    with pytest.raises(FileExistsError), atomic_directory(final) as tmp:
        (tmp / "a").write_text("new")
    with atomic_directory(final, replace=True) as tmp:
        (tmp / "a").write_text("new")
    assert (final / "a").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_remove_stale_partials(tmp_path):
    (tmp_path / ".model.partial-abc").mkdir()
    (tmp_path / "model").mkdir()
    assert len(remove_stale_partials(tmp_path, "model")) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_jsonl_torn_tail_is_dropped_and_cut(tmp_path):
    path = tmp_path / "data.jsonl"
    append_jsonl(path, [{"a": 1}, {"a": 2}])
    with path.open("a") as handle:
        handle.write('{"a": 3, "b"')  # a crash mid-write
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    append_jsonl(path, [{"a": 3}])
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_jsonl_malformed_middle_line_is_an_error(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_jsonl(path)


def test_jsonl_in_another_encoding_says_so(tmp_path):
    path = tmp_path / "utf16.jsonl"
    path.write_text('{"text": "hi"}\n', encoding="utf-16")
    with pytest.raises(ValueError, match="line 1: not UTF-8 text"):
        read_jsonl(path, drop_torn_tail=False)
    assert path.read_text(encoding="utf-16") == '{"text": "hi"}\n'  # the user's file is left as it was


def test_write_json_is_complete(tmp_path):
    write_json(tmp_path / "r.json", {"x": [1, 2]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": [1, 2]}


def test_atomic_write_bytes_replaces_whole_files_only(tmp_path, monkeypatch):
    from helpers import fsutil

    path = tmp_path / "deck.pptx"
    fsutil.atomic_write_bytes(path, b"old")
    monkeypatch.setattr(fsutil.os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        fsutil.atomic_write_bytes(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["deck.pptx"]
    fsutil.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"


def test_a_full_disk_names_the_file_each_writer_was_writing_and_leaves_no_temporary(tmp_path, monkeypatch):
    """ENOSPC from write() carries no file name; every writer attaches the path it was asked to write."""
    import errno

    from helpers import fsutil

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    class FullDisk:  # a file whose write() fails as on a full disk, closing the real descriptor
        def __init__(self, fd, mode):
            self.handle = open(fd, mode)  # noqa: SIM115 -- closed by __exit__

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        write = staticmethod(full)

    monkeypatch.setattr(fsutil.os, "fdopen", FullDisk)
    monkeypatch.setattr(fsutil.os, "fsync", full)  # fsync reports ENOSPC after buffered writes, also without a name

    def fill_folder(folder):
        with fsutil.atomic_directory(folder):
            full()

    writers = {tmp_path / "deck.pptx": lambda path: fsutil.atomic_write_bytes(path, b"x"),
               tmp_path / "answers.jsonl": lambda path: fsutil.append_jsonl(path, [{"a": 1}]),
               tmp_path / "model": fill_folder}
    for path, write in writers.items():
        with pytest.raises(OSError) as info:
            write(path)
        assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.jsonl"]  # append opened it; nothing else is left


def test_read_json_distrusts_missing_torn_and_non_object_files(tmp_path):
    from helpers.fsutil import read_json

    assert read_json(tmp_path / "missing.json") is None
    (tmp_path / "torn.json").write_text('{"a": ')
    assert read_json(tmp_path / "torn.json") is None
    (tmp_path / "list.json").write_text("[1, 2]")
    assert read_json(tmp_path / "list.json") is None
    write_json(tmp_path / "ok.json", {"a": 1})
    assert read_json(tmp_path / "ok.json") == {"a": 1}


def test_check_writable_names_the_folder_and_a_full_disk_is_enospc(tmp_path, monkeypatch):
    import errno
    import shutil
    from collections import namedtuple

    from helpers.fsutil import check_writable, raise_if_disk_full

    check_writable(tmp_path / "new" / "deep")
    assert not (tmp_path / "new").exists()  # checked where it would be made, not created: a failed run leaves no folder
    check_writable(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError) as info:
        check_writable(blocker / "sub")
    assert info.value.errno in (errno.EEXIST, errno.ENOTDIR)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100, 100, 0))
    with pytest.raises(OSError) as info:
        raise_if_disk_full(tmp_path, RuntimeError("basic_ios::clear: iostream error"))
    assert info.value.errno == errno.ENOSPC
