"""The encoder-decoder on ONNX Runtime: two sessions over the graphs of ``shared.onnx.graph``.

Shapes: B batch, S source length, T target length, L layers, H_dec decoder
hidden, V vocabulary.

Where ``torch_impl`` and ``keras_impl`` hold layers, this model holds two
ONNX Runtime sessions, one per exported graph:

    encoder   src int64 (B, S)                 -> hand-off (h, c) or (h,), each (L, B, H_dec)
    decoder   tgt_in int64 (B, T), the state   -> logits (B, T, V_tgt), the new state

With attention the encoder also gives the memory (``shared.decoding.memory.Memory``:
outputs (B, S, H_dec), mask (B, S)), the decoder takes it as two more inputs
and gives the attention weights (B, T, S) too.

The graphs count each row's length from PAD themselves and pass it to ONNX's
``LSTM``/``GRU`` as ``sequence_lens``: PyTorch packs, Keras masks, ONNX takes
lengths, and all three end each row at its last real token.  An all-PAD source
row hands off zeros; an all-PAD decoder row keeps the state it was given (the
graph puts it back: ONNX Runtime itself would give zeros).

ONNX Runtime runs on NumPy arrays directly, so there is no tensor conversion
here; the checks of ``shared.core.inputs`` run in ``onnx_impl.api`` before a session
sees anything.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnxruntime as ort

from shared import Seq2SeqConfig
from shared.core.runtime import session_threads
from shared.decoding.memory import Memory, empty_memory
from shared.onnx.export import streaming_encoder
from shared.onnx.graph import STREAMING, input_names, output_names
from shared.onnx.weights import canonical_weights


class Seq2Seq:
    """Encoder-decoder LSTM or GRU (with or without attention) as two ONNX Runtime sessions.

    Args:
        config: the sizes and the cell (``shared.Seq2SeqConfig``).
        models: {"encoder": bytes, "decoder": bytes}, serialized ONNX models from
            ``shared.onnx.export`` (already checked).
        checkpoint_sha256: the checksum of the checkpoint the models came from, or "".

    The sessions take the thread counts of ``shared.core.runtime.session_threads``
    (set with ``shared.configure_threads``; by default ONNX Runtime's own, one per core)
    when they are built.
    """

    def __init__(self, config: Seq2SeqConfig, models: Mapping[str, bytes],
                 checkpoint_sha256: str = ""):
        self.config = config
        self.load(models, checkpoint_sha256)

    def load(self, models: Mapping[str, bytes], checkpoint_sha256: str = "") -> None:
        """Replace both sessions with new ones over ``models`` (same config)."""
        options = ort.SessionOptions()
        threads = session_threads()
        if threads["intra_op"] is not None:
            options.intra_op_num_threads = threads["intra_op"]
        if threads["inter_op"] is not None:
            options.inter_op_num_threads = threads["inter_op"]
        sessions = {part: _session(models[part], options) for part in ("encoder", "decoder")}
        self.encoder, self.decoder = sessions["encoder"], sessions["decoder"]
        self.streaming_encoder = None  # built from the same weights when a source streams
        self._options = options
        self.models = dict(models)
        self.checkpoint_sha256 = checkpoint_sha256

    def encode(self, src: np.ndarray, return_memory: bool = False,
               initial_state: tuple[np.ndarray, ...] | None = None):
        """Read the question; return the hand-off, (h, c) or (h,), each (L, B, H_dec).

        Args:
            src: int64 (B, S), S >= 1, post-padded with PAD.  A row of only PAD gives zeros.
            return_memory: also return what attention reads, ``Memory(outputs (B, S,
                H_dec), zeros at PAD, mask (B, S))``: (state, memory).  A model without
                attention has no memory in its graph and gives an empty one
                (``shared.decoding.memory.empty_memory``).
            initial_state: None (zeros), or float32 (h, c) / (h,), each (L, B, H): where
                each layer starts (unidirectional only), run by the streaming encoder
                (``shared.onnx.graph.encoder_graph(..., streaming=True)``), built from
                this model's own weights the first time it is needed.
        """
        parts = len(self.config.state_names)
        if initial_state is None:
            session, part, feeds = self.encoder, "encoder", {"src": src}
        else:
            session, part = self._streaming(), STREAMING
            feeds = {"src": src, **dict(zip(self.config.state_names, initial_state, strict=True))}
        outputs = session.run(output_names(self.config, part), feeds)
        state = tuple(outputs[:parts])                                       # each (L, B, H_dec)
        if not return_memory:
            return state
        if not self.config.has_attention:
            return state, empty_memory(src)
        return state, Memory(*outputs[parts:])                               # (B, S, H_dec), (B, S)

    def _streaming(self) -> ort.InferenceSession:
        """The streaming encoder's session, built once from the weights the graphs hold."""
        if self.streaming_encoder is None:
            weights = canonical_weights(self.models, self.config)
            self.streaming_encoder = _session(streaming_encoder(weights, self.config),
                                              self._options)
        return self.streaming_encoder

    def decode(
        self, tgt_in: np.ndarray, state: tuple[np.ndarray, ...], memory: Memory | None = None,
        return_attention: bool = False,
    ):
        """Run the decoder from ``state``; return (logits, state).

        Args:
            tgt_in: int64 (B, T), T >= 1, BOS + answer, post-padded with PAD.  T = 1 is
                one generation step.
            state: (h, c) or (h,), float32, each (L, B, H_dec).
            memory: with attention, the ``Memory`` from ``encode`` (float32 outputs,
                bool mask); not read without.
            return_attention: also return the attention weights (B, T, S).

        Returns:
            logits (B, T, V_tgt) and the decoder's final state, like ``state``, taken at
            each row's last real token (and the weights, if asked).  Logits at PAD
            positions are unspecified (here the output bias, as packed PyTorch gives,
            or, with attention, the output layer of the attention over zeros).
        """
        names = input_names(self.config, "decoder")
        extra = tuple(memory) if self.config.has_attention else ()
        feeds = dict(zip(names, (tgt_in, *state, *extra), strict=True))
        logits, *rest = self.decoder.run(output_names(self.config, "decoder"), feeds)
        final = tuple(rest[: len(self.config.state_names)])                  # each (L, B, H_dec)
        if return_attention:
            return logits, final, rest[-1]                                   # weights (B, T, S)
        return logits, final                                                 # (B, T, V_tgt)


def _session(model: bytes, options: ort.SessionOptions) -> ort.InferenceSession:
    # The CPU provider named: a GPU build of ONNX Runtime would otherwise pick CUDA first.
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
