"""The backend API on Keras: NumPy in, NumPy out.  Mirror of ``torch_impl/api.py``.

The same functions, with the same arguments and the same refusals, exist
in ``torch_impl``; a program written against one runs on the other.  Inputs are
checked by ``shared.core.inputs`` before any framework sees them, so both backends
refuse bad input with the same message.

A state is a tuple: (h, c) for an LSTM, (h,) for a GRU, each (L, B, H_dec).
With attention the decoder also reads a memory, ``shared.decoding.memory.Memory``
(the encoder's outputs and the source mask): ``encode(model, src,
return_memory=True)`` returns it beside the state (an empty one for a model
without attention), and ``decode`` takes it as one more argument.  Greedy and
beam search carry it next to the state.  ``forward``, ``attention_weights``,
``greedy_decode`` and ``beam_decode`` are written once, in
``shared.decoding.inference``, over the hooks at the end of this file.

Shapes: B batch, S source length, T target length, L layers, H_dec decoder
hidden, V_tgt target vocabulary.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from keras_impl import per_backend
from keras_impl.model import Seq2Seq
from shared import Seq2SeqConfig
from shared.core.checks import check_seed
from shared.core.inputs import check_initial_state, check_source
from shared.decoding import inference
from shared.decoding.memory import Memory, check_decoder_inputs, empty_memory


def build_model(config: Seq2SeqConfig, seed: int = 0) -> Seq2Seq:
    """A new, built model with Keras's default initialisers, seeded (see ``per_backend.seed``)."""
    if not isinstance(config, Seq2SeqConfig):
        raise TypeError(f"config must be a shared.Seq2SeqConfig; got {type(config).__name__}")
    seed = check_seed(seed)
    per_backend.seed(seed)
    model = Seq2Seq(config)
    model.build()                                      # every weight, from the sizes alone
    return model


class _Compiled:
    """The model's encode and decode, compiled once for the Keras backend in use.

    Eager Keras would run the recurrent time loop op by op in Python; a
    TensorFlow graph or a JAX program runs it in one call.  The signature leaves
    B, S and T free, so that no new batch shape makes TensorFlow retrace.
    ``encode`` returns (state, memory); ``decode(tgt_in, state, memory)`` reads the
    memory only with attention (without, it is compiled without it).
    """

    def __init__(self, model: Seq2Seq):
        cfg = model.config
        ids = ((None, None), "int64")                                          # (B, S) or (B, T)
        part = ((cfg.num_layers, None, cfg.decoder_hidden_size), "float32")   # (L, B, H_dec)
        state = (part,) * len(cfg.state_names)                                 # (h, c) or (h,)
        memory = (((None, None, cfg.decoder_hidden_size), "float32"),          # (B, S, H_dec)
                  ((None, None), "bool"))                                      # (B, S)
        self.encode = per_backend.compile_fn(
            lambda src: model.encode(src, return_memory=True), model, [ids])
        # Streaming: the same encoder from a given state (a bidirectional one cannot stream).
        self.encode_from = per_backend.compile_fn(
            lambda src, state: model.encode(src, return_memory=True, initial_state=state),
            model, [ids, state])
        if not cfg.has_attention:
            decode = per_backend.compile_fn(model.decode, model, [ids, state])
            self.decode = lambda tgt_in, state, memory=None: decode(tgt_in, state)
        else:
            self.decode = per_backend.compile_fn(model.decode, model, [ids, state, memory])
            self.attention = per_backend.compile_fn(
                lambda tgt_in, state, memory: model.decode(tgt_in, state, memory,
                                                           return_attention=True)[2],
                model, [ids, state, memory])


def _compiled(model: Seq2Seq) -> _Compiled:
    if getattr(model, "_compiled_fns", None) is None:
        model._compiled_fns = _Compiled(model)
    return model._compiled_fns


def _tensor(x):
    """A NumPy array as a tensor of the Keras backend (on its default device)."""
    return ops.convert_to_tensor(x)


def _numpy(x) -> np.ndarray:
    return ops.convert_to_numpy(x)


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
    if initial_state is None:
        state, (outputs, mask) = _compiled(model).encode(_tensor(src))         # each (L, B, H_dec)
    else:
        start = tuple(_tensor(part) for part in initial_state)
        state, (outputs, mask) = _compiled(model).encode_from(_tensor(src), start)
    state = tuple(_numpy(part) for part in state)
    if not return_memory:
        return state
    if not model.config.has_attention:
        return state, empty_memory(src)
    return state, Memory(_numpy(outputs), _numpy(mask))


def decode(model: Seq2Seq, tgt_in, state, memory=None) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Decoder logits (B, T, V_tgt) and final state from ``state``; T = 1 is one step.

    ``memory``, from ``encode(model, src, return_memory=True)``, is needed with
    attention and not read without.  Logits at PAD positions of ``tgt_in`` are
    unspecified (see ``Seq2Seq.decode``).
    """
    cfg = model.config
    tgt_in, state, memory = check_decoder_inputs(cfg, tgt_in, state, memory)
    if tgt_in.shape[1] == 0:  # no step to take: no logits, and the state stays as given
        logits = np.zeros((tgt_in.shape[0], 0, cfg.tgt_vocab_size), np.float32)
        return logits, tuple(part.copy() for part in state)
    state = tuple(_tensor(part) for part in state)
    logits, state = _compiled(model).decode(_tensor(tgt_in), state, _memory_tensors(memory))
    return _numpy(logits), tuple(_numpy(part) for part in state)               # (B, T, V_tgt)


def _memory_tensors(memory: Memory | None):
    return None if memory is None else tuple(_tensor(part) for part in memory)


def _attend(model: Seq2Seq, tgt_in: np.ndarray, state, memory: Memory) -> np.ndarray:
    """Teacher-forced attention weights (B, T, S) from checked NumPy inputs."""
    state = tuple(_tensor(part) for part in state)
    return _numpy(_compiled(model).attention(_tensor(tgt_in), state, _memory_tensors(memory)))


def _step_fn(model: Seq2Seq):
    """One generation step on tensors: feed one token per row, carry the state and memory."""
    decode_graph = _compiled(model).decode

    def step(tokens: np.ndarray, carried):
        state, memory = carried
        logits, state = decode_graph(_tensor(tokens[:, None]), state, memory)  # (N, 1, V_tgt)
        return _numpy(logits[:, 0]), (state, memory)                           # each (L, N, H_dec)

    return step


def _select(carried, index: np.ndarray):
    """Pick hypotheses along the batch: axis 1 of each state part, axis 0 of the memory.

    Beam search copies each row to its K places and reorders them every step; the
    memory (with attention) must follow its rows, or a hypothesis would read
    another question.
    """
    state, memory = carried
    index = _tensor(index)
    state = tuple(ops.take(s, index, axis=1) for s in state)                   # each (L, N, H_dec)
    if memory is not None:
        memory = tuple(ops.take(m, index, axis=0) for m in memory)           # (N, S, H_dec), (N, S)
    return state, memory


def _start(model: Seq2Seq, src: np.ndarray):
    """What generation carries: (the hand-off, the memory or None without attention)."""
    state, memory = _compiled(model).encode(_tensor(src))                     # each (L, B, H_dec)
    return state, (memory if model.config.has_attention else None)


_HOOKS = inference.Hooks(encode, decode, _start, _step_fn, _select, _attend)


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
