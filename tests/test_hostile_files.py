"""The safe-reading floor itself (``shared.files``), one rule at a time, each seen to refuse.

The readers' tests (``test_hostile_port.py``) show the rules at work on real
formats; here each rule is driven directly: the confined child's time, memory
and crash limits, bounded memory for a library call, zip members, names that
lead out of a folder, the TF checkpoint reader's checksums, CRC-32C itself,
and the removal of a killed writer's temporary files.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from shared.files import atomic
from shared.files.archive import open_zip
from shared.files.bundle import read_bundle
from shared.files.confined import memory_limited, run_confined
from shared.files.crc32c import _python_crc0, crc32c
from shared.files.external import inside, read_range
from shared.files.limits import check_within, declared_bytes
from shared.files.safe import FileRefusedError, brief
from tests import hostile_files as hf
from tests.refusal import refusal

# ---- the confined child ----


def test_a_c_loop_that_no_signal_interrupts_is_stopped_at_the_time_limit():
    # The regular-expression engine runs in C and does not return to Python for
    # years on this input: SIGALRM could not stop it, SIGKILL to the child does.
    spin = lambda: bytes(bool(re.match(r"(a+)+$", "a" * 64 + "b")))  # noqa: E731
    started = time.monotonic()
    message = refusal(lambda: run_confined(spin, "f.h5", "libhdf5 (h5py)", seconds=1),
                      FileRefusedError, "did not finish reading it within 1 s")
    assert time.monotonic() - started < 5 and message.startswith("f.h5: ")


@pytest.mark.parametrize("work, holds", [
    (lambda: np.ones(16 << 30, np.uint8).tobytes(), "needed more than 0.5 GiB of memory"),
    (lambda: os.kill(os.getpid(), 11), "crashed while reading it (SIGSEGV)"),
    (lambda: 1 / 0, "could not read it (ZeroDivisionError: division by zero)"),
    (lambda: (_ for _ in ()).throw(FileRefusedError("f.h5", "is a test refusal")),
     "f.h5: is a test refusal"),
])
def test_a_confined_child_ends_in_one_refusal(work, holds):
    message = refusal(lambda: run_confined(work, "f.h5", "libhdf5 (h5py)", memory=1 << 29),
                      FileRefusedError, holds)
    assert "\n" not in message and message.count("f.h5") == 1


def test_a_confined_child_sends_its_bytes_back_and_costs_milliseconds():
    answer = run_confined(lambda: b"x" * (8 << 20), "f.h5", "libhdf5 (h5py)")
    assert bytes(answer[:3]) == b"xxx" and len(answer) == 8 << 20
    started = time.perf_counter()
    for _ in range(3):
        run_confined(lambda: b"", "f.h5", "libhdf5 (h5py)")
    assert (time.perf_counter() - started) / 3 < 1.0  # a fork, not an interpreter start


def test_memory_limited_stops_an_allocation_and_then_lifts_its_limit():
    import resource

    before = resource.getrlimit(resource.RLIMIT_AS)
    with pytest.raises(FileRefusedError, match=r"torch\.load needed more than 0\.5 GiB"), \
            memory_limited("m.pt", "torch.load", memory=1 << 29):
        np.ones(16 << 30, np.uint8)
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    np.ones(64 << 20, np.uint8)  # what fits is fine again


# ---- declared sizes ----

@pytest.mark.parametrize("shape, holds", [
    ((30000, 30000), "declares 30000 x 30000 values of 4 bytes, over the 1 GiB"),
    ((-1, 4), "declares the dimension '-1'"),
    ((2.5,), "declares the dimension '2.5'"),
    ((10 ** 400, 0), "declares the dimension"),  # a product that would overflow int64
])
def test_a_declared_shape_is_refused_before_anything_is_allocated(shape, holds):
    if shape == (10 ** 400, 0):
        assert declared_bytes((0, 10 ** 400), 4, "x", "f") == 0  # zero of anything is zero
        shape = (10 ** 400, 2)
        holds = "over the 1 GiB"
    refusal(lambda: declared_bytes(shape, 4, "dataset /kernel", "f.h5"), FileRefusedError, holds)


def test_declared_bytes_beyond_the_file_are_refused():
    refusal(lambda: check_within(100, 10, "tensor 'W'", "m.onnx"), FileRefusedError,
            "tensor 'W' declares 100 bytes but the file holds only 10")
    check_within(5000, 100, "member", "m.zip", expansion=100)  # under the first MiB: fine
    refusal(lambda: check_within(1 << 30, 1 << 20, "member", "m.zip", expansion=100),
            FileRefusedError, "more than the 100x expansion")


def test_brief_keeps_a_hostile_value_short():
    assert len(brief("x" * 10_000_000)) < 100
    assert len(brief([[["deep"] * 1000] * 1000])) < 100
    assert brief("a\nb", quote=False) == "a\\nb"


# ---- zip archives ----

def test_a_zip_that_names_one_member_twice_is_refused(tmp_path):
    path = tmp_path / "twice.keras"
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr("config.json", b"{}")
        archive.writestr("config.json", b"[]")
    with pytest.raises(FileRefusedError, match=r"holds the member 'config\.json' twice"), \
            open_zip(path, "zip"):
        pass


def test_a_zip_member_is_read_only_up_to_the_size_asked(tmp_path):
    path = hf.write_keras(tmp_path / "m.keras")
    with open_zip(path, "Keras 3 .keras file") as archive:
        assert archive.read("config.json").startswith(b"{")
        refusal(lambda: archive.read("model.weights.h5", max_bytes=100), FileRefusedError,
                "member 'model.weights.h5' is")
        refusal(lambda: archive.read("absent"), FileRefusedError, "holds no 'absent'")


# ---- names that files give other files ----

@pytest.mark.parametrize("location", ["../x", "/etc/passwd", "a/../../x", "", "a\x00b", "."])
def test_a_name_that_leads_out_of_its_folder_is_refused(tmp_path, location):
    refusal(lambda: inside(tmp_path, location, "m.onnx", "tensor 'W'"), FileRefusedError,
            "tensor 'W' keeps its data at")


def test_a_symlink_out_and_a_fifo_or_device_inside_are_refused(tmp_path):
    (tmp_path / "out").symlink_to("/etc")
    refusal(lambda: inside(tmp_path, "out/hostname", "m.onnx", "tensor 'W'"), FileRefusedError,
            "outside its folder")
    os.mkfifo(tmp_path / "pipe")
    refusal(lambda: read_range(inside(tmp_path, "pipe", "m.onnx", "t"), 0, 4, "t"),
            FileRefusedError, "is a FIFO (named pipe)")
    (tmp_path / "zero").symlink_to("/dev/zero")
    refusal(lambda: read_range(tmp_path / "zero", 0, 4, "t"), FileRefusedError,
            "character device")
    assert inside(tmp_path, "/".join([str(tmp_path), "pipe"]), "state", "t", absolute=True)


# ---- TF checkpoints, without TensorFlow ----

def test_a_checkpoint_written_by_hand_reads_back_exactly(tmp_path):
    tensors = hf.tf1_tensors()
    bundle = read_bundle(hf.write_bundle(tmp_path / "model.ckpt", tensors))
    assert bundle.shapes == {name: value.shape for name, value in tensors.items()}
    for name, value in tensors.items():
        np.testing.assert_array_equal(bundle.read(name), value)


@pytest.mark.parametrize("where, holds", [
    ("data", "does not match its checksum (CRC-32C): the data is corrupted"),
    ("index block", "has a block that does not match its checksum"),
    ("footer", "not a TF checkpoint index (no LevelDB table footer)"),
])
def test_a_flipped_byte_in_a_checkpoint_is_caught_by_its_checksums(tmp_path, where, holds):
    prefix = hf.write_bundle(tmp_path / "model.ckpt")
    name = {"data": "model.ckpt.data-00000-of-00001"}.get(where, "model.ckpt.index")
    raw = bytearray((tmp_path / name).read_bytes())
    raw[{"data": -5, "index block": 12, "footer": -1}[where]] ^= 0x10  # -5: in the kernel
    (tmp_path / name).write_bytes(raw)
    refusal(lambda: read_bundle(prefix).read("rnn/lstm_cell/kernel"), FileRefusedError, holds)


# ---- CRC-32C ----

@pytest.mark.parametrize("size", [0, 1, 63, 64, 4095, 4096 * 64 + 17])
def test_crc32c_in_lanes_equals_the_byte_at_a_time_definition(size):
    data = np.random.default_rng(size).bytes(size)
    assert crc32c(data) == ~_python_crc0(data, 0xFFFFFFFF) & 0xFFFFFFFF
    assert crc32c(b"123456789") == 0xE3069283  # the polynomial's published check value


# ---- a killed writer's temporary files ----

def test_the_next_write_removes_a_killed_writers_temporary_file(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(done.stdout)  # a PID that ran and ended
    target = tmp_path / "model.safetensors"
    stale = tmp_path / f".model.safetensors.{dead}.k2j3.tmp"
    mine = tmp_path / f".model.safetensors.{os.getpid()}.a1b2.tmp"  # a writer still running
    old = tmp_path / ".model.safetensors.q9w8e7.tmp"  # an earlier version's name, no PID
    for path in (stale, mine, old):
        path.write_bytes(b"half of a file")
    os.utime(old, (time.time() - 2 * atomic.OLD_SECONDS,) * 2)
    assert set(atomic.stale_temporaries(target)) == {str(stale), str(old)}
    atomic.write_atomically(target, b"new")
    assert target.read_bytes() == b"new" and not stale.exists() and not old.exists()
    assert mine.exists()
