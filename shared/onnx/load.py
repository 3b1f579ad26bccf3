"""An ONNX file from a stranger, parsed with every tensor checked: ``load_onnx``.

``onnx.load`` reads a whole file of any size, follows external data wherever
its ``location`` points (resolving it against the current directory for a
tensor ``load_external_data_for_model`` does not visit, such as a ``Constant``
node's), and leaves each tensor's dims to be trusted by whoever converts it.
``load_onnx`` instead:

1. reads the file as a regular file of at most ``MAX_FILE_BYTES``
   (``shared.files.safe``), and parses it;
2. visits **every** tensor of the model: the initializers, sparse
   initializers, every node attribute (``t``, ``tensors``, sparse ones) and
   every subgraph's (``If``/``Loop``/``Scan`` bodies), in local functions
   too, subgraphs nested at most ``MAX_GRAPH_DEPTH`` deep;
3. checks each one: a data type of plain numbers (or strings), dims within
   the cap, and data of exactly the declared size: its ``raw_data``, its typed
   field or its external range;
4. external data: refused where ``external=False``; otherwise each location is
   resolved only inside the file's own folder (``shared.files.external``),
   read within that file's size, and put into ``raw_data``, so that nothing
   later (``numpy_helper.to_array``, ONNX Runtime) opens another file.

After it, ``numpy_helper.to_array`` on any tensor of the model allocates no
more than the data it holds.

Example:

    model = load_onnx("model.onnx", external=True)   # a ModelProto, external data inside it
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import onnx

from shared.files.external import inside, read_range
from shared.files.limits import MAX_FILE_BYTES, MAX_PARTS, declared_bytes
from shared.files.safe import FileRefusedError, read_regular, shown

MAX_GRAPH_DEPTH = 32
# TensorProto data types whose values are plain numbers: their bytes per value.
ITEMSIZES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}
STRING = 8
# Where a tensor without raw_data keeps its values, by data type (onnx.proto's comments).
TYPED_FIELDS = {1: "float_data", 2: "int32_data", 3: "int32_data", 4: "int32_data",
                5: "int32_data", 6: "int32_data", 7: "int64_data", 9: "int32_data",
                10: "int32_data", 11: "double_data", 12: "uint64_data", 13: "uint64_data",
                16: "int32_data", STRING: "string_data"}


def load_onnx(path: str | os.PathLike, kind: str = "ONNX model",
              external: bool = True) -> onnx.ModelProto:
    """The model at ``path``, parsed, with every tensor checked (and external data read in).

    Args:
        path: the .onnx file.
        kind: what it should be, for messages.
        external: read external data from the file's folder; False refuses any.

    Raises:
        FileRefusedError: one line naming the file: not regular, too large, not ONNX, a
            tensor that breaks a rule, external data refused or outside the folder.
    """
    where = shown(path)
    data = read_regular(path, kind, MAX_FILE_BYTES)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as error:  # protobuf's DecodeError, or its C++ parser's own complaint
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise FileRefusedError(where, f"is not an ONNX model (it does not parse: {detail})"
                               ) from None
    _check_names(model, where)
    folder = Path(path).resolve().parent
    budget = [MAX_FILE_BYTES]
    for count, (what, tensor) in enumerate(tensors(model, where), start=1):
        if count > MAX_PARTS:
            raise FileRefusedError(where, f"holds more than {MAX_PARTS} tensors")
        _check(tensor, what, where, folder if external else None, budget)
    return model


def tensors(model: onnx.ModelProto, where: str = "") -> Iterator[tuple[str, onnx.TensorProto]]:
    """(what, tensor) for every TensorProto in the model, subgraphs and functions included."""
    graphs = [(model.graph, 0)]
    for function in model.functions:
        yield from _node_tensors(function.node, graphs, 1)
    while graphs:
        graph, depth = graphs.pop()
        if depth > MAX_GRAPH_DEPTH:
            raise FileRefusedError(where, f"nests subgraphs deeper than {MAX_GRAPH_DEPTH} levels")
        for tensor in graph.initializer:
            yield f"tensor {_name(tensor.name)}", tensor
        for sparse in graph.sparse_initializer:
            yield f"sparse initializer {_name(sparse.values.name)}", sparse.values
            yield f"sparse initializer {_name(sparse.values.name)} (indices)", sparse.indices
        yield from _node_tensors(graph.node, graphs, depth + 1)


def _check_names(model: onnx.ModelProto, where: str) -> None:
    """Every name of the main graph is text: protobuf hands over the bytes of a name that is
    not UTF-8 as they are, and every string operation on them would fail."""
    graph = model.graph
    named = [*graph.initializer, *graph.input, *graph.output, *graph.node]
    for item in named:
        names = [item.name, *getattr(item, "input", ()), *getattr(item, "output", ()),
                 getattr(item, "op_type", ""), getattr(item, "domain", "")]
        bad = next((name for name in names if not isinstance(name, str)), None)
        if bad is not None:
            raise FileRefusedError(where, f"holds the name {bad[:60]!r}, which is not UTF-8 "
                                          "text; ONNX names are text")


def _node_tensors(nodes, graphs: list, depth: int) -> Iterator[tuple[str, onnx.TensorProto]]:
    for node in nodes:
        for attribute in node.attribute:
            what = f"attribute {_name(attribute.name)} of node {_name(node.name)} ({node.op_type})"
            if attribute.HasField("t"):
                yield what, attribute.t
            yield from ((what, tensor) for tensor in attribute.tensors)
            if attribute.HasField("sparse_tensor"):
                yield what, attribute.sparse_tensor.values
                yield what, attribute.sparse_tensor.indices
            for sparse in attribute.sparse_tensors:
                yield what, sparse.values
                yield what, sparse.indices
            if attribute.HasField("g"):
                graphs.append((attribute.g, depth))
            graphs.extend((graph, depth) for graph in attribute.graphs)


def _name(name: str) -> str:
    return repr(name[:100])


def _check(tensor: onnx.TensorProto, what: str, where: str, folder: Path | None,
           budget: list[int]) -> None:
    dtype = tensor.data_type
    if dtype not in ITEMSIZES and dtype != STRING:
        raise FileRefusedError(where, f"{what} has data_type {dtype}, not a type of plain "
                                      "numbers that is read")
    if tensor.HasField("segment"):
        raise FileRefusedError(where, f"{what} is a segment of a tensor; only whole tensors "
                                      "are read")
    itemsize = ITEMSIZES.get(dtype, 1)
    nbytes = declared_bytes(tensor.dims, itemsize, what, where)
    count = nbytes // itemsize
    if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
        if folder is None:
            location = {e.key: e.value for e in tensor.external_data}.get("location", "?")
            raise FileRefusedError(where, f"keeps {what} in an external data file "
                                          f"({location[:100]!r}); this reader takes every "
                                          "tensor inside the .onnx file")
        _read_external(tensor, what, where, folder, nbytes, budget)
        return
    if tensor.raw_data:
        if dtype == STRING or len(tensor.raw_data) != nbytes:
            raise FileRefusedError(where, f"{what} declares {tuple(tensor.dims)} "
                                          f"({nbytes} bytes) but holds {len(tensor.raw_data)}")
        return
    held = len(getattr(tensor, TYPED_FIELDS[dtype]))
    if held != count:
        raise FileRefusedError(where, f"{what} declares {tuple(tensor.dims)} ({count} values) "
                                      f"but holds {held}")


def _read_external(tensor, what: str, where: str, folder: Path, nbytes: int,
                   budget: list[int]) -> None:
    entries = {entry.key: entry.value for entry in tensor.external_data}
    target = inside(folder, entries.get("location", ""), where, what)
    offset, length = (_number(entries.get(key), key, what, where) for key in ("offset", "length"))
    if length is not None and length != nbytes:
        raise FileRefusedError(where, f"{what} declares {tuple(tensor.dims)} ({nbytes} bytes) "
                                      f"but its external data is {length} bytes")
    if nbytes > budget[0]:
        raise FileRefusedError(where, f"its tensors declare more than {MAX_FILE_BYTES} bytes in "
                                      "all; at most that many are read")
    budget[0] -= nbytes
    try:
        data = read_range(target, offset or 0, nbytes, what)
    except FileRefusedError as refused:  # named after the model, which names the data file
        raise FileRefusedError(where, f"{what} keeps its data in {shown(target)}: "
                                      f"{refused.reason}") from None
    tensor.raw_data = data
    del tensor.external_data[:]
    tensor.data_location = onnx.TensorProto.DEFAULT


def _number(text: str | None, key: str, what: str, where: str) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 20):
        raise FileRefusedError(where, f"{what} has the external data {key} {text[:40]!r}; "
                                      "expected a whole number of bytes")
    return int(text)
