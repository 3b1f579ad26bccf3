"""The backend API on LiteRT: ``load_model``, and the inference half of every engine's API.

A model is an export folder, its programs converted from ``keras_impl``'s model
(``keras_impl.on_device``), checked by ``load_model``
before they run.  Its ``encode`` (streaming too), ``decode``, ``forward``,
``attention_weights``, ``greedy_decode`` and ``beam_decode`` are every array engine's,
from ``shared.decoding.arrays``; the padding to the programs' fixed shape is
``shared.ondevice.fixed``'s.
"""

from __future__ import annotations

import os

from litert_impl.model import Seq2Seq
from shared.decoding.arrays import (
    attention_weights,
    beam_decode,
    decode,
    encode,
    forward,
    greedy_decode,
)
from shared.ondevice.folder import read_folder

RUNTIME = "litert"
# The inference functions are the array engines' own, imported: this module's API.
__all__ = ["attention_weights", "beam_decode", "decode", "encode", "forward", "greedy_decode",
           "load_model"]


def load_model(folder: str | os.PathLike) -> Seq2Seq:
    """A model from a folder written by ``seq2seq-rosetta export --format litert``.

    The folder is read by ``shared.ondevice.folder.read_folder`` (ours, a version this
    code reads, each program's checksum) and each program is checked before it runs
    (``litert_impl.program``: builtin operators only, one signature with the
    contract's names, shapes and dtypes).

    Raises:
        OnDeviceModelError: (a ValueError) a check failed; the message names the file.
    """
    return Seq2Seq(read_folder(folder, RUNTIME), os.fspath(folder))
