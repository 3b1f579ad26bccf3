"""ONNX files: write a model as encoder.onnx and decoder.onnx, and read them back, checked.

    export_checkpoint("model.safetensors", "out/onnx")   # what `seq2seq-rosetta export` runs
    export_onnx(weights, config, "out/onnx")             # canonical weights in memory
    config, models, sha = read_models("out/onnx")        # verified bytes, for any runtime

The graphs are built by ``shared.onnx.graph`` straight from the canonical weights;
no framework is involved, only the ``onnx`` package (and NumPy).  Each model
records in its ``metadata_props`` (string keys and values, like a checkpoint's
``__metadata__``):

    format              "seq2seq-rosetta/onnx"
    format_version      "1"
    part                "encoder" or "decoder"
    version             the seq2seq-rosetta version that wrote it
    config              the Seq2SeqConfig as JSON
    checkpoint_sha256   the checksum of the checkpoint it came from ("" when exported
                        from weights in memory)
    graph_sha256        SHA-256 of the serialized model without this one entry

A folder from elsewhere is not run blindly.  ``read_models`` reads each file
through ``shared.onnx.load.load_onnx`` (a regular file of bounded size, every
tensor's data the size its dims declare, subgraphs included) and accepts the two
files only if both are ours (producer, format, version, part), carry the same
config and checkpoint checksum, match their ``graph_sha256`` (any change after
export, to a weight or a node, is caught), keep every tensor inside the file
(external data would make the runtime open other paths), use only the default
ONNX domain (a custom domain is code the runtime must bring: a custom-operator
library) and only the operators our exporter writes, and pass ``onnx.checker``.
A checksum is not a signature: it catches corruption and editing, not a forger
who rewrites it, which is why the structural checks run as well.

Shape legend: B batch, L layers, H_dec decoder hidden.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx

from shared.core.config import Seq2SeqConfig
from shared.core.version import __version__
from shared.files.atomic import write_atomically
from shared.files.limits import MAX_JSON_BYTES
from shared.files.safe import FileRefusedError, loads
from shared.layout import check_weights
from shared.onnx.graph import (
    IR_VERSION,
    OPERATORS,
    OPSET,
    decoder_graph,
    encoder_graph,
    input_names,
    output_names,
)

FORMAT = "seq2seq-rosetta/onnx"
FORMAT_VERSION = 1
PRODUCER = "seq2seq-rosetta"
PARTS = ("encoder", "decoder")
_GRAPHS = {"encoder": encoder_graph, "decoder": decoder_graph}
_DEFAULT_DOMAINS = ("", "ai.onnx")


class OnnxModelError(ValueError):
    """An exported folder or file that ``read_models`` refuses; the message names the file."""


def build_models(
    weights: Mapping[str, np.ndarray], config: Seq2SeqConfig, checkpoint_sha256: str = ""
) -> dict[str, onnx.ModelProto]:
    """The encoder and decoder ModelProtos of ``weights``, checked by ``onnx.checker``.

    Args:
        weights: canonical weights of ``config`` (checked first, as ``import_weights`` does).
        config: the model's sizes and cell.
        checkpoint_sha256: the source checkpoint's checksum, recorded in the metadata.

    Returns:
        {"encoder": model, "decoder": model}.
    """
    if not isinstance(config, Seq2SeqConfig):
        raise TypeError(f"config must be a shared.Seq2SeqConfig; got {type(config).__name__}")
    weights = check_weights(weights, config)
    models = {}
    for part in PARTS:
        model = onnx.helper.make_model(
            _GRAPHS[part](weights, config),
            opset_imports=[onnx.helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name=PRODUCER,
            producer_version=__version__,
            doc_string=f"seq2seq-rosetta {config.cell} {part}; see docs/onnx.md",
        )
        metadata = {
            "format": FORMAT,
            "format_version": str(FORMAT_VERSION),
            "part": part,
            "version": __version__,
            "config": json.dumps(config.to_dict()),
            "checkpoint_sha256": checkpoint_sha256,
        }
        onnx.helper.set_model_props(model, metadata)
        onnx.helper.set_model_props(model, {**metadata, "graph_sha256": graph_sha256(model)})
        onnx.checker.check_model(model)
        models[part] = model
    return models


def graph_sha256(model: onnx.ModelProto) -> str:
    """SHA-256 hex digest of ``model`` serialized with its ``graph_sha256`` entry left out."""
    unsigned = onnx.ModelProto()
    unsigned.CopyFrom(model)
    del unsigned.metadata_props[:]
    for entry in model.metadata_props:
        if entry.key != "graph_sha256":
            unsigned.metadata_props.add(key=entry.key, value=entry.value)
    return hashlib.sha256(unsigned.SerializeToString(deterministic=True)).hexdigest()


def export_onnx(
    weights: Mapping[str, np.ndarray],
    config: Seq2SeqConfig,
    out: str | os.PathLike,
    checkpoint_sha256: str = "",
) -> dict[str, Path]:
    """Write ``out/encoder.onnx`` and ``out/decoder.onnx``; return their paths.

    Args:
        weights: canonical weights of ``config``.
        config: the model's sizes and cell.
        out: the folder; created if missing; existing files of the same names are replaced.
        checkpoint_sha256: the source checkpoint's checksum, for the metadata.
    """
    models = build_models(weights, config, checkpoint_sha256)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for part, model in models.items():
        path = folder / f"{part}.onnx"
        write_atomically(path, model.SerializeToString(deterministic=True))  # whole or not at all
        paths[part] = path
    return paths


def stored_checksum(path: str | os.PathLike) -> str:
    """The checksum stored in a checkpoint that ``load_checkpoint`` has already accepted."""
    import safetensors

    with safetensors.safe_open(os.fspath(path), framework="numpy") as file:
        return file.metadata()["sha256"]


def export_checkpoint(path: str | os.PathLike, out: str | os.PathLike) -> dict[str, Path]:
    """Read a checkpoint (checked by ``shared.checkpoint.load_checkpoint``) and export it."""
    from shared.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    return export_onnx(checkpoint.weights, checkpoint.config, out, stored_checksum(path))


def read_models(folder: str | os.PathLike) -> tuple[Seq2SeqConfig, dict[str, bytes], str]:
    """The two models of a folder written by ``export_onnx``, once every check has passed.

    Args:
        folder: a folder holding ``encoder.onnx`` and ``decoder.onnx``.

    Returns:
        (config, {"encoder": bytes, "decoder": bytes}, checkpoint_sha256): the bytes are
        exactly what was checked, ready for ``onnxruntime.InferenceSession``.

    Raises:
        OnnxModelError: (a ValueError) a check failed; the message names the file and why.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise OnnxModelError(
            f"onnx folder {folder}: no such folder (export writes encoder.onnx and decoder.onnx "
            "into one)"
        )
    raw, metadata = {}, {}
    for part in PARTS:
        path = folder / f"{part}.onnx"
        model = _read(path)
        metadata[part] = _check_model(path, model, part)
        raw[part] = model.SerializeToString()
    encoder, decoder = metadata["encoder"], metadata["decoder"]
    for key in ("config", "checkpoint_sha256"):
        if encoder[key] != decoder[key]:
            raise OnnxModelError(
                f"onnx folder {folder}: encoder.onnx and decoder.onnx come from different exports"
                f" (their {key} differs); export both again"
            )
    config = _config(folder / "encoder.onnx", encoder["config"])
    return config, raw, encoder["checkpoint_sha256"]


