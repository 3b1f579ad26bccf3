"""HDF5 files from strangers (Keras ``.h5``, a ``.keras`` file's ``model.weights.h5``), read safely.

libhdf5 is a large C library, and a crafted file can make it spin forever,
allocate what a header declares or crash, where no Python code can stop it.
So ``read_hdf5`` never opens a stranger's file in the process itself: a child
(``shared.files.confined``, with a time and a memory limit) walks the whole
file once and sends back plain data, and the caller gets an in-memory tree
that reads like h5py's (``tree["layers/lstm/vars"]``, ``.attrs``, ``.get``,
``.visititems``, ``dataset[()]``), in which nothing can go wrong any more.

The child checks, before it reads any array or attribute:

- every link stays inside the file: an external link, an external or a virtual
  dataset is refused (``port`` reads only what is inside SRC);
- each object is reached once: a hard link back to a group (a cycle) or to an
  object seen before is refused, and groups nest at most ``MAX_GROUP_DEPTH`` deep;
- at most ``MAX_PARTS`` objects;
- a dataset's declared bytes (shape x item size) are within the cap and are
  really stored: a dataset whose storage is smaller than its shape (a fill
  value standing in for gigabytes) is refused, compressed chunks may expand at
  most ``MAX_EXPANSION`` times;
- an attribute's declared bytes fit ``MAX_JSON_BYTES`` and the file.

Numbers come back as NumPy arrays (booleans, integers and floats of the
file's byte order made native); any other dataset type is listed with its
shape but holds no data (reading it is refused by name).  Attributes come back
as ``str``, a list of ``str``, or an array.

Example:

    tree = read_hdf5("model.h5", "legacy Keras .h5 model")
    config = tree.attrs["model_config"]                    # a str
    kernel = tree["model_weights/lstm/lstm/kernel:0"][()]  # a NumPy array
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Iterator

import numpy as np

from shared.files.confined import run_confined
from shared.files.limits import (
    MAX_EXPANSION,
    MAX_FILE_BYTES,
    MAX_JSON_BYTES,
    MAX_PARTS,
    check_within,
    declared_bytes,
)
from shared.files.safe import FileRefusedError, loads, open_regular, shown

LIBRARY = "libhdf5 (h5py)"
MAX_GROUP_DEPTH = 64  # Keras nests a model's groups about 8 deep
MAX_LINK_HOPS = 16  # soft links followed one after another
_NUMBERS = re.compile(r"^[<>|=]?[fiub]\d{1,2}$")  # dtype strings of plain numbers


# ---- the tree the caller reads ----

class Dataset:
    """An array read from the file: ``dataset[()]`` is a NumPy array (read-only).

    Attributes:
        name: the absolute path in the file ("/layers/lstm/vars/0").
        shape: the declared shape.
        dtype: the NumPy dtype, or None for a type that is not plain numbers.
        attrs: {name: str | list[str] | np.ndarray}.
    """

    def __init__(self, path: str, name: str, shape: tuple, dtype, data, attrs: dict,
                 kind: str) -> None:
        self.path, self.name, self.shape, self.dtype = path, name, shape, dtype
        self._data, self.attrs, self._kind = data, attrs, kind

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key):
        if self._data is None:
            raise FileRefusedError(self.path, f"dataset {self.name} holds {self._kind} data, "
                                              "not numbers")
        return self._data[key]


class Group:
    """A group of the file: its members by name, like h5py's ``Group``."""

    def __init__(self, path: str, name: str, attrs: dict, root: Group | None = None) -> None:
        self.path, self.name, self.attrs = path, name, attrs
        self.root = root or self
        self._members: dict[str, Group | Dataset] = {}
        self._soft: dict[str, str] = {}  # soft links: name -> target path

    def __iter__(self) -> Iterator[str]:
        yield from self._members
        yield from self._soft

    def __len__(self) -> int:
        return len(self._members) + len(self._soft)

    def keys(self) -> list[str]:
        return list(self)

    def __contains__(self, path: str) -> bool:
        return self.get(path) is not None

    def __getitem__(self, path: str) -> Group | Dataset:
        found = self.get(path)
        if found is None:
            raise KeyError(path)
        return found

    def get(self, path: str, default=None, _hops: int = 0):
        """The member at ``path`` (relative, or absolute from the root), or ``default``.

        A soft link is followed to its target, at most ``MAX_LINK_HOPS`` in a row.
        """
        if not isinstance(path, str):
            return default
        node: Group | Dataset = self.root if path.startswith("/") else self
        for part in (p for p in path.split("/") if p and p != "."):
            if not isinstance(node, Group):
                return default
            if part in node._members:
                node = node._members[part]
            elif part in node._soft and _hops < MAX_LINK_HOPS:
                node = node.root.get(node._soft[part], None, _hops + 1)
                if node is None:
                    return default
            else:
                return default
        return node

    def visititems(self, visit: Callable[[str, Group | Dataset], object]) -> object:
        """Calls ``visit(relative name, member)`` for every member below, groups first;
        stops at the first that returns something other than None (h5py's rule).
        Soft links are not followed, as in h5py."""
        stack = [("", self)]
        while stack:
            prefix, group = stack.pop()
            for name, member in group._members.items():
                relative = f"{prefix}{name}"
                found = visit(relative, member)
                if found is not None:
                    return found
                if isinstance(member, Group):
                    stack.append((f"{relative}/", member))
        return None


