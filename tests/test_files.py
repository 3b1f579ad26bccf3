"""Opening files (shared/files/safe.py) and writing them (shared/files/atomic.py).

Opening: each of the three loaders (checkpoints, tokenizers, pair files) is
handed every kind of path that is not a readable regular file: each must answer
at once with its own one-line refusal naming the path, never block on a FIFO,
never read a device that does not end, never raise a bare OSError; sizes are
checked before reads, and JSON is parsed strictly.

Writing: a file is replaced whole or not at all, whatever interrupts the write
(a full disk, an I/O error, Ctrl-C), and no temporary file is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import tracemalloc

import pytest

from shared import CheckpointError, Tokenizer, load_checkpoint, read_pairs, save_checkpoint
from shared.files.atomic import write_atomically
from shared.files.safe import (
    MAX_DEPTH,
    MAX_DIGITS,
    FileRefusedError,
    loads,
    open_regular,
    read_exactly,
    read_regular,
    shown,
)
from tests.checkpoint_files import make_parts


def _write_checkpoint(path):
    save_checkpoint(path, *make_parts(num_layers=1, bidirectional=False))


def _write_tokenizer(path):
    Tokenizer.build(["hello"]).save(path)


def _write_pairs(path):
    path.write_bytes(b"hello\tbonjour\n")


# name: (load, error type, prefix before the reason, kind in messages, writer of a good file)
LOADERS = {
    "checkpoint": (load_checkpoint, CheckpointError, "checkpoint {}: ", "checkpoint file",
                   _write_checkpoint),
    "tokenizer": (Tokenizer.load, ValueError, "tokenizer file {}: ", "tokenizer file",
                  _write_tokenizer),
    "pairs": (read_pairs, ValueError, "{}: ", "pair file", _write_pairs),
}


@contextlib.contextmanager
def _socket_path():
    """A bound Unix socket; in a short folder, since a socket's path is at most ~108 bytes."""
    folder = tempfile.mkdtemp(prefix="sock")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(os.path.join(folder, "s"))
        yield os.path.join(folder, "s")
    finally:
        server.close()
        shutil.rmtree(folder)


def _fifo(tmp, good):
    os.mkfifo(tmp / "fifo")
    return tmp / "fifo"


def _dev_zero(tmp, good):
    os.symlink("/dev/zero", tmp / "zero")
    return tmp / "zero"


def _loop(tmp, good):
    os.symlink(tmp / "b", tmp / "a")
    os.symlink(tmp / "a", tmp / "b")
    return tmp / "a"


def _dangling(tmp, good):
    os.symlink(tmp / "nowhere", tmp / "dangling")
    return tmp / "dangling"


def _directory(tmp, good):
    (tmp / "folder").mkdir()
    return tmp / "folder"


# name: (make the path from (tmp_path, a good file), the reason's text)
SPECIAL = {
    "fifo": (_fifo, "is a FIFO (named pipe), not a {kind}; only regular files are read"),
    "symlink to /dev/zero": (
        _dev_zero,
        "is a symlink to a character device (/dev/zero), not a {kind}; only regular files",
    ),
    "directory": (_directory, "is a directory, not a {kind}"),
    "symlink loop": (_loop, "too many levels of symbolic links (a symlink loop?)"),
    "long name": (lambda tmp, good: tmp / ("x" * 300), "the name is too long for the file system"),
    "path through a file": (
        lambda tmp, good: good / "inside",
        "a part of the path is a file, not a directory",
    ),
    "NUL in the path": (
        lambda tmp, good: f"{tmp}/a\0b",
        "the path holds a NUL byte; no file can have that name",
    ),
    "missing": (lambda tmp, good: tmp / "missing", "no such file"),
    "dangling symlink": (_dangling, "no such file"),
}


def _refusal_within(load, path, seconds=10.0) -> BaseException | None:
    """What ``load(path)`` raised, from a thread, failing the test if it is still busy."""
    outcome = {}

    def run():
        try:
            load(path)
        except BaseException as error:  # the test inspects whatever came
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        with contextlib.suppress(OSError):  # a reader blocked on a FIFO: give it a writer
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"{load.__qualname__}({path!r}) was still running after {seconds} s")
    return outcome.get("error")