def _error(path: Path, reason: str) -> OnnxModelError:
    return OnnxModelError(f"onnx model {path}: {reason}")


def _read(path: Path) -> onnx.ModelProto:
    """The parsed model, its every tensor checked, none of them kept outside the file."""
    from shared.onnx.load import load_onnx

    try:
        return load_onnx(path, "ONNX file", external=False)
    except FileRefusedError as refused:
        reason = refused.reason
        if reason == "no such file":
            reason += "; an exported folder holds encoder.onnx and decoder.onnx"
        raise _error(path, reason) from None


def _config(path: Path, text: str) -> Seq2SeqConfig:
    try:
        return Seq2SeqConfig.from_dict(loads(text, path, MAX_JSON_BYTES))
    except FileRefusedError as refused:
        raise _error(path, f"metadata 'config' {refused.reason}") from None
    except ValueError as error:
        raise _error(path, f"metadata 'config' is not a valid Seq2SeqConfig: {error}") from None


def _check_model(path: Path, model: onnx.ModelProto, part: str) -> dict[str, str]:
    """Every check of the module docstring on one file; returns its metadata."""
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    _check_ours(path, model, metadata, part)
    _check_operators(path, model)
    if graph_sha256(model) != metadata.get("graph_sha256"):
        raise _error(path, "checksum mismatch: the graph or its weights were changed after "
                           "export (graph_sha256)")
    config = _config(path, metadata["config"])
    _check_signature(path, model, config, part)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        raise _error(path, f"fails onnx.checker: {' '.join(str(error).split())[:300]}") from None
    return metadata


