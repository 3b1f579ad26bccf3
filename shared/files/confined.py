"""Running a library that can spin or crash on hostile bytes in a child process, with limits.

Some readers hand bytes to a C library whose behaviour on a crafted file is
not ours to decide: libhdf5 (through h5py) can loop forever on one attribute
(SIGALRM cannot interrupt C code), allocate whatever a header declares, or
crash.  ``run_confined(work, path, library)`` runs ``work()`` in a forked
child instead of in the process itself:

- **time**: the parent waits at most ``seconds`` (``TIME_LIMIT``), then kills
  the child (SIGKILL reaches C code too) and refuses the file;
- **memory**: the child's address space may grow by ``memory`` bytes
  (``CHILD_MEMORY``, ``RLIMIT_AS`` set in the child), so an allocation past it
  fails in the child, not in the machine; no core file is written;
- **the answer is bytes**: ``work()`` returns ``bytes`` that go back through a
  pipe and that the caller decodes strictly (``shared.files.hdf5`` sends a
  JSON header and raw arrays).  Never a pickle: a child that a library bug
  took over cannot make the parent run anything.

A refusal raised in the child (``FileRefusedError``) comes back as the same
refusal; any other exception, a crash (a signal), the time or the memory
running out become one ``FileRefusedError`` naming the file and the library.

Forking copies the process as it is, so ``work`` is any function and no
interpreter has to start: the cost is a few milliseconds (docs/security.md
gives the measured figure).  The child runs only ``work`` and leaves with
``os._exit`` (no ``atexit``, no flush of the parent's buffers).  Where there is
no ``os.fork`` (Windows) the work runs in the process itself, without limits.

A library that only allocates, and can be trusted not to spin (PyTorch's
``weights_only`` unpickler reads a file once, front to back), runs in the process
under ``memory_limited``: the same address-space limit, set around the call and
restored after it, so that a bomb fails as a ``MemoryError`` (or the library's
"can't allocate") instead of growing the process.  Threads running meanwhile
share the limit: use it around a call made while nothing else runs.

Example:

    payload = run_confined(lambda: read_tree(data), "model.keras", "libhdf5 (h5py)")
    with memory_limited("model.pt", "torch.load"):
        state = torch.load(file, weights_only=True)
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import select
import signal
import time
from collections.abc import Callable

from shared.core.budget import gib
from shared.files.limits import MAX_FILE_BYTES
from shared.files.safe import FileRefusedError

TIME_LIMIT = 60.0  # seconds: reading a 2 GiB HDF5 file takes a few
CHILD_MEMORY = 4 << 30  # bytes the child may add: twice the largest file, and a margin
MAX_ANSWER = 2 * MAX_FILE_BYTES + (64 << 20)  # the most a child may send back

# What the last child used, for tests and docs/security.md: seconds from fork to
# exit, and its peak resident memory beyond what it had when it was forked.
last_child: dict[str, float] = {}


def run_confined(work: Callable[[], bytes], path: str | os.PathLike, library: str, *,
                 seconds: float | None = None, memory: int | None = None) -> memoryview:
    """``work()``'s bytes (a memoryview), computed in a child process with time and memory limits.

    Args:
        work: what to run; returns bytes (the caller's encoding) or raises.
        path: the file being read, named in refusals.
        library: who reads it, for messages ("libhdf5 (h5py)").
        seconds: the time limit; ``TIME_LIMIT`` when None.
        memory: how many bytes the child may allocate; ``CHILD_MEMORY`` when None.

    Raises:
        FileRefusedError: what ``work`` raised, or the child ran out of time or memory,
            crashed, or failed; one line naming the file.
    """
    seconds = TIME_LIMIT if seconds is None else seconds
    memory = CHILD_MEMORY if memory is None else memory
    if not hasattr(os, "fork"):
        return memoryview(work())
    started, resident = time.monotonic(), _resident_bytes()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, answer, leave; never return into the caller's code
        os.close(read_end)
        _child(work, write_end, memory)
    os.close(write_end)
    status = None
    try:
        answer = _collect(read_end, started + seconds, path, library, seconds)
        _, status, usage = os.wait4(pid, 0)
        last_child.update(seconds=time.monotonic() - started,
                          peak_bytes=max(0, usage.ru_maxrss * 1024 - resident))
    finally:
        os.close(read_end)
        if status is None:  # timed out, too long an answer, or Ctrl-C: stop the child now
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return _answer(answer, status, path, library, memory)


@contextlib.contextmanager
def memory_limited(path: str | os.PathLike, library: str, memory: int | None = None):
    """Runs the block with the address space capped at its current size + ``memory``.

    Raises:
        FileRefusedError: the block ran out of memory (a ``MemoryError``, or a library's
            error that says it could not allocate).
    """
    try:
        import resource
    except ImportError:  # Windows: no address-space limit to set
        yield
        return
    memory = CHILD_MEMORY if memory is None else memory
    size = _virtual_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if size is not None:
        resource.setrlimit(resource.RLIMIT_AS, (_cap(size + memory), hard))
    try:
        yield
    except (MemoryError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and "allocate" not in str(error):
            raise
        raise FileRefusedError(path, f"{library} needed more than {gib(memory)} of memory to "
                                     "read it (a bomb?); it was stopped") from None
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _child(work: Callable[[], bytes], fd: int, memory: int) -> None:
    code = 0
    try:
        faulthandler.disable()  # a crash is the parent's to report, in one line
        _limit(memory)
        try:
            payload = work()
            _write(fd, b"R")
            _write(fd, payload)
        except FileRefusedError as refused:
            _write(fd, b"E" + refused.reason.encode("utf-8", "replace"))
        except MemoryError:
            _write(fd, b"M")
        except Exception as error:  # a library's own exception: its type and first line
            first = (str(error).strip().splitlines() or [""])[0][:300]
            _write(fd, b"X" + f"{type(error).__name__}: {first}".rstrip(": ").encode())
    except BaseException:  # Ctrl-C, or the pipe closed: the parent decides what it means
        code = 1
    finally:
        os._exit(code)


def _limit(memory: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    size = _virtual_bytes()
    if size is not None:
        resource.setrlimit(resource.RLIMIT_AS, (_cap(size + memory), _hard()))


def _hard() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_AS)[1]


def _cap(limit: int) -> int:
    """``limit``, or the limit already in force where that is lower: a confined reader
    inside a confined run (a test's) never gets more than the run has left."""
    import resource

    for current in resource.getrlimit(resource.RLIMIT_AS):
        if current != resource.RLIM_INFINITY:
            limit = min(limit, current)
    return limit


def _statm(field: int) -> int | None:
    try:
        with open("/proc/self/statm", "rb") as file:
            return int(file.read().split()[field]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _virtual_bytes() -> int | None:
    return _statm(0)


def _resident_bytes() -> int:
    return _statm(1) or 0


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[: 1 << 20]):]


def _collect(fd: int, deadline: float, path, library: str, seconds: float) -> bytearray:
    """Everything the child writes, until it closes the pipe; refused past the deadline."""
    answer = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FileRefusedError(
                path, f"{library} did not finish reading it within {seconds:g} s (a file made "
                      "to make it spin?); it was stopped")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return answer
        answer += chunk
        if len(answer) > MAX_ANSWER:
            raise FileRefusedError(path, f"{library} read more than {gib(MAX_ANSWER)} from it; "
                                         "it was stopped")


def _answer(answer: bytearray, status: int, path, library: str, memory: int) -> memoryview:
    kind, body = bytes(answer[:1]), memoryview(answer)[1:]
    if kind == b"R" and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return body
    if kind == b"E":
        raise FileRefusedError(path, bytes(body).decode("utf-8", "replace"))
    if kind == b"M":
        raise FileRefusedError(path, f"{library} needed more than {gib(memory)} of memory to "
                                     "read it (a bomb?); it was stopped")
    if kind == b"X":
        detail = bytes(body).decode("utf-8", "replace")
        raise FileRefusedError(path, f"{library} could not read it ({detail})")
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        raise FileRefusedError(path, f"{library} crashed while reading it ({name}); the file is "
                                     "damaged or made to crash it")
    raise FileRefusedError(path, f"{library} stopped while reading it without an answer "
                                 f"(exit status {os.WEXITSTATUS(status)})")