def _check(loader, path, reason):
    load, error_type, prefix, kind, _ = LOADERS[loader]
    error = _refusal_within(load, path)
    assert isinstance(error, error_type), f"{loader}: {type(error).__name__}: {error}"
    message = str(error)
    assert message.startswith(prefix.format(shown(path))), message
    assert "\n" not in message and message.count(shown(path)) == 1, message
    assert reason.format(kind=kind) in message, message


@pytest.mark.parametrize("special", list(SPECIAL))
@pytest.mark.parametrize("loader", list(LOADERS))
def test_a_path_that_is_not_a_regular_file_is_refused_at_once(tmp_path, loader, special):
    make, reason = SPECIAL[special]
    good = tmp_path / "good"
    LOADERS[loader][4](good)
    _check(loader, make(tmp_path, good), reason)


@pytest.mark.parametrize("loader", list(LOADERS))
def test_a_socket_is_refused(tmp_path, loader):
    with _socket_path() as path:
        _check(loader, path, "is a socket, not a {kind}")


@pytest.mark.parametrize("loader", list(LOADERS))
def test_a_symlink_to_a_regular_file_loads(tmp_path, loader):
    load, *_, write = LOADERS[loader]
    write(tmp_path / "real")
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert str(load(tmp_path / "link")) == str(load(tmp_path / "real"))


# ---- reading: sizes first, exact counts ----


def test_read_regular_refuses_a_large_file_without_reading_it(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"")
    os.truncate(path, 2**30)  # sparse: no disk, but 1 GiB if read
    tracemalloc.start()
    try:
        with pytest.raises(FileRefusedError) as refused:
            read_regular(path, "pair file", max_bytes=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(refused.value) == (
        f"{path}: is {2**30} bytes; a pair file of more than 1000 bytes is not read"
    )
    assert peak < 2**20, f"{peak} bytes allocated"


def test_read_exactly_reads_no_more_than_asked_and_refuses_a_short_file(tmp_path):
    path = tmp_path / "ten"
    path.write_bytes(bytes(range(10)))
    with open_regular(path) as (file, size):
        assert size == 10
        assert read_exactly(file, 4, path) == bytes(range(4))
        assert file.tell() == 4
        with pytest.raises(FileRefusedError, match=r"ended after 6 of 7 bytes"):
            read_exactly(file, 7, path)


def test_shown_quotes_a_name_that_would_break_the_line():
    assert shown("model.safetensors") == "model.safetensors"
    assert shown("a\0b") == "'a\\x00b'" and shown("a\nb") == "'a\\nb'"
    assert shown(b"bytes.json") == "bytes.json"


# ---- strict JSON ----


def _refused(text, max_size=10**6) -> str:
    with pytest.raises(FileRefusedError) as refused:
        loads(text, "f.json", max_size)
    message = str(refused.value)
    assert message.startswith("f.json: ") and "\n" not in message, message
    return refused.value.reason


def test_loads_takes_json_up_to_the_limits():
    deepest = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(deepest, "f.json", 10**6) == json.loads(deepest)
    brackets = json.dumps({"text": '"[{' * 1000, "escaped": '\\"[[['})
    assert loads(brackets, "f.json", 10**6) == json.loads(brackets)  # strings do not nest
    longest = "9" * MAX_DIGITS
    assert loads(f"[{longest}, -1.5e3, true, null]", "f.json", 10**6) == [
        int(longest), -1500.0, True, None
    ]
    assert loads(b'{"caf\xc3\xa9": 1}', "f.json", 10**6) == {"café": 1}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 100_000, f"nests JSON deeper than {MAX_DEPTH} levels"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"nests JSON deeper than {MAX_DEPTH}"),
        ('{"a": ' * 100_000, f"nests JSON deeper than {MAX_DEPTH} levels"),
        ("7" * 5000, "holds a number written with 5000 characters; at most 300 are read"),
        ("9" * (MAX_DIGITS + 1), f"written with {MAX_DIGITS + 1} characters"),
        ("0." + "1" * 5000, "holds a number written with 5002 characters"),
        ("[NaN]", "holds NaN, which is not JSON"),
        ("-Infinity", "holds -Infinity, which is not JSON"),
        ("1e999", "holds the number 1e999, too large for a float"),
        ('{"a": {"b": 1, "b": 2}}', "repeats the key 'b' in one JSON object"),
        ('{"a": 1,', "is not valid JSON (corrupt or truncated?): Expecting property name"),
        (b"\xff[]", "is not UTF-8 text (invalid start byte)"),
    ],
    ids=["100000 brackets", "one level too deep", "100000 objects", "5000 digits",
         "one digit too many", "5000 decimals", "NaN", "-Infinity", "1e999", "repeated key",
         "truncated", "not UTF-8"],
)
def test_loads_refuses_what_strict_json_forbids(text, reason):
    assert reason in _refused(text)


