"""Programs of a fixed batch and source length, run on any batch: padding, splitting, stepping.

An on-device program has one shape, chosen at export: B_f rows (``batch_size``) and
S_f source positions (``max_source_length``).  ``FixedShapeModel`` runs the two
programs of ``shared.ondevice.contract`` on whatever a caller gives, NumPy in and out,
for every on-device engine (each supplies ``_run``, one call of one program):

    rows      B rows go through ceil(B / B_f) calls; the last call's missing rows are
              PAD rows with a zero state (and an all-False memory mask), which the
              programs leave inert, and are cut off again.
    source    a source shorter than S_f is post-padded with PAD; a longer one is read
              S_f positions at a time, each piece starting from the state the last one
              ended in (streaming), when the encoder takes a state (unidirectional);
              a bidirectional encoder refuses it, naming ``max_source_length``.
    decoder   the program takes one step: T teacher-forced steps are T calls, the
              state carried from each to the next; the memory is padded to S_f
              (zeros, mask False) and the attention weights cut back to S.

Padding is exact, not approximate: a PAD source position keeps the state and gets
weight 0 in attention, a PAD token keeps its row's state, and a padded row never
mixes with a real one.  The memory can be no longer than S_f: the decoder program
attends over S_f positions, so a longer memory is refused, naming ``max_source_length``.

Shapes: B batch, S source length, T target length, L layers, H_dec decoder hidden,
V_tgt target vocabulary; B_f and S_f the programs' fixed batch and source length.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from shared.core.config import Seq2SeqConfig
from shared.core.tokens import PAD
from shared.decoding.memory import Memory, empty_memory
from shared.ondevice.contract import streams

Feeds = dict[str, np.ndarray]


class FixedShapeModel:
    """The encoder and one-step decoder programs of fixed shape (B_f, S_f), run on any batch.

    Args:
        config: the model's sizes and cell.
        batch_size: B_f, the programs' batch.
        max_source_length: S_f, the source length the encoder reads at once and the
            memory length the decoder attends over.

    A subclass runs one program call in its runtime: ``_run(part, feeds)`` with
    ``feeds`` by input name (``shared.ondevice.contract``), returning the outputs by name.
    """

    def __init__(self, config: Seq2SeqConfig, batch_size: int, max_source_length: int):
        self.config = config
        self.batch_size = batch_size
        self.max_source_length = max_source_length

    def _run(self, part: str, feeds: Feeds) -> Feeds:
        raise NotImplementedError

    def encode(self, src: np.ndarray, return_memory: bool = False,
               initial_state: tuple[np.ndarray, ...] | None = None):
        """The hand-off (h, c) or (h,), each float32 (L, B, H_dec) [and the ``Memory``].

        Args:
            src: int64 (B, S), checked, S >= 1.
            return_memory: also return the memory (an empty one without attention).
            initial_state: None (zeros), or the state to continue from, checked
                (unidirectional encoders only).
        """
        cfg, S_f = self.config, self.max_source_length
        B, S = src.shape
        if S_f < S and not streams(cfg):
            raise ValueError(
                f"src has {S} positions; this bidirectional encoder program reads at most "
                f"max_source_length={S_f} at once and cannot read a longer source in pieces "
                f"(its backward direction starts at the end); export it again with "
                f"--max-source-length {S} or more"
            )
        state = initial_state if initial_state is not None else self._zero_state(B)
        outputs, masks = [], []
        for start in range(0, S, S_f):  # streaming: each piece starts where the last one ended
            state, memory = self._encode_piece(src[:, start : start + S_f], state)
            outputs.append(memory.outputs)
            masks.append(memory.mask)
        if not return_memory:
            return state
        if not cfg.has_attention:
            return state, empty_memory(src)
        return state, Memory(np.concatenate(outputs, axis=1), np.concatenate(masks, axis=1))

    def decode(self, tgt_in: np.ndarray, state: tuple[np.ndarray, ...],
               memory: Memory | None = None, return_attention: bool = False):
        """T steps of the one-step decoder: (logits (B, T, V_tgt), state[, weights (B, T, S)]).

        Args:
            tgt_in: int64 (B, T), checked, T >= 1.
            state: float32 (h, c) or (h,), each (L, B, H_dec), checked.
            memory: with attention, the checked ``Memory``; not read without.
            return_attention: also return the attention weights.
        """
        cfg = self.config
        B, T = tgt_in.shape
        S = memory.outputs.shape[1] if cfg.has_attention else 0
        if self.max_source_length < S:
            raise ValueError(
                f"memory has {S} source positions; this decoder program attends over at most "
                f"max_source_length={self.max_source_length}; export it again with "
                f"--max-source-length {S} or more"
            )
        logits = np.zeros((B, T, cfg.tgt_vocab_size), np.float32)            # (B, T, V_tgt)
        weights = np.zeros((B, T, S), np.float32)                              # (B, T, S)
        final = [np.empty_like(part) for part in state]                        # each (L, B, H_dec)
        for rows in self._row_blocks(B):
            n = rows.stop - rows.start
            carried = self._pad_state(tuple(part[:, rows] for part in state))  # (L, B_f, H_dec)
            extra = self._pad_memory(memory.take(np.arange(rows.start, rows.stop)), n) \
                if cfg.has_attention else {}
            for t in range(T):
                out = self._run("decoder", {"tokens": self._pad_rows(tgt_in[rows, t], n),
                                            **carried, **extra})
                logits[rows, t] = out["logits"][:n]
                carried = {name: out[name] for name in cfg.state_names}
                if cfg.has_attention:
                    weights[rows, t] = out["attention"][:n, :S]
            for part, name in zip(final, cfg.state_names, strict=True):
                part[:, rows] = carried[name][:, :n]
        if return_attention:
            return logits, tuple(final), weights
        return logits, tuple(final)

    # ---- padding and splitting ----

    def _encode_piece(self, src: np.ndarray, state: tuple[np.ndarray, ...]):
        """One piece of at most S_f positions for every row: (state, Memory of the piece)."""
        cfg, S_f = self.config, self.max_source_length
        B, S = src.shape
        final = [np.empty_like(part) for part in state]                        # each (L, B, H_dec)
        width = cfg.decoder_hidden_size if cfg.has_attention else 0
        outputs = np.zeros((B, S, width), np.float32)                          # (B, S, H_dec)
        for rows in self._row_blocks(B):
            n = rows.stop - rows.start
            ids = np.full((self.batch_size, S_f), PAD, np.int32)               # (B_f, S_f)
            ids[:n, :S] = src[rows]
            feeds = {"src": ids}
            if streams(cfg):
                feeds |= self._pad_state(tuple(part[:, rows] for part in state))
            out = self._run("encoder", feeds)
            for part, name in zip(final, cfg.state_names, strict=True):
                part[:, rows] = out[name][:, :n]
            if cfg.has_attention:
                outputs[rows] = out["memory"][:n, :S]
        return tuple(final), Memory(outputs, src != PAD)

    def _row_blocks(self, B: int) -> Iterator[slice]:
        return (slice(start, min(start + self.batch_size, B))
                for start in range(0, B, self.batch_size))

    def _pad_rows(self, tokens: np.ndarray, n: int) -> np.ndarray:
        """int32 (B_f,): the block's n tokens, then PAD."""
        padded = np.full(self.batch_size, PAD, np.int32)                       # (B_f,)
        padded[:n] = tokens
        return padded

    def _pad_state(self, state: tuple[np.ndarray, ...]) -> Feeds:
        """{"h": (L, B_f, H_dec), ...}: the block's rows, then zero rows."""
        padded = {}
        for name, part in zip(self.config.state_names, state, strict=True):
            full = np.zeros((part.shape[0], self.batch_size, part.shape[2]), np.float32)
            full[:, : part.shape[1]] = part
            padded[name] = full
        return padded

    def _pad_memory(self, memory: Memory, n: int) -> Feeds:
        """The memory of n rows padded to (B_f, S_f): zeros and False past the real ones."""
        B_f, S_f = self.batch_size, self.max_source_length
        S = memory.outputs.shape[1]
        outputs = np.zeros((B_f, S_f, memory.outputs.shape[2]), np.float32)    # (B_f, S_f, H_dec)
        mask = np.zeros((B_f, S_f), bool)                                      # (B_f, S_f)
        outputs[:n, :S], mask[:n, :S] = memory.outputs, memory.mask
        return {"memory": outputs, "memory_mask": mask}

    def _zero_state(self, B: int) -> tuple[np.ndarray, ...]:
        shape = (self.config.num_layers, B, self.config.decoder_hidden_size)  # (L, B, H_dec)
        return tuple(np.zeros(shape, np.float32) for _ in self.config.state_names)
