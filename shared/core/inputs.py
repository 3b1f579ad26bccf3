"""Input checks that both backends run first, so both refuse a bad input with the same words.

A model given the wrong thing rarely fails where the mistake is: a float id is
silently truncated, an id past the vocabulary reads a neighbour's embedding row
(or crashes deep inside a framework kernel), a pre-padded row makes the encoder
hand off the state at a PAD.  So every public entry point of ``keras_impl`` and
``torch_impl`` passes its arguments through these functions before any framework
code runs, and a person gets one ValueError that names the argument, says what
was expected and shows what came.

Shape legend: B batch, S sequence length (source or target), L layers,
H hidden (the decoder's width H_dec).
"""

from __future__ import annotations

import numpy as np

from shared.core.checks import check_count
from shared.core.config import STATE_NAMES, Seq2SeqConfig
from shared.core.tokens import PAD


def check_token_ids(
    ids: object,
    vocab_size: int,
    name: str,
    vocab_label: str,
    allow_empty_rows: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Checks a batch of token ids and counts each row's real tokens.

    Args:
        ids: anything ``np.asarray`` turns into a (B, S) integer array: a NumPy
            array, a list of equally long lists, a CPU tensor.
        vocab_size: V; every id must lie in [0, V).
        name: the argument's name in messages, e.g. "src" or "tgt_in".
        vocab_label: which vocabulary, in messages, e.g. "source" or "target".
        allow_empty_rows: False refuses a row of nothing but PAD (used for a
            training batch's tgt_in, whose every row starts with BOS).

    Returns:
        ``(ids, lengths)``: ids as a C-contiguous int64 (B, S) array, and lengths,
        int64 (B,), the number of non-PAD ids in each row.

    Raises:
        ValueError: not a 2-D array of integers, an empty batch, an id outside
            the vocabulary, a PAD before a real token, or (when not allowed) a
            row of nothing but PAD.
    """
    expected = f"{name} must be a 2-D array (B, S) of token ids"
    try:
        array = np.asarray(ids)
    except RuntimeError as err:  # a torch tensor that requires grad
        raise _unreadable(name, err) from err
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{expected}; could not make an array of it ({err}). Rows of different lengths "
            "must be post-padded with PAD to one length"
        ) from err
    if array.ndim != 2:
        hint = f" (for one sentence use {name}[None, :])" if array.ndim == 1 else ""
        raise ValueError(f"{expected}; got shape {array.shape}{hint}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {array.shape}); give at least one row")
    if array.size == 0:
        # No ids to misread, whatever the dtype: a list like [[]] arrives as float64.
        array = np.zeros(array.shape, dtype=np.int64)  # (B, 0)
    elif not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer token ids; got {_describe_dtype(array.dtype)}")

    outside = (array < 0) | (array >= vocab_size)  # (B, S)
    if outside.any():
        row, position = (int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            f"{name} id {int(array[row, position])} at row {row}, position {position} is "
            f"outside the {vocab_label} vocabulary [0, {vocab_size})"
        )
    ids = np.ascontiguousarray(array, dtype=np.int64)  # (B, S)

    # The encoder hands off the state at a row's last real token, and the
    # backends find it from the length; that only works if real tokens come first.
    is_real = ids != PAD  # (B, S)
    lengths = is_real.sum(axis=1, dtype=np.int64)  # (B,)
    post_padded = is_real == (np.arange(ids.shape[1]) < lengths[:, None])  # (B, S)
    if not post_padded.all():
        row = int(np.flatnonzero(~post_padded.all(axis=1))[0])
        first_pad = int(np.argmin(is_real[row]))
        next_real = first_pad + int(np.argmax(is_real[row, first_pad:]))
        raise ValueError(
            f"{name} row {row} has PAD at position {first_pad} before a real token at "
            f"position {next_real}; sequences must be post-padded (real tokens first, then PAD)"
        )
    if not allow_empty_rows and (lengths == 0).any():
        row = int(np.flatnonzero(lengths == 0)[0])
        raise ValueError(f"{name} row {row} is empty (all PAD); every target row starts with BOS")
    return ids, lengths


def check_state(
    state: object,
    num_layers: int,
    batch_size: int,
    hidden_size: int,
    name: str = "state",
    cell: str = "lstm",
) -> tuple[np.ndarray, ...]:
    """Checks a decoder state given from outside, e.g. a hand-off to decode from.

    Args:
        state: a tuple of arrays, each (L, B, H): one row per decoder layer.  An
            LSTM's is the pair ``(h, c)``, hidden state first, then cell state; a
            GRU's is the 1-tuple ``(h,)``, since h is all a GRU carries.
        num_layers: L.
        batch_size: B, the batch the state belongs to.
        hidden_size: H, the decoder's width H_dec.
        name: the argument's name in messages.
        cell: "lstm" or "gru".

    Returns:
        ``(h, c)`` or ``(h,)`` as C-contiguous float32 arrays, each (L, B, H).

    Raises:
        ValueError: not a tuple of the cell's length, not real numbers, a wrong
            shape, or a NaN/inf.
    """
    expected_shape = (num_layers, batch_size, hidden_size)
    parts = STATE_NAMES[cell]
    if not isinstance(state, (tuple, list)) or len(state) != len(parts):
        got = type(state).__name__
        if isinstance(state, (tuple, list)):
            got += f" of length {len(state)}"
        if cell == "lstm":
            what = "a pair (h, c): the hidden state h first, then the cell state c, each"
        else:
            what = "a 1-tuple (h,): a GRU's whole state is its hidden state h, with no c,"
            if isinstance(state, np.ndarray):
                got += "; wrap it as (h,)"
        raise ValueError(
            f"{name} must be {what} of shape {expected_shape} = (num_layers, batch, hidden); "
            f"got {got}"
        )
    checked = []
    for part, value in zip(parts, state, strict=True):
        try:
            array = np.asarray(value)
        except RuntimeError as err:  # a torch tensor that requires grad
            raise _unreadable(f"{name} {part}", err) from err
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} {part} must be an array of numbers ({err})") from err
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise ValueError(
                f"{name} {part} must hold real numbers; got {_describe_dtype(array.dtype)}"
            )
        if array.shape != expected_shape:
            raise ValueError(
                f"{name} {part} has shape {array.shape}; expected {expected_shape} "
                "= (num_layers, batch, hidden)"
            )
        # A float64 value too big for float32 becomes inf here and is refused below.
        with np.errstate(over="ignore"):
            array = np.ascontiguousarray(array, dtype=np.float32)  # (L, B, H)
        bad = ~np.isfinite(array)  # (L, B, H)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name} {part} has a non-finite value {array[where]} at {where} "
                "(layer, row, unit); a state must be finite"
            )
        checked.append(array)
    return tuple(checked)


def check_initial_state(
    initial_state: object, config: Seq2SeqConfig, batch_size: int
) -> tuple[np.ndarray, ...] | None:
    """Checks ``encode``'s ``initial_state``: None (start from zeros), or a state to continue from.

    Streaming reads a long source in chunks: each chunk starts from the state the
    previous one ended in, so that chunk after chunk computes what the whole source
    would.  Only a unidirectional encoder can do that: a bidirectional one reads the
    source backwards too, from its end, which a chunk does not have yet.

    Args:
        initial_state: None, or (h, c) / (h,), each (L, B, H_dec), e.g. the state the
            previous chunk's ``encode`` returned.
        config: the model's config.
        batch_size: B, the rows of the source being encoded.

    Returns:
        None, or the state as ``check_state`` returns it.

    Raises:
        ValueError: a bidirectional encoder, or a bad state (``check_state``).
    """
    if initial_state is None:
        return None
    if config.bidirectional:
        raise ValueError(
            "initial_state continues a unidirectional encoder chunk by chunk; this encoder is "
            "bidirectional: its backward direction starts at the end of the source, which a "
            "chunk does not have, so it cannot stream. Encode the whole source at once "
            "(initial_state=None)"
        )
    return check_state(initial_state, config.num_layers, batch_size, config.decoder_hidden_size,
                       name="initial_state", cell=config.cell)


def check_max_len(max_len: object) -> int:
    """Checks the number of tokens to generate: an int >= 1 (not a bool, not a float)."""
    return check_count(max_len, "max_len")


def check_beam_size(beam_size: object) -> int:
    """Checks the number of hypotheses beam search keeps: an int >= 1."""
    return check_count(beam_size, "beam_size")


def check_source(src: object, vocab_size: int) -> np.ndarray:
    """Checked source ids int64 (B, S) with at least one column, ready for an encoder.

    A (B, 0) batch has no token at all; one PAD column gives the same all-zero
    hand-off and spares the frameworks a zero-length sequence.
    """
    src, _ = check_token_ids(src, vocab_size, "src", "source")  # (B, S)
    if src.shape[1] == 0:
        src = np.zeros((src.shape[0], 1), dtype=np.int64)  # (B, 1)
    return src


def check_batch_sizes(src: np.ndarray, tgt_in: np.ndarray) -> None:
    """Checks that the questions and the decoder inputs are the same number of pairs.

    Args:
        src: (B, S) source ids, already checked.
        tgt_in: (B', T) decoder input ids, already checked.

    Raises:
        ValueError: B != B'.
    """
    if src.shape[0] != tgt_in.shape[0]:
        raise ValueError(
            f"src has {src.shape[0]} rows but tgt_in has {tgt_in.shape[0]}; "
            "row b of tgt_in must be the answer to row b of src"
        )


def as_array(value: object, name: str) -> np.ndarray:
    """``np.asarray(value)``, with a tensor that NumPy cannot read refused in words.

    A torch tensor that requires grad will not become a NumPy array; both
    backends refuse it here with the same ValueError and the fix (``.detach()``),
    rather than one framework's RuntimeError.
    """
    try:
        return np.asarray(value)
    except RuntimeError as err:
        raise _unreadable(name, err) from err


def _unreadable(name: str, err: Exception) -> ValueError:
    return ValueError(
        f"{name} is a tensor that NumPy cannot read ({err}); give a NumPy array, "
        "e.g. tensor.detach().cpu().numpy()"
    )


def _describe_dtype(dtype: np.dtype) -> str:
    if dtype.kind in "US":
        return f"strings ({dtype}); encode text with the tokenizer first"
    return dtype.name
