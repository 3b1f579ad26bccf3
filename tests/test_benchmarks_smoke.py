"""The benchmarks' arithmetic and inputs, checked without timing anything.

Running a benchmark takes tens of seconds (tracing, warm-up, repeats), too long
for the suite; what can be wrong without showing up as a slow number is
checked here: the FLOP count behind the roofline, the batches that are timed,
the weights that keep generation from stopping early, the GPU parity script's
batches, and the timing helper.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from benchmarks.common import interleaved_ms
from benchmarks.decode import shared_weights, sources
from benchmarks.roofline import step_flops
from benchmarks.threads import recommend
from benchmarks.train_step import synthetic_batch
from shared import BOS, EOS, PAD, Seq2SeqConfig
from shared.training.checks import check_training_batch


def test_step_flops_is_three_forward_passes_of_multiplies():
    B, S, T, E, H, V = 64, 20, 20, 128, 256, 1000
    lstm = 2 * (S + T) * B * (E + H) * 4 * H  # input and recurrent multiplies, both LSTMs
    output = 2 * T * B * H * V
    assert step_flops() == 3 * (lstm + output) == 8_005_877_760


def test_timed_batch_is_teacher_forcing_without_padding():
    src, tgt_in, tgt_out = synthetic_batch()
    assert src.shape == tgt_in.shape == tgt_out.shape == (64, 20)
    assert (src != PAD).all() and (tgt_in != PAD).all(), "full-length rows have no PAD"
    assert (tgt_in[:, 0] == BOS).all() and (tgt_out[:, -1] == EOS).all()
    np.testing.assert_array_equal(tgt_in[:, 1:], tgt_out[:, :-1], "target = input shifted by one")


def test_ragged_batch_rows_end_with_eos_then_pad():
    _, tgt_in, tgt_out = synthetic_batch(ragged=True)
    lengths = (tgt_in != PAD).sum(axis=1)                                   # (B,)
    np.testing.assert_array_equal(lengths, (tgt_out != PAD).sum(axis=1))
    assert lengths.min() >= 10 and lengths.max() <= 20 and len(set(lengths)) > 1
    assert (tgt_out[np.arange(64), lengths - 1] == EOS).all()
    for row, n in enumerate(lengths):
        np.testing.assert_array_equal(tgt_in[row, 1:n], tgt_out[row, : n - 1])


def test_decode_weights_never_pick_eos():
    _, weights = shared_weights()
    W, b = weights["decoder.output.W"], weights["decoder.output.b"]          # (V, H), (V,)
    # h = o * tanh(c) lies in [-1, 1]^H, so logit v lies within b_v +- sum |W_v|.
    highest_eos = b[EOS] + np.abs(W[EOS]).sum()
    lowest_other = np.delete(b - np.abs(W).sum(axis=1), EOS).min()
    assert highest_eos < lowest_other, "EOS could be the argmax: generation may stop early"
    lengths = (sources(8) != PAD).sum(axis=1)
    assert lengths.min() >= 10 and lengths.max() <= 20


def test_interleaved_ms_calls_each_contender_and_takes_the_median():
    calls = {"short": 0, "long": 0}

    def work(name, seconds):
        def fn():
            calls[name] += 1
            time.sleep(seconds)
        return fn

    ms = interleaved_ms({"short": work("short", 0.001), "long": work("long", 0.004)},
                        rounds=3, steps=2, warmup=1, settle=1)
    assert calls == {"short": 10, "long": 10}  # 1 warm-up + 3 rounds of (1 settling + 2 timed)
    assert 1.0 <= ms["short"] < ms["long"] and ms["long"] >= 4.0


def test_recommend_picks_the_fastest_alternating_pair():
    def figures(torch_1, keras_1, torch_2, keras_2):
        return {"torch_alternating_1": torch_1, "keras_alternating_1": keras_1,
                "torch_alternating_2": torch_2, "keras_alternating_2": keras_2}

    results = {(1, 1, "off"): figures(100, 150, 60, 150), (1, 2, "on"): figures(105, 75, 66, 77)}
    best = recommend(results)
    assert best == {"torch_intra": 2, "tf_intra": 1, "tf_inter": 2, "onednn": "on",
                    "pair_ms": 143}


def test_gpu_parity_batches_keep_empty_rows_empty_and_are_valid_training_batches():
    pytest.importorskip("torch")
    from benchmarks.gpu_parity import ragged, teacher_forcing

    rng = np.random.default_rng(0)
    tgt_in = ragged(rng, 16, 8, 30, first=BOS)                              # (B, T)
    lengths = (tgt_in != PAD).sum(axis=1)                                   # (B,)
    assert lengths[0] == 0 and lengths[1] == 1, "an empty row and a length-1 row"
    assert (tgt_in[lengths > 0, 0] == BOS).all(), "every row with a token starts with BOS"
    post_padded = np.arange(8) < lengths[:, None]                           # (B, T)
    np.testing.assert_array_equal(tgt_in != PAD, post_padded, "rows are post-padded")

    answers = ragged(rng, 16, 8, 30)                                        # (B, 8)
    tgt_in, tgt_out = teacher_forcing(answers)                              # each (B, 9)
    np.testing.assert_array_equal(tgt_in[:, 1:], answers, "the decoder reads BOS + answer")
    n = (answers != PAD).sum(axis=1)
    assert (tgt_out[np.arange(16), n] == EOS).all() and tgt_out[0, 0] == EOS
    check_training_batch(Seq2SeqConfig(40, 30, 8, 8), ragged(rng, 16, 5, 40), tgt_in, tgt_out)


@pytest.mark.parametrize("name", ["torch_impl_step", "keras_impl_step"])
def test_timed_steps_are_built_as_the_trainers_build_them(name, monkeypatch):
    """The timed step uses the trainers' own optimizer and loss: it runs, and learns
    (on a model shrunk from the benchmark's size: the build, not the speed, is checked)."""
    import benchmarks.train_step as bench

    for constant, small in (("VOCAB", 30), ("EMBEDDING", 8), ("HIDDEN", 8)):
        monkeypatch.setattr(bench, constant, small)
    step = getattr(bench, name)(bench.synthetic_batch(length=6, batch=4))
    first, second = step(), step()
    assert np.isfinite(first) and second < first, f"{name}: losses {first}, {second}"