def read_hdf5(source: str | os.PathLike | bytes, kind: str,
              path: str | os.PathLike | None = None) -> Group:
    """An HDF5 file, read whole in a confined child and checked, as an in-memory tree.

    Args:
        source: the file's path, or its bytes (a zip member's).
        kind: what it should be, for messages ("legacy Keras .h5 model").
        path: the name messages give the file (for bytes: "model.keras: model.weights.h5").

    Raises:
        FileRefusedError: one line naming the file: not HDF5, damaged, a rule of the
            module docstring broken, or libhdf5 too slow, too hungry or crashed on it.
    """
    where = shown(path if path is not None else source)
    if isinstance(source, bytes | bytearray | memoryview):
        size = len(source)
        payload = run_confined(lambda: _walk(io.BytesIO(source), size, where, kind), where,
                               LIBRARY)
    else:
        with open_regular(source, kind) as (file, size):
            payload = run_confined(lambda: _walk(file, size, where, kind), where, LIBRARY)
    return _tree(payload, where)


# ---- in the child: walk the file and encode it ----

def _h5py(where: str):
    try:
        import h5py
    except ImportError:
        raise FileRefusedError(where, "reading HDF5 files needs h5py (pip install h5py; it "
                                      "comes with TensorFlow and Keras)") from None
    return h5py


def _walk(file, size: int, where: str, kind: str) -> bytes:
    h5py = _h5py(where)
    head = file.read(8)
    file.seek(0)
    if head != b"\x89HDF\r\n\x1a\n":
        raise FileRefusedError(where, f"is not an HDF5 file (it starts with {head!r}), not a "
                                      f"{kind}")
    try:
        h5 = h5py.File(file, "r")
    except OSError as error:
        raise FileRefusedError(where, f"is a damaged or truncated HDF5 file ({_first(error)})"
                               ) from None
    with h5:
        walker = _Walker(h5py, where, size)
        walker.walk(h5)
    return walker.encode()


