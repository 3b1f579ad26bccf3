"""Every refusal in shared.core.inputs, and the inputs that must pass."""

import re

import numpy as np
import pytest

from shared.core.inputs import (
    check_batch_sizes,
    check_beam_size,
    check_max_len,
    check_state,
    check_token_ids,
)
from shared.core.tokens import BOS, EOS, PAD
from tests.refusal import refusal


def _src(ids, **kwargs):
    return check_token_ids(ids, 12, "src", "source", **kwargs)


# --- check_token_ids: what passes -----------------------------------------------------------


def test_valid_ids_pass_with_lengths(rng):
    ids = rng.integers(4, 12, size=(4, 6))  # (B, S)
    ids[1, 3:] = PAD
    ids[2, 1:] = PAD
    ids[3, :] = PAD  # an empty source row is allowed by default
    checked, lengths = _src(ids)
    np.testing.assert_array_equal(checked, ids)
    np.testing.assert_array_equal(lengths, [6, 3, 1, 0])
    assert checked.dtype == np.int64 and lengths.dtype == np.int64
    assert checked.flags["C_CONTIGUOUS"]


def test_lists_of_lists_accepted():
    checked, lengths = _src([[5, 6, EOS], [7, PAD, PAD]])
    assert checked.dtype == np.int64
    np.testing.assert_array_equal(checked, [[5, 6, EOS], [7, PAD, PAD]])
    np.testing.assert_array_equal(lengths, [3, 1])


@pytest.mark.parametrize("dtype", [np.int32, np.int16, np.uint8, np.uint64])
def test_other_integer_dtypes_become_int64(dtype):
    ids = np.array([[11, 4, 0]], dtype=dtype)
    checked, lengths = _src(ids)
    assert checked.dtype == np.int64
    np.testing.assert_array_equal(checked, [[11, 4, 0]])
    np.testing.assert_array_equal(lengths, [2])


def test_non_contiguous_input_is_made_contiguous():
    ids = np.array([[4, 5, 6], [7, 8, 0]], dtype=np.int64).T  # (3, 2), Fortran order
    checked, lengths = _src(ids)
    assert checked.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(checked, [[4, 7], [5, 8], [6, 0]])
    np.testing.assert_array_equal(lengths, [2, 2, 1])


def test_zero_width_batch_is_all_empty_rows():
    checked, lengths = _src(np.zeros((3, 0), dtype=np.int64))
    assert checked.shape == (3, 0)
    np.testing.assert_array_equal(lengths, [0, 0, 0])
    # [[]] arrives as float64 from NumPy but holds no id to misread.
    for empty in ([[]], np.zeros((1, 0), dtype=str)):
        checked, lengths = _src(empty)
        assert checked.shape == (1, 0) and checked.dtype == np.int64
        np.testing.assert_array_equal(lengths, [0])


# --- check_token_ids: refusals --------------------------------------------------------------


def test_ragged_lists_refused():
    refusal(lambda: _src([[4, 5], [6]]),
            holds="src must be a 2-D array (B, S) of token ids; could not make an array")


@pytest.mark.parametrize(
    ("ids", "shape"),
    [(np.arange(4, 11), "(7,)"), (np.int64(5), "()"), (np.ones((2, 3, 4), np.int64), "(2, 3, 4)")],
)
def test_wrong_rank_refused(ids, shape):
    refusal(lambda: _src(ids),
            holds=f"src must be a 2-D array (B, S) of token ids; got shape {shape}")


def test_one_sentence_gets_a_hint():
    refusal(lambda: _src(np.arange(4, 11)), holds="(for one sentence use src[None, :])")


def test_empty_batch_refused():
    refusal(lambda: _src(np.zeros((0, 5), np.int64)),
            holds="src is an empty batch (shape (0, 5)); give at least one row")


@pytest.mark.parametrize(
    ("ids", "got"),
    [
        (np.array([[4.0, 5.0]], np.float32), "got float32"),  # whole floats too
        (np.array([[4.5, 5.0]]), "got float64"),
        (np.array([[True, False]]), "got bool"),
        (np.array([[4, None]], dtype=object), "got object"),
        ([["a", "b"]], "got strings (<U1); encode text with the tokenizer first"),
    ],
)
def test_non_integer_dtypes_refused(ids, got):
    refusal(lambda: _src(ids), holds=f"src must hold integer token ids; {got}")


@pytest.mark.parametrize(
    ("position", "value"), [((0, 3), 12), ((1, 0), -1), ((1, 2), 99), ((0, 0), 2**40)]
)
def test_out_of_range_id_refused(position, value):
    ids = np.array([[4, 5, 6, 7], [8, 9, 10, 11]], dtype=np.int64)
    ids[position] = value
    row, col = position
    refusal(lambda: _src(ids), holds=f"src id {value} at row {row}, position {col} is outside "
                                     "the source vocabulary [0, 12)")


def test_out_of_range_reports_first_offender_in_reading_order():
    ids = np.array([[4, 5, 6], [7, 20, 30]])
    refusal(lambda: _src(ids), holds="src id 20 at row 1, position 1")


def test_pre_padding_refused():
    refusal(lambda: _src([[4, 5, 6, 7], [PAD, PAD, 8, 9]]),
            holds="src row 1 has PAD at position 0 before a real token at position 2; "
                  "sequences must be post-padded (real tokens first, then PAD)")


def test_hole_refused():
    refusal(lambda: _src([[4, PAD, PAD, 9], [4, 5, PAD, PAD]]),
            holds="src row 0 has PAD at position 1 before a real token at position 3")


