"""The backend API on ExecuTorch: NumPy in, NumPy out.  Inference half of ``torch_impl/api.py``.

The same functions, with the same arguments and the same refusals, as in
``onnx_impl``, ``torch_impl`` and ``keras_impl``, minus training and minus building:
an ExecuTorch program is lowered from ``torch_impl``'s model (``torch_impl.on_device``,
or ``seq2seq-rosetta export --format executorch``) and only run here.  Inputs are
checked by ``shared.core.inputs`` before the runtime sees them, so every engine
refuses bad input with the same message.

A model comes from an export folder (``load_model``), checked before it runs.  A
state is a tuple: (h, c) for an LSTM, (h,) for a GRU, each (L, B, H_dec); with
attention the decoder also reads a ``shared.decoding.memory.Memory``, as everywhere.
``forward``, ``attention_weights``, ``greedy_decode`` and ``beam_decode`` are written
once, in ``shared.decoding.inference``, over the hooks of an engine that computes on
NumPy arrays (``inference.array_hooks``).

Any batch and any source length run: the programs' fixed shape (``batch_size``,
``max_source_length``, in the folder's metadata) is met by padding and splitting
(``shared.ondevice.fixed``); a unidirectional encoder reads a longer source in
pieces, a bidirectional one, or a decoder attending over a longer memory, refuses it.

Shapes: B batch, S source length, T target length, L layers, H_dec decoder
hidden, V_tgt target vocabulary.
"""

from __future__ import annotations

import os

import numpy as np

from executorch_impl.model import Seq2Seq
from shared.core.inputs import check_initial_state, check_source
from shared.decoding import inference
from shared.decoding.memory import check_decoder_inputs
from shared.ondevice.folder import read_folder

RUNTIME = "executorch"


def load_model(folder: str | os.PathLike) -> Seq2Seq:
    """A model from a folder written by ``seq2seq-rosetta export --format executorch``.

    The folder is read by ``shared.ondevice.folder.read_folder`` (ours, a version this
    code reads, each program's checksum) and each program is checked before it runs
    (``executorch_impl.program``: it loads, verified, on the runtime, and its one method,
    ``forward``, has the contract's inputs and outputs, in order, shapes and dtypes).

    Raises:
        OnDeviceModelError: (a ValueError) a check failed; the message names the file.
    """
    return Seq2Seq(read_folder(folder, RUNTIME), os.fspath(folder))


def encode(model: Seq2Seq, src, return_memory: bool = False, initial_state=None):
    """The hand-off, (h, c) or (h,), float32 NumPy, each (L, B, H_dec); all-PAD rows give zeros.

    With ``return_memory``, (state, memory): ``Memory(outputs (B, S, H_dec) float32,
    zeros at PAD, mask (B, S) bool)``, what attention reads; a model without attention
    gives an empty one (outputs (B, S, 0), ``shared.decoding.memory.empty_memory``).

    Streaming: ``initial_state``, the state a previous chunk's ``encode`` returned,
    continues from it, so that chunk after chunk ends where the whole source would
    (the memories, concatenated along S, are the whole source's); a row of only PAD
    keeps it.  A bidirectional encoder cannot stream and refuses it.
    """
    src = check_source(src, model.config.src_vocab_size)                       # (B, S)
    initial_state = check_initial_state(initial_state, model.config, len(src))
    return model.encode(src, return_memory, initial_state)                    # each (L, B, H_dec)


def decode(model: Seq2Seq, tgt_in, state, memory=None) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Decoder logits (B, T, V_tgt) and final state from ``state``; T = 1 is one step.

    ``memory``, from ``encode(model, src, return_memory=True)``, is needed with
    attention and not read without.  Logits at PAD positions of ``tgt_in`` are
    unspecified (a PAD token keeps its row's state).
    """
    cfg = model.config
    tgt_in, state, memory = check_decoder_inputs(cfg, tgt_in, state, memory)
    if tgt_in.shape[1] == 0:  # no step to take: no logits, and the state stays as given
        logits = np.zeros((tgt_in.shape[0], 0, cfg.tgt_vocab_size), np.float32)
        return logits, tuple(part.copy() for part in state)
    return model.decode(tgt_in, state, memory)                                 # (B, T, V_tgt)


_HOOKS = inference.array_hooks(encode, decode)


def forward(model: Seq2Seq, src, tgt_in) -> np.ndarray:
    """Teacher-forced logits (B, T, V_tgt): ``decode(tgt_in, encode(src))``."""
    return inference.forward(_HOOKS, model, src, tgt_in)


def attention_weights(model: Seq2Seq, src, tgt_in) -> np.ndarray:
    """Teacher-forced attention weights, float32 (B, T, S): how much step t reads source s.

    A row sums to 1 over the real source positions, 0 at PAD ones, and is all 0 for
    an all-PAD source row; rows at PAD positions of ``tgt_in`` are unspecified.
    """
    return inference.attention_weights(_HOOKS, model, src, tgt_in)


def greedy_decode(model: Seq2Seq, src, max_len: int) -> np.ndarray:
    """One-to-many generation: int64 (B, max_len), EOS kept, PAD after it."""
    return inference.greedy_decode(_HOOKS, model, src, max_len)


def beam_decode(model: Seq2Seq, src, beam_size: int, max_len: int) -> np.ndarray:
    """Beam search (length-normalised): int64 (B, max_len); beam_size=1 equals greedy."""
    return inference.beam_decode(_HOOKS, model, src, beam_size, max_len)
