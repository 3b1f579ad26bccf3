"""The encoder-decoder on ExecuTorch: two programs of an export folder on the runtime alone.

Shapes: B batch, S source length, T target length, L layers, H_dec decoder hidden,
V_tgt target vocabulary; B_f and S_f the programs' fixed batch and source length.

Where ``litert_impl`` holds two LiteRT interpreters fed by name, this model holds
two ExecuTorch programs whose ``forward`` takes its inputs in the contract's order
and returns its outputs in that order (``shared.ondevice.contract``): a .pte keeps
no names, so the order, read from the one list, is the only thing that says which
tensor is h and which is c (both have one shape: swapped, they would run, wrongly).

The programs have one shape, (B_f, S_f); ``shared.ondevice.fixed.FixedShapeModel``
pads, splits and steps every call to fit it (the runtime refuses any other shape:
"Attempted to resize a static tensor"), and the masking inside the programs makes
the padding inert.  The runtime takes and gives torch tensors: NumPy arrays cross
with ``torch.from_numpy`` (no copy) and ``.numpy()``.
"""

from __future__ import annotations

from executorch_impl.program import as_tensors, load_program, size_thread_pool
from shared.core.runtime import session_threads
from shared.ondevice.contract import PARTS, input_names, inputs, output_names
from shared.ondevice.fixed import Feeds, FixedShapeModel
from shared.ondevice.folder import Export, OnDeviceModelError


class Seq2Seq(FixedShapeModel):
    """Encoder-decoder LSTM or GRU (with or without attention) as two ExecuTorch programs.

    Args:
        export: a checked export folder (``shared.ondevice.folder.read_folder``).

    Attributes:
        modules: {"encoder": module, "decoder": module}, the runtime's loaded programs.
        operators: {part: {operator: calls}}, as the exporter listed them (metadata).
        delegate: "xnnpack" or "portable", as exported.
        checkpoint_sha256: the checksum of the checkpoint the programs came from, or "".
        thread_pool_size: the threads of XNNPACK's pool, which this model's programs use.

    XNNPACK runs on one thread pool for the whole process, sized as the process's first
    model loads: by ``shared.configure_threads``'s intra-op count
    (``shared.core.runtime.session_threads``) when set, else one thread per core.  A
    later model keeps that size, whatever it asks for (the programs loaded before hold
    the pool: ``executorch_impl.program.size_thread_pool``).
    """

    def __init__(self, export: Export, folder: str = "(in memory)"):
        super().__init__(export.config, export.batch_size, export.max_source_length)
        self.checkpoint_sha256 = export.checkpoint_sha256
        self.programs = export.programs
        self.operators = dict(export.metadata["operators"])
        self.delegate = export.metadata["options"].get("delegate", "")
        self.thread_pool_size = size_thread_pool(session_threads()["intra_op"])
        self.modules = {}
        for part in PARTS:
            try:
                self.modules[part] = load_program(export.programs[part], self.config, part,
                                                  self.batch_size, self.max_source_length)
            except OnDeviceModelError as error:
                raise OnDeviceModelError(f"{folder}/{part}.pte: {error}") from None
        self._order = {part: (input_names(self.config, part),
                              inputs(self.config, part, self.batch_size, self.max_source_length),
                              output_names(self.config, part)) for part in PARTS}

    def _run(self, part: str, feeds: Feeds) -> Feeds:
        """One call of one program: by name in, in the contract's order to the runtime, back."""
        names, expected, outputs = self._order[part]
        results = self.modules[part].forward(as_tensors([feeds[name] for name in names],
                                                        expected))
        return {name: tensor.numpy() for name, tensor in zip(outputs, results, strict=True)}