def _check_ours(path: Path, model: onnx.ModelProto, metadata: dict, part: str) -> None:
    if model.producer_name != PRODUCER or metadata.get("format") != FORMAT:
        raise _error(path, f"was not written by seq2seq-rosetta's exporter (producer "
                           f"{model.producer_name!r}, metadata format {metadata.get('format')!r})")
    version = metadata.get("format_version", "")
    if version != str(FORMAT_VERSION):
        newer = version.isascii() and version.isdigit() and int(version) > FORMAT_VERSION
        reason = (f"format version {version} is newer than this seq2seq-rosetta reads "
                  f"({FORMAT_VERSION}); upgrade" if newer else
                  f"unknown format version {version!r}; this seq2seq-rosetta reads "
                  f"{FORMAT_VERSION}")
        raise _error(path, reason)
    missing = [key for key in ("part", "config", "checkpoint_sha256", "graph_sha256")
               if key not in metadata]
    if missing:
        raise _error(path, f"metadata lacks {', '.join(missing)}")
    if metadata["part"] != part:
        raise _error(path, f"holds the {metadata['part']!r} model, expected the {part!r}")


def _check_operators(path: Path, model: onnx.ModelProto) -> None:
    for opset in model.opset_import:
        if opset.domain not in _DEFAULT_DOMAINS:
            raise _error(path, f"imports the custom operator domain {opset.domain!r}; "
                               "seq2seq-rosetta models use only the default ONNX domain")
    if len(model.functions):
        raise _error(path, f"defines {len(model.functions)} local function(s) "
                           f"({model.functions[0].domain}.{model.functions[0].name}); "
                           "seq2seq-rosetta models define none")
    for node in model.graph.node:
        if node.domain not in _DEFAULT_DOMAINS:
            raise _error(path, f"node {node.name!r} uses the custom operator domain "
                               f"{node.domain!r} (op {node.op_type}); seq2seq-rosetta models use "
                               "only the default ONNX domain")
        if node.op_type not in OPERATORS:
            raise _error(path, f"node {node.name!r} is a {node.op_type}, an operator "
                               "seq2seq-rosetta's exporter never writes")


def _check_signature(path: Path, model, config: Seq2SeqConfig, part: str) -> None:
    for kind, values, expected in (
        ("inputs", model.graph.input, input_names(config, part)),
        ("outputs", model.graph.output, output_names(config, part)),
    ):
        names = [value.name for value in values]
        if names != expected:
            raise _error(path, f"has {kind} {names}; the {config.cell} {part} has {expected}")
