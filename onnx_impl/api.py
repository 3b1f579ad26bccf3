"""The backend API on ONNX Runtime: NumPy in, NumPy out.  Inference half of ``torch_impl/api.py``.

The same functions, with the same arguments and the same refusals, as in
``torch_impl`` and ``keras_impl``, minus training: ONNX Runtime runs a model, it
does not train one.  Inputs are checked by ``shared.core.inputs`` before a session
sees them, so all three backends refuse bad input with the same message.

A model comes from a checkpoint or an exported folder (``load_model``), or from
canonical weights (``build_model`` + ``import_weights``, the calls the other
backends use, so that code written against them runs here unchanged).

A state is a tuple: (h, c) for an LSTM, (h,) for a GRU, each (L, B, H_dec).
With attention the decoder also reads a memory, ``shared.decoding.memory.Memory``
(the encoder's outputs and the source mask): ``encode(model, src,
return_memory=True)`` returns it beside the state, and ``decode`` takes it as one
more argument, as in the other backends (a model without attention gives an empty
one).  Greedy and beam search carry it next to the state.  ``forward``,
``attention_weights``, ``greedy_decode`` and ``beam_decode`` are written once, in
``shared.decoding.inference``, over the hooks at the end of this file.

Shapes: B batch, S source length, T target length, L layers, H_dec decoder
hidden, V_tgt target vocabulary.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from onnx_impl.model import Seq2Seq
from shared import Seq2SeqConfig
from shared.core.checks import check_seed
from shared.core.inputs import check_source
from shared.core.tokens import BOS
from shared.decoding import inference
from shared.decoding.memory import Memory, check_decoder_inputs
from shared.layout import random_weights
from shared.onnx.export import OnnxModelError, build_models, read_models, stored_checksum
from shared.onnx.graph import canonical_weights


def _serialized(weights, config: Seq2SeqConfig, checkpoint_sha256: str = "") -> dict[str, bytes]:
    models = build_models(weights, config, checkpoint_sha256)
    return {part: model.SerializeToString(deterministic=True) for part, model in models.items()}


def build_model(config: Seq2SeqConfig, seed: int = 0) -> Seq2Seq:
    """A model holding random canonical weights (``shared.layout.random_weights(config, seed)``).

    ONNX Runtime has no initialisers of its own; give the model real weights with
    ``import_weights``, or load one with ``load_model``.  The sessions' thread counts
    are ``shared.configure_threads``'s (``shared.core.runtime.session_threads``).
    """
    if not isinstance(config, Seq2SeqConfig):
        raise TypeError(f"config must be a shared.Seq2SeqConfig; got {type(config).__name__}")
    weights = random_weights(config, seed=check_seed(seed))
    return Seq2Seq(config, _serialized(weights, config))


def import_weights(model: Seq2Seq, weights) -> None:
    """Export canonical ``weights`` to ONNX and run them; a refused dict leaves the model as is."""
    model.load(_serialized(weights, model.config))


def export_weights(model: Seq2Seq) -> dict[str, np.ndarray]:
    """The canonical weights the model's two graphs hold (``shared.onnx.graph.canonical_weights``).

    An LSTM's two biases are one sum in the graph: they come back as b_ih = b_ih + b_hh
    and b_hh = 0, as ``keras_impl`` exports them; a GRU's come back as they went in.
    """
    return canonical_weights(model.models, model.config)


def load_model(path: str | os.PathLike) -> Seq2Seq:
    """A model from a checkpoint file or from a folder written by ``seq2seq-rosetta export``.

    A checkpoint is read by ``shared.checkpoint.load_checkpoint`` and exported in
    memory; a folder's two models are run only after ``shared.onnx.export.read_models``
    has checked them (ours, unchanged, no custom operators, no external data), and
    then once on a one-token question (``_smoke``): a graph that was edited and
    resealed, which ONNX Runtime refuses or runs to the wrong shapes, is refused
    here, in one line, rather than at the first question.

    Raises:
        CheckpointError: a bad checkpoint file.
        OnnxModelError: a bad folder.  Both are ValueErrors naming the file.
    """
    if Path(path).is_dir():
        config, models, checksum = read_models(path)
        try:
            model = Seq2Seq(config, models, checksum)
            _smoke(model)
        except Exception as error:  # ONNX Runtime's own exceptions, whatever their class
            detail = (str(error).strip().splitlines() or [""])[0][:300]
            raise OnnxModelError(
                f"onnx folder {path}: ONNX Runtime cannot run its models "
                f"({type(error).__name__}: {detail}); export the checkpoint again") from None
        return model
    from shared.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    checksum = stored_checksum(path)
    models = _serialized(checkpoint.weights, checkpoint.config, checksum)
    return Seq2Seq(checkpoint.config, models, checksum)


def _smoke(model: Seq2Seq) -> None:
    """One encoder run and one decoder step on a one-token question; ValueError unless the
    shapes are the config's and the logits finite."""
    cfg = model.config
    state, memory = model.encode(np.array([[cfg.src_vocab_size - 1]], np.int64), True)
    expected = (cfg.num_layers, 1, cfg.decoder_hidden_size)
    if [part.shape for part in state] != [expected] * len(cfg.state_names):
        raise ValueError(f"the encoder hands off {[part.shape for part in state]}; the config "
                         f"says {expected} per state")
    logits, _ = model.decode(np.array([[BOS]], np.int64), state, memory)
    if logits.shape != (1, 1, cfg.tgt_vocab_size) or not np.all(np.isfinite(logits)):
        raise ValueError(f"the decoder gives logits of shape {logits.shape} (finite: "
                         f"{bool(np.all(np.isfinite(logits)))}); the config says "
                         f"(1, 1, {cfg.tgt_vocab_size})")


