"""The two on-device programs over the Keras model: the encoder, and one decoder step.

The mirror of ``torch_impl/programs.py``.  What LiteRT runs, before
``keras_impl.on_device`` converts it: two functions of fixed-shape tensors over the
model's own ``encode`` and ``decode``, taking and giving the tensors that
``shared.ondevice.contract`` names, in its order:

    EncoderProgram   src int32 (B, S) [, h, c (L, B, H_dec)]   -> {h, c [, memory, memory_mask]}
    DecoderProgram   tokens int32 (B,), h, c [, memory, mask]  -> {logits, h, c [, attention]}

The masking is the model's own: Keras masks (every recurrent layer is given
``mask=`` explicitly, docs/examples/09_initial_state_mask_trap.py), so a PAD source
position keeps the state and gives a zero memory row, and a PAD token keeps its
row's state: the padding an engine adds to reach the fixed shape is inert.  A
unidirectional encoder starts from the state it is given (zeros: a fresh source;
the last piece's state: streaming); a bidirectional one takes ``src`` alone.

The functions use Keras only, on any backend; converting them to LiteRT needs
TensorFlow (``keras_impl.on_device``).

Shapes: B batch, S source length, L layers, H_dec decoder hidden, V_tgt target
vocabulary.
"""

from __future__ import annotations

from keras_impl.model import Seq2Seq
from shared.ondevice.contract import MEMORY, streams


class EncoderProgram:
    """src (B, S) [, the state to start from] -> the hand-off [and the memory], by name.

    Args:
        model: a ``keras_impl`` model holding the weights to export.
    """

    def __init__(self, model: Seq2Seq):
        self.model = model
        self.config = model.config

    def __call__(self, src, *state) -> dict:
        cfg = self.config
        start = state if streams(cfg) else None                             # each (L, B, H_dec)
        final, memory = self.model.encode(src, return_memory=True, initial_state=start)
        out = dict(zip(cfg.state_names, final, strict=True))                # each (L, B, H_dec)
        if cfg.has_attention:
            out |= dict(zip(MEMORY, memory, strict=True))                   # (B, S, H_dec), (B, S)
        return out


class DecoderProgram:
    """One generation step: tokens (B,), the state [, the memory] -> logits, state [, weights].

    Args:
        model: a ``keras_impl`` model holding the weights to export.
    """

    def __init__(self, model: Seq2Seq):
        self.model = model
        self.config = model.config

    def __call__(self, tokens, *rest) -> dict:
        cfg = self.config
        parts = len(cfg.state_names)
        state, memory = tuple(rest[:parts]), tuple(rest[parts:]) or None    # each (L, B, H_dec)
        # One step is decode over T = 1; a PAD token keeps its row's state.
        logits, final, *weights = self.model.decode(
            tokens[:, None], state, memory, return_attention=cfg.has_attention)
        out = {"logits": logits[:, 0], **dict(zip(cfg.state_names, final, strict=True))}
        if cfg.has_attention:
            out["attention"] = weights[0][:, 0]                             # (B, S)
        return out                                                          # logits (B, V_tgt)


PROGRAMS = {"encoder": EncoderProgram, "decoder": DecoderProgram}
