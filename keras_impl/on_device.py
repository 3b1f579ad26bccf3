"""Export the Keras model to LiteRT: encoder.tflite and decoder.tflite, builtin ops only.

The mirror of ``torch_impl/on_device.py``.  The way Keras users convert a model, and
the path Keras's own ``export(format="litert")`` takes inside:

    1. the two programs of ``keras_impl.programs``, with fixed shapes: B_f rows and
       S_f source positions (``batch_size``, ``max_source_length``);
    2. ``keras.export.ExportArchive``: the model tracked (its weights become
       constants when converted), one endpoint, ``encode`` or ``decode``, whose
       ``tf.TensorSpec`` names are the contract's input names and whose returned
       dict's keys are its output names;
    3. ``tf.lite.TFLiteConverter.from_saved_model`` on that one signature, with
       ``TFLITE_BUILTINS`` only: any op LiteRT has no builtin for (a Flex, "select
       TensorFlow" op such as ``TensorListReserve``, which a free batch size makes)
       fails the conversion, loudly, instead of writing a file that a bare LiteRT
       interpreter cannot run.

The decoder program takes one step (T = 1): its recurrent layers are unrolled, so
the file holds the step's ops and no one-trip ``WHILE`` loop.  The encoder keeps
Keras's ``WHILE`` loop: Keras 3's unrolled masked ``Bidirectional`` layer writes
wrong backward outputs (docs/on-device.md), and the loop's size does not grow with S.

Needs Keras on TensorFlow (``KERAS_BACKEND=tensorflow``); the command line runs it
in a process of its own otherwise (``shared.app.elsewhere``).  ``litert_impl``
runs the files, without TensorFlow; docs/on-device.md shows the bare runtime.

Shapes: B_f fixed batch, S_f fixed source length, L layers, H_dec decoder hidden.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import keras

from keras_impl import per_backend
from keras_impl.model import Seq2Seq
from keras_impl.programs import PROGRAMS
from shared.ondevice.contract import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_SOURCE_LENGTH,
    ENTRY,
    PARTS,
    inputs,
)
from shared.ondevice.folder import check_shape, write_folder

RUNTIME = "litert"


class LiteRTExportError(RuntimeError):
    """A program that does not convert to LiteRT builtin ops; the message says which and why."""


def export_programs(model: Seq2Seq, batch_size: int = DEFAULT_BATCH_SIZE,
                    max_source_length: int = DEFAULT_MAX_SOURCE_LENGTH) -> dict[str, bytes]:
    """{"encoder": bytes, "decoder": bytes}: the two .tflite flatbuffers of ``model``.

    Raises:
        LiteRTExportError: Keras does not run on TensorFlow here, or a program needs
            an op that is not a LiteRT builtin (the converter's own message follows).
    """
    if per_backend.BACKEND != "tensorflow":
        raise LiteRTExportError(
            f"converting to LiteRT needs Keras on TensorFlow; this process runs Keras on "
            f"{per_backend.BACKEND} (set KERAS_BACKEND=tensorflow, or use `seq2seq-rosetta "
            "export --format litert`, which starts such a process)")
    import tensorflow as tf

    batch_size, max_source_length = check_shape(batch_size, max_source_length)
    programs = {}
    for part in PARTS:
        specs = [tf.TensorSpec(tensor.shape, tensor.dtype, name=tensor.name)
                 for tensor in inputs(model.config, part, batch_size, max_source_length)]
        with tempfile.TemporaryDirectory(prefix="seq2seq-litert-") as folder, \
                _unrolled(model.decoder_rnn if part == "decoder" else []):
            archive = keras.export.ExportArchive()
            archive.track(model)
            archive.add_endpoint(ENTRY[part], PROGRAMS[part](model), specs)
            archive.write_out(folder, verbose=False)
            converter = tf.lite.TFLiteConverter.from_saved_model(
                folder, signature_keys=[ENTRY[part]])
            # Builtins only: no SELECT_TF_OPS, whatever the converter's advice says.
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            try:
                programs[part] = converter.convert()
            except Exception as error:  # the converter's ConverterError, among others
                first = " ".join(str(error).split())[:600]
                raise LiteRTExportError(
                    f"the {part} program does not convert to LiteRT builtin ops only (a Flex "
                    f"or custom op would not run on a bare LiteRT interpreter): {first}"
                ) from error
    return programs


def export_litert(model: Seq2Seq, out: str | os.PathLike, *,
                  batch_size: int = DEFAULT_BATCH_SIZE,
                  max_source_length: int = DEFAULT_MAX_SOURCE_LENGTH,
                  checkpoint_sha256: str = "") -> dict[str, Path]:
    """Write ``out/encoder.tflite``, ``out/decoder.tflite`` and ``out/metadata.json``.

    Args:
        model: the ``keras_impl`` model to export (Keras on TensorFlow).
        out: the folder; created if missing.
        batch_size: B_f, the programs' fixed batch.
        max_source_length: S_f, the source length the encoder reads at once (a
            unidirectional encoder reads longer sources in pieces) and the memory
            length the decoder attends over.
        checkpoint_sha256: the checksum of the checkpoint the weights came from.

    Returns:
        {"encoder": path, "decoder": path, "metadata": path}.
    """
    import tensorflow as tf

    programs = export_programs(model, batch_size, max_source_length)
    return write_folder(out, RUNTIME, programs, model.config, batch_size, max_source_length,
                        checkpoint_sha256=checkpoint_sha256,
                        exporter={"tensorflow": tf.__version__, "keras": keras.__version__})


def export_checkpoint(path: str | os.PathLike, out: str | os.PathLike, *,
                      batch_size: int = DEFAULT_BATCH_SIZE,
                      max_source_length: int = DEFAULT_MAX_SOURCE_LENGTH) -> dict[str, str]:
    """Read a checkpoint (checked by ``load_checkpoint``) and export it; the paths, as text.

    What ``seq2seq-rosetta export --format litert`` runs, here or in a process of its own.
    """
    from keras_impl.api import build_model
    from keras_impl.weights import import_weights
    from shared.checkpoint.load import load_checkpoint, stored_checksum

    checkpoint = load_checkpoint(path)
    model = build_model(checkpoint.config)
    import_weights(model, checkpoint.weights)
    paths = export_litert(model, out, batch_size=batch_size, max_source_length=max_source_length,
                          checkpoint_sha256=stored_checksum(path))
    return {part: str(where) for part, where in paths.items()}


@contextlib.contextmanager
def _unrolled(rnns):
    """Keras reads ``unroll`` when a layer is called: traced inside, one set of ops per step."""
    layers = [layer for rnn in rnns
              for layer in (getattr(rnn, "forward_layer", None),
                            getattr(rnn, "backward_layer", None), rnn)
              if layer is not None and hasattr(layer, "unroll")]
    for layer in layers:
        layer.unroll = True
    try:
        yield
    finally:
        for layer in layers:
            layer.unroll = False
