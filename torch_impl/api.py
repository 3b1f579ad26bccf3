"""The backend API on PyTorch: NumPy in, NumPy out.  Mirror of ``keras_impl/api.py``.

The same functions, with the same arguments and the same refusals, exist
in ``keras_impl``; a program written against one runs on the other.  Inputs are
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

import contextlib

import numpy as np
import torch

from shared import Seq2SeqConfig
from shared.core.checks import check_seed
from shared.core.inputs import check_initial_state, check_source
from shared.decoding import inference
from shared.decoding.memory import Memory, check_decoder_inputs, empty_memory
from torch_impl.model import Seq2Seq


def build_model(config: Seq2SeqConfig, seed: int = 0) -> Seq2Seq:
    """A new model with PyTorch's default initialisers, seeded (``torch.manual_seed``)."""
    if not isinstance(config, Seq2SeqConfig):
        raise TypeError(f"config must be a shared.Seq2SeqConfig; got {type(config).__name__}")
    seed = check_seed(seed)
    torch.manual_seed(seed)
    model = Seq2Seq(config)
    model.eval()  # dropout off until train() says otherwise
    return model


@contextlib.contextmanager
def _inference(model: Seq2Seq):
    """Dropout off and no autograd, then the model's mode restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _tensor(model: Seq2Seq, array: np.ndarray) -> torch.Tensor:
    """A NumPy array on the model's device (the CPU, or a GPU after ``model.to("cuda")``)."""
    return torch.from_numpy(array).to(next(model.parameters()).device)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.cpu().numpy()


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
    with _inference(model):
        start = None if initial_state is None else tuple(_tensor(model, p) for p in initial_state)
        state, (outputs, mask) = model.encode(_tensor(model, src), return_memory=True,
                                              initial_state=start)
    state = tuple(_numpy(part) for part in state)                              # each (L, B, H_dec)
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
    with _inference(model):
        state = tuple(_tensor(model, part) for part in state)
        logits, state = model.decode(_tensor(model, tgt_in), state, _memory_tensors(model, memory))
    return _numpy(logits), tuple(_numpy(part) for part in state)               # (B, T, V_tgt)


def _memory_tensors(model: Seq2Seq, memory: Memory | None):
    return None if memory is None else tuple(_tensor(model, part) for part in memory)


def _attend(model: Seq2Seq, tgt_in: np.ndarray, state, memory: Memory) -> np.ndarray:
    """Teacher-forced attention weights (B, T, S) from checked NumPy inputs."""
    with _inference(model):
        state = tuple(_tensor(model, part) for part in state)
        _, _, weights = model.decode(_tensor(model, tgt_in), state,
                                     _memory_tensors(model, memory), return_attention=True)
    return _numpy(weights)                                                     # (B, T, S)


def _step_fn(model: Seq2Seq):
    """One generation step on tensors: feed one token per row, carry the state and memory."""

    def step(tokens: np.ndarray, carried):
        state, memory = carried
        logits, state = model.decode(_tensor(model, tokens[:, None]), state, memory)  # (N, 1, V)
        return _numpy(logits[:, 0]), (state, memory)                           # each (L, N, H_dec)

    return step


def _select(carried, index: np.ndarray):
    """Pick hypotheses along the batch: axis 1 of each state part, axis 0 of the memory.

    Beam search copies each row to its K places and reorders them every step; the
    memory (with attention) must follow its rows, or a hypothesis would read
    another question.
    """
    state, memory = carried
    index = torch.from_numpy(index).to(state[0].device)
    state = tuple(s.index_select(1, index) for s in state)                     # each (L, N, H_dec)
    if memory is not None:
        memory = tuple(m.index_select(0, index) for m in memory)             # (N, S, H_dec), (N, S)
    return state, memory


def _start(model: Seq2Seq, src: np.ndarray):
    """What generation carries: (the hand-off, the memory or None without attention)."""
    state, memory = model.encode(_tensor(model, src), return_memory=True)    # each (L, B, H_dec)
    return state, (memory if model.config.has_attention else None)


_HOOKS = inference.Hooks(encode, decode, _start, _step_fn, _select, _attend, _inference)


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