def _first(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


class _Walker:
    """One pass over the file, iterative, each object once; the arrays kept in order."""

    def __init__(self, h5py, where: str, size: int) -> None:
        self.h5py, self.where, self.size = h5py, where, size
        self.groups: dict[str, dict] = {}
        self.datasets: dict[str, dict] = {}
        self.arrays: list[np.ndarray] = []
        self.offset = 0
        self.seen: set = set()

    def walk(self, h5) -> None:
        h5py = self.h5py
        self.seen.add(hash(h5.id))
        stack = [("/", h5, 0)]
        while stack:
            name, group, depth = stack.pop()
            if depth > MAX_GROUP_DEPTH:
                raise FileRefusedError(self.where, f"nests groups deeper than {MAX_GROUP_DEPTH} "
                                                   f"levels (at {name[:200]})")
            entry = {"attrs": self.attributes(group, name), "members": [], "soft": {}}
            self.groups[name] = entry
            for key in group:
                full = f"{name.rstrip('/')}/{key}"
                link = group.get(key, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    raise FileRefusedError(self.where, f"{full} is an external link to "
                                                       f"{link.filename}; only what is inside "
                                                       "the file is read")
                if isinstance(link, h5py.SoftLink):
                    entry["soft"][key] = link.path
                    continue
                item = group.get(key)
                identity = hash(item.id)
                if identity in self.seen:
                    raise FileRefusedError(self.where, f"{full} links to an object reached "
                                                       "before (a hard-link cycle?); each "
                                                       "object is read once")
                self.seen.add(identity)
                if len(self.seen) > MAX_PARTS:
                    raise FileRefusedError(self.where, f"holds more than {MAX_PARTS} objects")
                if isinstance(item, h5py.Group):
                    entry["members"].append(key)
                    stack.append((full, item, depth + 1))
                elif isinstance(item, h5py.Dataset):
                    entry["members"].append(key)
                    self.datasets[full] = self.dataset(item, full)
                # A committed (named) datatype holds no data: nothing to read.

    def dataset(self, item, full: str) -> dict:
        if item.external or item.is_virtual:
            raise FileRefusedError(self.where, f"dataset {full} keeps its data in another "
                                               "file; only what is inside the file is read")
        shape = item.shape if item.shape is not None else ()
        entry = {"shape": list(shape), "attrs": self.attributes(item, full)}
        dtype = item.dtype
        if dtype.kind not in "fiub" or dtype.fields or dtype.subdtype:
            entry["kind"] = str(dtype)[:60]
            return entry
        what = f"dataset {full}"
        nbytes = declared_bytes(shape, dtype.itemsize, what, self.where)
        stored = item.id.get_storage_size()
        check_within(stored, self.size, what, self.where)
        if item.id.get_create_plist().get_nfilters():
            check_within(nbytes, stored, what, self.where, MAX_EXPANSION)
        elif stored < nbytes:
            raise FileRefusedError(
                self.where, f"{what} declares {nbytes} bytes but stores {stored} (a fill "
                            "value stands in for the rest: a bomb?); nothing was read")
        entry.update(self.array(np.asarray(item[()])))
        return entry

    def array(self, value: np.ndarray) -> dict:
        value = np.ascontiguousarray(value.astype(value.dtype.newbyteorder("="), copy=False))
        if self.offset + value.nbytes > MAX_FILE_BYTES:
            raise FileRefusedError(self.where, f"holds more than {MAX_FILE_BYTES} bytes of "
                                               "arrays; at most that many are read")
        self.arrays.append(value)
        entry = {"dtype": value.dtype.str, "shape": list(value.shape), "offset": self.offset}
        self.offset += value.nbytes
        return entry

    def attributes(self, item, name: str) -> dict:
        h5py, found = self.h5py, {}
        names = list(item.attrs)
        if len(names) > MAX_PARTS:
            raise FileRefusedError(self.where, f"{name} has more than {MAX_PARTS} attributes")
        for key in names:
            what = f"attribute {key[:80]!r} of {name}"
            attribute = h5py.h5a.open(item.id, key.encode("utf-8", "surrogateescape"))
            points = attribute.get_space().get_simple_extent_npoints()
            nbytes = declared_bytes((points,), attribute.get_type().get_size(), what,
                                    self.where, cap=MAX_JSON_BYTES)
            check_within(nbytes, self.size, what, self.where)
            found[key] = self.value(item.attrs[key])
        return found

    def value(self, value) -> dict:
        if isinstance(value, bytes | str):
            return {"text": _text(value)}
        array = np.asarray(value)
        if array.dtype.kind in "SUO":
            return {"texts": [_text(v) for v in array.ravel().tolist()]}
        if array.dtype.kind in "fiub" and not array.dtype.fields:
            return {"array": self.array(array)}
        return {"other": str(array.dtype)[:60]}

    def encode(self) -> bytes:
        header = json.dumps({"groups": self.groups, "datasets": self.datasets}).encode()
        return b"".join([len(header).to_bytes(8, "little"), header,
                         *(a.tobytes() for a in self.arrays)])


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# ---- in the parent: decode what the child sent, trusting nothing ----

def _tree(payload: memoryview, where: str) -> Group:
    try:
        return _build(payload, where)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        if isinstance(error, FileRefusedError):
            raise
        raise FileRefusedError(where, f"{LIBRARY} sent back a damaged answer") from None


def _build(payload: memoryview, where: str) -> Group:
    if len(payload) < 8:
        raise FileRefusedError(where, f"{LIBRARY} sent back too little")
    length = int.from_bytes(payload[:8], "little")
    if length > len(payload) - 8:
        raise FileRefusedError(where, f"{LIBRARY} sent back a damaged answer")
    header = loads(bytes(payload[8 : 8 + length]), where, length)
    data = payload[8 + length :]
    if not isinstance(header, dict) or not isinstance(header.get("groups"), dict):
        raise FileRefusedError(where, f"{LIBRARY} sent back a damaged answer")
    decode = _Decoder(where, data)
    root = Group(where, "/", decode.attributes(header["groups"].get("/", {})))
    groups = {"/": root}
    for name in sorted(header["groups"], key=lambda n: n.count("/")):
        if name == "/":
            continue
        parent = groups[name.rsplit("/", 1)[0] or "/"]
        groups[name] = Group(where, name, decode.attributes(header["groups"][name]), root)
        parent._members[name.rsplit("/", 1)[1]] = groups[name]
    for name, entry in header.get("datasets", {}).items():
        parent = groups[name.rsplit("/", 1)[0] or "/"]
        parent._members[name.rsplit("/", 1)[1]] = decode.dataset(name, entry)
    for name, entry in header["groups"].items():
        groups[name]._soft.update(entry.get("soft", {}))
        order = entry.get("members", [])
        members = groups[name]._members
        groups[name]._members = {key: members[key] for key in order if key in members}
    return root


class _Decoder:
    def __init__(self, where: str, data: memoryview) -> None:
        self.where, self.data = where, data

    def array(self, entry: dict) -> np.ndarray:
        dtype = entry.get("dtype")
        if not isinstance(dtype, str) or not _NUMBERS.match(dtype):
            raise FileRefusedError(self.where, f"{LIBRARY} sent back a damaged answer")
        dtype = np.dtype(dtype)
        shape = tuple(entry.get("shape", ()))
        nbytes = declared_bytes(shape, dtype.itemsize, "an array", self.where)
        offset = entry.get("offset", -1)
        if not isinstance(offset, int) or not 0 <= offset <= len(self.data) - nbytes:
            raise FileRefusedError(self.where, f"{LIBRARY} sent back a damaged answer")
        count = nbytes // dtype.itemsize
        return np.frombuffer(self.data, dtype, count, offset).reshape(shape)

    def attributes(self, entry: dict) -> dict:
        found = {}
        for key, value in entry.get("attrs", {}).items():
            if "text" in value:
                found[key] = value["text"]
            elif "texts" in value:
                found[key] = list(value["texts"])
            elif "array" in value:
                found[key] = self.array(value["array"])
        return found

    def dataset(self, name: str, entry: dict) -> Dataset:
        shape = tuple(entry.get("shape", ()))
        if "dtype" in entry:
            data = self.array(entry)
            return Dataset(self.where, name, shape, data.dtype, data,
                           self.attributes(entry), "number")
        return Dataset(self.where, name, shape, None, None, self.attributes(entry),
                       entry.get("kind", "unknown"))
