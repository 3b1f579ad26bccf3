"""Export the PyTorch model to ExecuTorch: encoder.pte and decoder.pte, lowered to XNNPACK.

The mirror of ``keras_impl/on_device.py``.  The way PyTorch users lower a model:

    1. the two programs of ``torch_impl.programs``, traced by ``torch.export.export``
       with fixed example inputs: B_f rows and S_f source positions (``batch_size``,
       ``max_source_length``); every shape in the program is static;
    2. ``executorch.exir.to_edge_transform_and_lower`` with the XNNPACK partitioner
       (``delegate="xnnpack"``, the default: the matrix products, sigmoid, tanh and
       softmax run in XNNPACK's CPU kernels) or none (``delegate="portable"``: every op
       on ExecuTorch's portable kernels, which any ExecuTorch build has);
    3. ``.to_executorch().buffer``: the .pte file.  Its ``forward`` takes the inputs
       of ``shared.ondevice.contract`` in order and returns its outputs in order (a .pte
       keeps no names).

The operators each file calls are listed from the serialized program (the kernels its
plan calls outside a delegate, and each delegate's calls) and, for what XNNPACK runs,
from the lowered graph, and recorded in the folder's metadata: the runtime cannot
list them.  Lowering takes seconds per program and grows with S_f (one set of ops
per step); docs/on-device.md has the numbers.

Needs ``torch`` and ``executorch`` (its exporter, ``exir``); ``executorch_impl``
runs the files with the runtime alone.

Shapes: B_f fixed batch, S_f fixed source length.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import torch

from shared.ondevice.contract import DEFAULT_BATCH_SIZE, DEFAULT_MAX_SOURCE_LENGTH, PARTS, inputs
from shared.ondevice.folder import check_shape, write_folder
from torch_impl.model import Seq2Seq
from torch_impl.programs import PROGRAMS

RUNTIME = "executorch"
DELEGATES = ("xnnpack", "portable")
_DTYPES = {"int32": torch.int32, "float32": torch.float32, "bool": torch.bool}


def export_programs(model: Seq2Seq, batch_size: int = DEFAULT_BATCH_SIZE,
                    max_source_length: int = DEFAULT_MAX_SOURCE_LENGTH,
                    delegate: str = "xnnpack") -> tuple[dict[str, bytes], dict[str, dict]]:
    """({"encoder": bytes, "decoder": bytes}, {part: {operator: calls}}) of ``model``.

    Args:
        model: the ``torch_impl`` model to export (on the CPU).
        batch_size, max_source_length: the programs' fixed shape.
        delegate: "xnnpack" (the default) or "portable" (ExecuTorch's own kernels only).
    """
    from executorch.exir import to_edge_transform_and_lower

    batch_size, max_source_length = check_shape(batch_size, max_source_length)
    if delegate not in DELEGATES:
        raise ValueError(f"delegate must be one of {', '.join(DELEGATES)}; got {delegate!r}")
    partitioner = []
    if delegate == "xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
            XnnpackPartitioner,
        )

        partitioner = [XnnpackPartitioner()]
    programs, operators = {}, {}
    was_training = model.training
    model.eval()
    try:
        for part in PARTS:
            example = tuple(torch.zeros(tensor.shape, dtype=_DTYPES[tensor.dtype])
                            for tensor in inputs(model.config, part, batch_size,
                                                 max_source_length))
            with torch.no_grad():
                exported = torch.export.export(PROGRAMS[part](model), example)
            edge = to_edge_transform_and_lower(exported, partitioner=partitioner)
            operators[part] = _delegated(edge)
            programs[part] = edge.to_executorch().buffer
            operators[part] |= _planned(programs[part])
    finally:
        model.train(was_training)
    return programs, operators


def export_executorch(model: Seq2Seq, out: str | os.PathLike, *,
                      batch_size: int = DEFAULT_BATCH_SIZE,
                      max_source_length: int = DEFAULT_MAX_SOURCE_LENGTH,
                      delegate: str = "xnnpack", checkpoint_sha256: str = "") -> dict[str, Path]:
    """Write ``out/encoder.pte``, ``out/decoder.pte`` and ``out/metadata.json``.

    Args:
        model: the ``torch_impl`` model to export.
        out: the folder; created if missing.
        batch_size: B_f, the programs' fixed batch.
        max_source_length: S_f, the source length the encoder reads at once (a
            unidirectional encoder reads longer sources in pieces) and the memory
            length the decoder attends over.
        delegate: "xnnpack" or "portable" (see ``export_programs``).
        checkpoint_sha256: the checksum of the checkpoint the weights came from.

    Returns:
        {"encoder": path, "decoder": path, "metadata": path}.
    """
    from executorch.version import __version__ as executorch_version

    programs, operators = export_programs(model, batch_size, max_source_length, delegate)
    return write_folder(out, RUNTIME, programs, model.config, batch_size, max_source_length,
                        checkpoint_sha256=checkpoint_sha256,
                        exporter={"torch": torch.__version__, "executorch": executorch_version},
                        options={"delegate": delegate}, operators=operators)


def export_checkpoint(path: str | os.PathLike, out: str | os.PathLike, *,
                      batch_size: int = DEFAULT_BATCH_SIZE,
                      max_source_length: int = DEFAULT_MAX_SOURCE_LENGTH,
                      delegate: str = "xnnpack") -> dict[str, str]:
    """Read a checkpoint (checked by ``load_checkpoint``) and export it; the paths, as text.

    What ``seq2seq-rosetta export --format executorch`` runs.
    """
    from shared.checkpoint.load import load_checkpoint, stored_checksum
    from torch_impl.api import build_model
    from torch_impl.weights import import_weights

    checkpoint = load_checkpoint(path)
    model = build_model(checkpoint.config)
    import_weights(model, checkpoint.weights)
    paths = export_executorch(model, out, batch_size=batch_size,
                              max_source_length=max_source_length, delegate=delegate,
                              checkpoint_sha256=stored_checksum(path))
    return {part: str(where) for part, where in paths.items()}


def _planned(buffer: bytes) -> dict[str, int]:
    """What the .pte's plan calls, read back from the file: each kernel, each delegate."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    serialized = deserialize_pte_binary(buffer)
    plan = getattr(serialized, "program", serialized).execution_plan[0]
    calls: Counter[str] = Counter()
    for chain in plan.chains:
        for instruction in chain.instructions:
            arguments = instruction.instr_args
            if hasattr(arguments, "op_index"):
                operator = plan.operators[arguments.op_index]
                calls[operator.name + (f".{operator.overload}" if operator.overload else "")] += 1
            elif hasattr(arguments, "delegate_index"):
                calls[f"delegate {plan.delegates[arguments.delegate_index].id}"] += 1
    return dict(sorted(calls.items()))


def _delegated(edge) -> dict[str, int]:
    """The edge operators each delegate took (XNNPACK's blob is opaque once serialized)."""
    inside: Counter[str] = Counter()
    graph_module = edge.exported_program().graph_module
    for name, lowered in graph_module.named_children():
        if not name.startswith("lowered_module"):
            continue
        for node in lowered.original_module.graph.nodes:
            if node.op == "call_function":
                inside[f"{lowered.backend_id}: {_op_name(node.target)}"] += 1
    return dict(sorted(inside.items()))


def _op_name(target) -> str:
    name = getattr(target, "__name__", str(target))        # "aten.linear.default"
    return name.replace(".default", "")