def encode(model: Seq2Seq, src, return_memory: bool = False):
    """The hand-off, (h, c) or (h,), float32 NumPy, each (L, B, H_dec); all-PAD rows give zeros.

    With ``return_memory``, (state, memory): ``Memory(outputs (B, S, H_dec) float32,
    zeros at PAD, mask (B, S) bool)``, what attention reads; a model without attention
    gives an empty one (outputs (B, S, 0), ``shared.decoding.memory.empty_memory``).
    """
    src = check_source(src, model.config.src_vocab_size)                       # (B, S)
    return model.encode(src, return_memory=return_memory)                     # each (L, B, H_dec)


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
    return model.decode(tgt_in, state, memory)                                 # (B, T, V_tgt)


def _attend(model: Seq2Seq, tgt_in: np.ndarray, state, memory: Memory) -> np.ndarray:
    """Teacher-forced attention weights (B, T, S) from checked NumPy inputs."""
    _, _, weights = model.decode(tgt_in, state, memory, return_attention=True)
    return weights                                                             # (B, T, S)


def _step_fn(model: Seq2Seq):
    """One generation step on arrays: feed one token per row, carry the state and memory."""

    def step(tokens: np.ndarray, carried):
        state, memory = carried
        logits, state = model.decode(tokens[:, None], state, memory)           # (N, 1, V_tgt)
        return logits[:, 0], (state, memory)                                   # each (L, N, H_dec)

    return step


def _select(carried, index: np.ndarray):
    """Pick hypotheses along the batch: axis 1 of each state part, axis 0 of the memory.

    Beam search copies each row to its K places and reorders them every step; the
    memory (with attention) must follow its rows, or a hypothesis would read
    another question.
    """
    state, memory = carried
    state = tuple(np.take(s, index, axis=1) for s in state)                    # each (L, N, H_dec)
    return state, (None if memory is None else memory.take(index))  # (N, S, H_dec), (N, S)


def _start(model: Seq2Seq, src: np.ndarray):
    """What generation carries: (the hand-off, the memory or None without attention)."""
    state, memory = model.encode(src, return_memory=True)                     # each (L, B, H_dec)
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
