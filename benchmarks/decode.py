"""Generation speed, greedy and beam: sentences per second, and how time grows with length.

    python benchmarks/decode.py [--quick] [--json]
           [--torch-threads N] [--tf-threads INTRA,INTER] [--onednn on|off] [--onnx-threads N]

Generating an answer is a loop: the decoder is fed BOS with the encoder's
hand-off (h, c), predicts a token, is fed that token with the new (h, c), and so
on.  Four ways to run that loop on the same weights (V = 1000, E = 128,
H = 256, one layer):

    keras_impl  ``keras_impl.greedy_decode``: the whole batch of 256 sentences
                moves together, one compiled decoder step (a tf.function) per token.
    torch_impl  ``torch_impl.greedy_decode``: the same search (shared.decoding.search) over
                PyTorch's decoder step, 256 sentences at once.
    onnx_impl   ``onnx_impl.greedy_decode``: the same search over ONNX Runtime's
                session of the exported decoder (``shared.onnx.export``).
    kerasio     the keras-io lstm_seq2seq tutorial's ``decode_sequence``: an
                encoder model's ``predict``, then a decoder model's ``predict``
                once per token, one sentence at a time.  Its models are built, as
                in the tutorial, from the trained model's layers, so they hold the
                same weights; ids and an Embedding replace its one-hot characters,
                and PAD and BOS are blocked as in greedy_decode, so that the three
                give the same tokens (checked).  At about 2 s a sentence it is timed
                on a few sentences (4; 2 with --quick), and its rate is per sentence.

The three backends also run ``beam_decode`` with beam size 4 (1,024 hypotheses
a step; the search's bookkeeping is NumPy and Python, the same for all three).

``length_scaling`` is the time at max_len 40 over the time at max_len 20, the
largest of keras_impl's, torch_impl's and onnx_impl's.  Carrying (h, c) makes each step cost
the same, so it should be near 2 (re-reading the prefix every step would make
it near 4).  The loop stops early when every sentence has produced EOS; to
time exactly max_len steps, EOS's output bias is set to -10000, so EOS is never
the most likely token (the check below confirms every run went to max_len).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# `python benchmarks/x.py` puts benchmarks/ on sys.path; the imports need the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.common import (
    EMBEDDING,
    HIDDEN,
    VOCAB,
    add_thread_arguments,
    benchmark_parser,
    full_ids,
    interleaved_ms,
    load_average,
    machine,
    print_json_line,
    start_frameworks,
)
from shared import BOS, EOS, PAD, Seq2SeqConfig, configure_threads
from shared.layout import random_weights

# The frameworks are imported inside the functions that use them: TensorFlow
# reads TF_ENABLE_ONEDNN_OPTS when it loads, and start_frameworks sets it from --onednn first.

SENTENCES, MAX_LEN, BEAM = 256, 20, 4
IMPLS = ("keras_impl", "torch_impl", "onnx_impl")


def shared_weights(seed: int = 0) -> tuple:
    """(config, canonical weights) with EOS never the argmax: every run takes max_len steps."""
    config = Seq2SeqConfig(VOCAB, VOCAB, EMBEDDING, HIDDEN)
    weights = random_weights(config, seed=seed)
    weights["decoder.output.b"][EOS] = -1e4
    return config, weights


def sources(n: int, seed: int = 1):
    """int64 (n, 20): questions of 10 to 20 real tokens, post-padded with PAD."""
    rng = np.random.default_rng(seed)
    src = full_ids(rng, n, MAX_LEN, VOCAB)                                 # (n, S)
    for row in range(n):
        src[row, rng.integers(MAX_LEN // 2, MAX_LEN + 1):] = PAD
    return src


def kerasio_decoder(model):
    """The tutorial's inference loop over ``model``'s own layers (one sentence at a time)."""
    import keras

    H = model.config.hidden_size
    # Inference models, as in the tutorial: encoder -> states; decoder(token, states) -> next.
    encoder_inputs = keras.Input((None,), dtype="int64")
    _, h, c = model.encoder_rnn[0](model.encoder_embedding(encoder_inputs))
    encoder_model = keras.Model(encoder_inputs, [h, c])
    decoder_inputs = keras.Input((None,), dtype="int64")
    state_inputs = [keras.Input((H,)), keras.Input((H,))]
    y, h, c = model.decoder_rnn[0](model.decoder_embedding(decoder_inputs),
                                    initial_state=state_inputs)
    decoder_model = keras.Model([decoder_inputs, *state_inputs], [model.decoder_output(y), h, c])

    def decode_sequence(question, max_len: int) -> list[int]:
        states_value = encoder_model.predict(question[None], verbose=0)      # [(1, H), (1, H)]
        target_seq = np.array([[BOS]])                                       # (1, 1)
        decoded = []
        while True:
            output_tokens, h, c = decoder_model.predict([target_seq, *states_value], verbose=0)
            scores = output_tokens[0, -1].copy()                              # (V,)
            scores[[PAD, BOS]] = -np.inf
            token = int(np.argmax(scores))
            decoded.append(token)
            if token == EOS or len(decoded) >= max_len:
                return decoded
            target_seq = np.array([[token]])
            states_value = [h, c]

    return decode_sequence


def run(quick: bool = False, onnx_threads: int = 1) -> tuple[dict, dict, dict]:
    """(figures, ms per contender, token agreement); see the module docstring."""
    import keras_impl
    import onnx_impl
    import torch_impl

    config, weights = shared_weights()
    # ONNX Runtime takes its threads per session, when one is built: set them first.
    configure_threads(onnx_threads, 1, frameworks=("onnxruntime",))
    models = {}
    for name, backend in (("keras_impl", keras_impl), ("torch_impl", torch_impl),
                          ("onnx_impl", onnx_impl)):
        model = backend.build_model(config)
        backend.import_weights(model, weights)
        models[name] = (backend, model)
    src = sources(SENTENCES)                                                 # (N, S)
    rounds, warmup = (3, 1) if quick else (15, 2)

    contenders = {}
    for name, (backend, model) in models.items():
        for max_len in (MAX_LEN, 2 * MAX_LEN):
            contenders[f"{name}@{max_len}"] = (
                lambda b=backend, m=model, n=max_len: b.greedy_decode(m, src, n))
        contenders[f"{name} beam"] = (
            lambda b=backend, m=model: b.beam_decode(m, src, BEAM, MAX_LEN))
    ms = interleaved_ms(contenders, rounds, 1, warmup)
    greedy = {name: backend.greedy_decode(model, src, MAX_LEN)               # (N, T)
              for name, (backend, model) in models.items()}
    beams = {name: backend.beam_decode(model, src, BEAM, MAX_LEN)            # (N, T)
             for name, (backend, model) in models.items()}
    for generated in (*greedy.values(), *beams.values()):
        assert (generated[:, -1] != PAD).all(), "a sentence stopped before max_len"
    keras_tokens = greedy["keras_impl"]
    keras_model = models["keras_impl"][1]

    decode_sequence = kerasio_decoder(keras_model)
    questions = [row[row != PAD] for row in src[: 2 if quick else 4]]
    decode_sequence(questions[0], MAX_LEN)  # warm-up: predict builds its function on first use
    seconds, tutorial_tokens = [], []
    for question in questions:
        tic = time.perf_counter()
        tutorial_tokens.append(decode_sequence(question, MAX_LEN))
        seconds.append(time.perf_counter() - tic)

    figures = {f"{name}_sent_per_s": SENTENCES / (ms[f"{name}@{MAX_LEN}"] / 1e3) for name in IMPLS}
    figures |= {f"{name}_beam_sent_per_s": SENTENCES / (ms[f"{name} beam"] / 1e3)
                for name in IMPLS}
    figures |= {
        "kerasio_sent_per_s": 1 / float(np.median(seconds)),
        "length_scaling": max(ms[f"{name}@{2 * MAX_LEN}"] / ms[f"{name}@{MAX_LEN}"]
                              for name in IMPLS),
    }
    agreement = {
        **{name: float((greedy[name] == keras_tokens).all(axis=1).mean()) for name in IMPLS[1:]},
        **{f"{name} beam": float((beams[name] == beams["keras_impl"]).all(axis=1).mean())
           for name in IMPLS[1:]},
        "kerasio": float(np.mean([
            list(keras_tokens[i]) == tokens for i, tokens in enumerate(tutorial_tokens)
        ])),
    }
    return figures, ms, agreement


def report(figures: dict, ms: dict, agreement: dict) -> None:
    for name in IMPLS:
        short, long = ms[f"{name}@{MAX_LEN}"], ms[f"{name}@{2 * MAX_LEN}"]
        print(f"{name}: {short:.0f} ms for {SENTENCES} sentences at max_len {MAX_LEN}, "
              f"{long:.0f} ms at {2 * MAX_LEN} (x{long / short:.2f}); beam {BEAM}: "
              f"{ms[f'{name} beam']:.0f} ms")
    for key, value in figures.items():
        print(f"{key:<28} {value:10.2f}")
    speedup = figures["keras_impl_sent_per_s"] / figures["kerasio_sent_per_s"]
    print(f"keras_impl / kerasio     {speedup:10.0f}x (target >= 100)")
    print(f"torch_impl / keras_impl  "
          f"{figures['torch_impl_sent_per_s'] / figures['keras_impl_sent_per_s']:10.2f}"
          " (target >= 1)")
    print("same tokens as keras_impl: " + ", ".join(
        f"{name} {share:.0%}" for name, share in agreement.items()) + " of sentences")


def arguments() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, quick="fewer repeats (under a minute)")
    add_thread_arguments(parser)
    cores = os.cpu_count() or 1
    parser.add_argument("--onnx-threads", type=int, default=cores,
                        help=f"ONNX Runtime intra-op threads (default: all cores, {cores})")
    return parser


def measure(argv: list[str]) -> dict:
    """The figures that ``decode.py ARGV --json`` ends with (sentences per second, scaling).

    For benchmarks/keras_backends.py, which calls it in a fresh process per Keras
    backend (``shared.app.elsewhere``).
    """
    args = arguments().parse_args(argv)
    start_frameworks(args)
    return run(quick=args.quick, onnx_threads=args.onnx_threads)[0]


def main(argv: list[str] | None = None) -> int:
    args = arguments().parse_args(argv)
    threads = start_frameworks(args)
    load_before = load_average()
    figures, ms, agreement = run(quick=args.quick, onnx_threads=args.onnx_threads)
    print(f"machine: {machine()}, load_1min before the run {load_before:.2f}")
    print("threads: torch {}, tensorflow intra {} inter {}".format(*threads)
          + f", onnxruntime intra {args.onnx_threads}")
    report(figures, ms, agreement)
    if args.json:
        print_json_line(figures)
    return 0

if __name__ == "__main__":
    sys.exit(main())