def test_empty_target_row_refused_when_not_allowed():
    tgt_in = [[BOS, 4, 5], [BOS, PAD, PAD], [PAD, PAD, PAD]]
    with pytest.raises(
        ValueError,
        match=re.escape("tgt_in row 2 is empty (all PAD); every target row starts with BOS"),
    ):
        check_token_ids(tgt_in, 12, "tgt_in", "target", allow_empty_rows=False)


def test_zero_width_target_refused_when_rows_may_not_be_empty():
    with pytest.raises(ValueError, match=re.escape("tgt_in row 0 is empty (all PAD)")):
        check_token_ids(np.zeros((2, 0), np.int64), 12, "tgt_in", "target", allow_empty_rows=False)


def test_messages_use_the_given_name_and_vocabulary():
    with pytest.raises(
        ValueError,
        match=re.escape("tgt_in id 7 at row 0, position 1 is outside the target vocabulary [0, 6)"),
    ):
        check_token_ids([[BOS, 7]], 6, "tgt_in", "target")


# --- check_state ----------------------------------------------------------------------------


def _state(rng, shape=(2, 3, 8)):
    return (
        rng.standard_normal(shape).astype(np.float64),
        rng.standard_normal(shape).astype(np.float32),
    )


def test_valid_state_passes_as_float32(rng):
    h, c = _state(rng)
    got_h, got_c = check_state([h, c], 2, 3, 8)
    assert got_h.dtype == np.float32 and got_c.dtype == np.float32
    assert got_h.flags["C_CONTIGUOUS"] and got_c.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(got_h, h.astype(np.float32))
    np.testing.assert_array_equal(got_c, c)


@pytest.mark.parametrize(
    ("state", "got"),
    [
        (np.zeros((2, 2, 3, 8)), "got ndarray"),
        ((np.zeros((2, 3, 8)),), "got tuple of length 1"),
        ([np.zeros((2, 3, 8))] * 3, "got list of length 3"),
        ({"h": 0, "c": 0}, "got dict"),
    ],
)
def test_state_not_a_pair_refused(state, got):
    message = (
        "state must be a pair (h, c): the hidden state h first, then the cell state c, "
        f"each of shape (2, 3, 8) = (num_layers, batch, hidden); {got}"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        check_state(state, 2, 3, 8)


def test_a_gru_state_is_a_1_tuple(rng):
    h, _ = _state(rng)
    (got,) = check_state((h,), 2, 3, 8, cell="gru")
    np.testing.assert_array_equal(got, h.astype(np.float32))
    message = (
        "state must be a 1-tuple (h,): a GRU's whole state is its hidden state h, with no c, "
        "of shape (2, 3, 8) = (num_layers, batch, hidden); got"
    )
    with pytest.raises(ValueError, match=re.escape(message + " tuple of length 2")):
        check_state(_state(rng), 2, 3, 8, cell="gru")  # an LSTM's (h, c)
    with pytest.raises(ValueError, match=re.escape(message + " ndarray; wrap it as (h,)")):
        check_state(h, 2, 3, 8, cell="gru")
    with pytest.raises(ValueError, match=re.escape("state must be a pair (h, c)")):
        check_state((h,), 2, 3, 8, cell="lstm")  # a GRU's state given to an LSTM


def test_state_wrong_shape_names_the_part(rng):
    h, c = _state(rng)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "state h has shape (1, 3, 8); expected (2, 3, 8) = (num_layers, batch, hidden)"
        ),
    ):
        check_state((h[:1], c), 2, 3, 8)
    with pytest.raises(ValueError, match=re.escape("state c has shape (2, 4, 8); expected")):
        check_state((h, np.zeros((2, 4, 8))), 2, 3, 8)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])  # 1e300 overflows float32
def test_state_non_finite_refused(rng, bad):
    h, c = _state(rng)
    h[1, 2, 5] = bad  # h is float64 here
    with pytest.raises(ValueError, match=re.escape("at (1, 2, 5) (layer, row, unit)")) as info:
        check_state((h, c), 2, 3, 8, name="initial_state")
    assert str(info.value).startswith("initial_state h has a non-finite value")


def test_state_non_numeric_refused():
    with pytest.raises(ValueError, match=re.escape("state h must hold real numbers; got bool")):
        check_state((np.ones((1, 1, 2), bool), np.ones((1, 1, 2))), 1, 1, 2)


# --- scalars and batch sizes ----------------------------------------------------------------


@pytest.mark.parametrize("check", [check_max_len, check_beam_size])
def test_positive_ints_pass(check):
    assert check(1) == 1
    result = check(np.int64(7))
    assert result == 7 and type(result) is int


@pytest.mark.parametrize(
    ("value", "got"),
    [
        (0, "got 0"),
        (-3, "got -3"),
        (np.int32(0), "got 0"),
        (2.0, "got 2.0 (float)"),
        (True, "got True (bool)"),
        ("5", "got '5' (str)"),
        (None, "got None (NoneType)"),
    ],
)
@pytest.mark.parametrize(
    ("check", "name"), [(check_max_len, "max_len"), (check_beam_size, "beam_size")]
)
def test_bad_positive_ints_refused(check, name, value, got):
    with pytest.raises(ValueError, match=re.escape(f"{name} must be an integer >= 1; {got}")):
        check(value)


def test_batch_sizes_must_match():
    check_batch_sizes(np.zeros((3, 5)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=re.escape("src has 3 rows but tgt_in has 4")):
        check_batch_sizes(np.zeros((3, 5)), np.zeros((4, 5)))
