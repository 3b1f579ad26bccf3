"""The on-device contract: what the encoder and decoder programs take and give, named, in order.

    encoder   src int32 (B, S)  [h, c float32 (L, B, H_dec): unidirectional encoders only]
              -> h, c float32 (L, B, H_dec)  [memory float32 (B, S, H_dec), memory_mask bool (B, S)]
    decoder   tokens int32 (B,), h, c  [memory, memory_mask]
              -> logits float32 (B, V_tgt), h, c  [attention float32 (B, S)]

A GRU has no ``c``; ``memory``, ``memory_mask`` and ``attention`` exist with attention
only.  B (``batch_size``) and S (``max_source_length``) are fixed when the programs
are exported, as on-device runtimes want; ids are int32, as they are on devices.

The state is explicit: the encoder of a unidirectional model always takes the state
it starts from (zeros for a fresh source, the last chunk's state to stream a long
one), so one program serves both; a bidirectional encoder reads the source from its
end too, cannot continue from a state, and takes ``src`` alone.  The decoder takes
one token per row and the state, and gives the next state: a generation step.

PAD (id 0) is inert everywhere: a source row ends at its last real token (its
hand-off is that token's state; an all-PAD row hands off the state it was given),
the memory is zeros at PAD and the mask False, and a PAD token keeps its row's
state (its logits are unspecified).  So padding a batch or a source up to the
fixed shape changes nothing, which is what ``shared.ondevice.fixed`` relies on.

How each runtime names them: a LiteRT file holds one signature (``ENTRY``: "encode"
in encoder.tflite, "decode" in decoder.tflite) whose inputs and outputs carry these
names and are fed by name; an ExecuTorch program's ``forward`` takes its inputs in
the order above and returns its outputs in that order (a .pte keeps no names).

Shapes: B batch (fixed), S source length (fixed), L layers, H_dec decoder hidden,
V_tgt target vocabulary.
"""

from __future__ import annotations

from typing import NamedTuple

from shared.core.config import Seq2SeqConfig

PARTS = ("encoder", "decoder")
# The fixed shape an export gets unless told otherwise: one question at a time (a phone
# app's case; beam search's K hypotheses then take K calls a step), and sources of up to
# 32 tokens (the built-in tasks' questions have at most 20; a unidirectional encoder
# reads a longer source in pieces).  An unrolled program grows with the source length.
DEFAULT_BATCH_SIZE = 1
DEFAULT_MAX_SOURCE_LENGTH = 32
# The LiteRT signature (and the ExecuTorch method is ``forward``) of each part.
ENTRY = {"encoder": "encode", "decoder": "decode"}
MEMORY = ("memory", "memory_mask")


class Tensor(NamedTuple):
    """One input or output of a program: its name, fixed shape and dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # "int32", "float32" or "bool"


def streams(config: Seq2SeqConfig) -> bool:
    """Whether the encoder takes a state to start from: a unidirectional one does."""
    return not config.bidirectional


def inputs(config: Seq2SeqConfig, part: str, batch_size: int,
           max_source_length: int) -> list[Tensor]:
    """The inputs of ``part`` ("encoder" or "decoder"), in the order ExecuTorch takes them."""
    B, S = batch_size, max_source_length
    state = _state(config, B)                                                 # each (L, B, H_dec)
    if part == "encoder":
        return [Tensor("src", (B, S), "int32"), *(state if streams(config) else [])]
    return [Tensor("tokens", (B,), "int32"), *state, *_memory(config, B, S)]


def outputs(config: Seq2SeqConfig, part: str, batch_size: int,
            max_source_length: int) -> list[Tensor]:
    """The outputs of ``part``, in the order ExecuTorch returns them."""
    B, S = batch_size, max_source_length
    state = _state(config, B)                                                 # each (L, B, H_dec)
    if part == "encoder":
        return [*state, *_memory(config, B, S)]
    attention = [Tensor("attention", (B, S), "float32")] if config.has_attention else []
    return [Tensor("logits", (B, config.tgt_vocab_size), "float32"), *state, *attention]


def input_names(config: Seq2SeqConfig, part: str) -> list[str]:
    """The names of ``part``'s inputs, in order (the sizes do not change them)."""
    return [tensor.name for tensor in inputs(config, part, 1, 1)]


def output_names(config: Seq2SeqConfig, part: str) -> list[str]:
    """The names of ``part``'s outputs, in order."""
    return [tensor.name for tensor in outputs(config, part, 1, 1)]


def _state(config: Seq2SeqConfig, B: int) -> list[Tensor]:
    return [Tensor(name, (config.num_layers, B, config.decoder_hidden_size), "float32")
            for name in config.state_names]


def _memory(config: Seq2SeqConfig, B: int, S: int) -> list[Tensor]:
    if not config.has_attention:
        return []
    return [Tensor("memory", (B, S, config.decoder_hidden_size), "float32"),   # (B, S, H_dec)
            Tensor("memory_mask", (B, S), "bool")]                             # (B, S)