def test_loads_refuses_a_text_over_its_size_before_parsing():
    assert _refused("[1, 2]", max_size=5) == "is 6 characters long; at most 5 are parsed"
    assert _refused(b"[1, 2]", max_size=5) == "is 6 bytes long; at most 5 are parsed"


# ---- writing: whole or not at all ----


def test_write_atomically_writes_the_bytes_and_replaces_an_old_file(tmp_path):
    path = tmp_path / "out.bin"
    write_atomically(path, b"first")
    assert path.read_bytes() == b"first"
    write_atomically(str(path), b"second, longer")
    assert path.read_bytes() == b"second, longer"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_the_temporary_file_is_in_the_targets_folder(tmp_path, monkeypatch):
    """os.replace is atomic only within one file system: the temporary file sits beside DST."""
    renames = []
    real = os.replace

    def recording(source, target):
        renames.append((os.path.dirname(source), os.path.basename(source), target))
        real(source, target)

    monkeypatch.setattr(os, "replace", recording)
    write_atomically(tmp_path / "out.bin", b"data")
    ((folder, name, target),) = renames
    assert folder == str(tmp_path) and target == str(tmp_path / "out.bin")
    assert name.startswith(".out.bin.") and name.endswith(".tmp"), name


def _fail_writing_halfway(monkeypatch):
    real = tempfile.NamedTemporaryFile

    def half_writing(*args, **kwargs):
        file = real(*args, **kwargs)

        def write(data):
            file.file.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

        file.write = write
        return file

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", half_writing)


def _raise_at(target, error):
    def fail(*args, **kwargs):
        raise error

    return lambda monkeypatch: monkeypatch.setattr(os, target, fail)


INTERRUPTIONS = {
    "disk full mid-write": (_fail_writing_halfway, OSError),
    "fsync fails": (_raise_at("fsync", OSError(5, "Input/output error")), OSError),
    "chmod fails": (_raise_at("chmod", PermissionError(1, "Operation not permitted")), OSError),
    "Ctrl-C before the rename": (_raise_at("replace", KeyboardInterrupt()), KeyboardInterrupt),
}


@pytest.mark.parametrize("name", INTERRUPTIONS)
def test_an_interrupted_write_keeps_the_old_file_and_leaves_nothing(tmp_path, monkeypatch, name):
    interrupt, error = INTERRUPTIONS[name]
    old = tmp_path / "old.bin"
    old.write_bytes(b"the old file")
    with monkeypatch.context() as patch:
        interrupt(patch)
        with pytest.raises(error):
            write_atomically(old, b"the new file, never seen")
        with pytest.raises(error):
            write_atomically(tmp_path / "new.bin", b"a first write")
    assert os.listdir(tmp_path) == ["old.bin"], "a temporary file was left behind"
    assert old.read_bytes() == b"the old file"


def test_a_missing_folder_is_an_error_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "no" / "out.bin", b"data")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize(
    ("umask", "mode"), [(0o027, 0o640), (0o022, 0o644), (0o077, 0o600)],
    ids=["umask 027", "umask 022", "umask 077"],
)
def test_a_written_file_has_the_permissions_of_any_new_file(tmp_path, umask, mode):
    """NamedTemporaryFile makes 0o600 files; the writer gives what open(path, "w") would."""
    previous = os.umask(umask)
    try:
        write_atomically(tmp_path / "out.bin", b"data")
        with open(tmp_path / "plain.bin", "w"):
            pass
    finally:
        os.umask(previous)
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == mode
    assert (tmp_path / "plain.bin").stat().st_mode & 0o777 == mode
