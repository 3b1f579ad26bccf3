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
from shared.core.tokens import BOS
from shared.decoding.arrays import (
    attention_weights,
    beam_decode,
    decode,
    encode,
    forward,
    greedy_decode,
)
from shared.layout import random_weights
from shared.onnx.export import OnnxModelError, build_models, read_models, stored_checksum
from shared.onnx.weights import canonical_weights

# The inference functions are the array engines' own, imported: this module's API.
__all__ = ["attention_weights", "beam_decode", "build_model", "decode", "encode", "export_weights",
           "forward", "greedy_decode", "import_weights", "load_model"]


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
    """The canonical weights the two graphs hold (``shared.onnx.weights.canonical_weights``).

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

