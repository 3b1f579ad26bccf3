"""The encoder-decoder on LiteRT: two interpreters over the programs of an export folder.

Shapes: B batch, S source length, T target length, L layers, H_dec decoder hidden,
V_tgt target vocabulary; B_f and S_f the programs' fixed batch and source length.

Where ``onnx_impl`` holds two ONNX Runtime sessions, this model holds two LiteRT
interpreters, one per program of ``shared.ondevice.contract``, each run through its
one signature, ``encode`` or ``decode``, fed and read by name: the signature runner
lists a program's inputs alphabetically and the raw tensor order is neither that
nor the declared one, so only names are safe (feeding h where c goes would run,
silently wrong, since both have one shape).

The programs have one shape, (B_f, S_f); ``shared.ondevice.fixed.FixedShapeModel``
pads, splits and steps every call to fit it, and the masking inside the programs
makes the padding inert.  A runner given another shape fails and stays broken for
the calls after; the padding means it never is.
"""

from __future__ import annotations

from ai_edge_litert.interpreter import Interpreter

from litert_impl.program import check_program
from shared.core.runtime import session_threads
from shared.ondevice.contract import ENTRY, PARTS
from shared.ondevice.fixed import Feeds, FixedShapeModel
from shared.ondevice.folder import Export, OnDeviceModelError


class Seq2Seq(FixedShapeModel):
    """Encoder-decoder LSTM or GRU (with or without attention) as two LiteRT interpreters.

    Args:
        export: a checked export folder (``shared.ondevice.folder.read_folder``).

    Attributes:
        interpreters: {"encoder": Interpreter, "decoder": Interpreter}.
        operators: {part: {operator: count}}, read from each file.
        checkpoint_sha256: the checksum of the checkpoint the programs came from, or "".

    The interpreters take ``shared.configure_threads``'s intra-op count
    (``shared.core.runtime.session_threads``), or LiteRT's default, when built.
    """

    def __init__(self, export: Export, folder: str = "(in memory)"):
        super().__init__(export.config, export.batch_size, export.max_source_length)
        self.checkpoint_sha256 = export.checkpoint_sha256
        self.programs = export.programs  # the interpreters read these bytes in place
        self.operators: dict[str, dict[str, int]] = {}
        self.interpreters: dict[str, Interpreter] = {}
        for part in PARTS:
            try:
                self.interpreters[part], self.operators[part] = check_program(
                    export.programs[part], self.config, part, self.batch_size,
                    self.max_source_length, session_threads()["intra_op"])
            except OnDeviceModelError as error:
                raise OnDeviceModelError(f"{folder}/{part}.tflite: {error}") from None
        self._runners = {part: self.interpreters[part].get_signature_runner(ENTRY[part])
                         for part in PARTS}

    def _run(self, part: str, feeds: Feeds) -> Feeds:
        """One call of one program, by name: {name: array} in, {name: array} out."""
        return self._runners[part](**feeds)
