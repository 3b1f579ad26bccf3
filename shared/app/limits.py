"""The command line's resource limits: work estimated before it starts, refused in one line.

A flag can ask for more memory than the machine has (``train --n 10000000000``,
``--hidden-size 100000``, ``answer --beam 1000000``, ``experiment --lengths
1,100000``).  Without a check the framework finds out minutes later, with a
``RuntimeError`` or a ``ResourceExhaustedError`` (or the system kills the
process).  Each command here estimates the bytes of the arrays its flags make it
allocate, before it allocates them, and ``shared.core.budget.check_memory``
refuses more than ``MEMORY_CAP`` in one line that names the flags to lower:

    check_pairs(n)                                   before generating --n pairs
    check_schedule(pairs, longest, epochs, ...)      every epoch's batches, made up front
    check_training(config, batch_size, S, T, ...)    weights, gradients, Adam, one step
    check_decoding(config, questions, beam, S, ...)  one step of a search

The estimates count what is sure to be allocated (float32 weights and the
tensors one step keeps for its backward pass; int64 token ids); the
frameworks' own overhead comes on top, which is why the cap is far below a
machine's memory.  What no estimate foresaw still ends in one line
(``shared.app.cli``).
"""

from __future__ import annotations

import math

from shared.core.budget import MEMORY_CAP, check_memory
from shared.core.config import Seq2SeqConfig
from shared.layout import canonical_shapes

# One generated question/answer pair as Python holds it: two short strings, a tuple,
# a list slot (measured with sys.getsizeof on the tasks' pairs, rounded up).
PAIR_BYTES = 400
FLOAT, INDEX = 4, 8  # float32 activations and weights; int64 token ids


def parameters(config: Seq2SeqConfig) -> int:
    """The number of weights of ``config``'s model (every canonical tensor)."""
    return sum(math.prod(shape) for shape in canonical_shapes(config).values())


def check_pairs(n: int, flag: str = "--n") -> None:
    """Refuses generating more pairs than fit (``PAIR_BYTES`` each)."""
    check_memory(n * PAIR_BYTES, f"generating {flag} {n:,} question/answer pairs",
                 f"lower {flag} (about {MEMORY_CAP // PAIR_BYTES:,} fit)")


def check_schedule(pairs: int, longest: int, epochs: int, flags: str = "--n or --epochs") -> None:
    """Refuses a training schedule whose batches (made for every epoch first) do not fit.

    Args:
        pairs: the training pairs.
        longest: the most tokens of a question or an answer, BOS/EOS included.
        epochs: how many epochs of batches are made.
    """
    needed = epochs * pairs * 3 * longest * INDEX  # src, tgt_in, tgt_out per pair
    epochs_text = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    check_memory(needed, f"{epochs_text} of batches over {pairs:,} pairs of up to {longest} "
                         "tokens", f"lower {flags}")


def training_bytes(config: Seq2SeqConfig, batch_size: int, src_len: int, tgt_len: int) -> int:
    """Weights, gradients and Adam's two moments, and what one step keeps for backward."""
    weights = 4 * FLOAT * parameters(config)
    gates = 4 if config.cell == "lstm" else 3
    H, L, E = config.hidden_size, config.num_layers, config.embedding_dim
    encoder = src_len * (L * config.num_directions * H * (gates + 2) + E)
    decoder = tgt_len * (L * config.decoder_hidden_size * (gates + 2) + E
                         + 3 * config.tgt_vocab_size)  # logits, softmax, their gradient
    if config.has_attention:
        decoder += tgt_len * (3 * src_len + 2 * config.decoder_hidden_size)
    return weights + 2 * FLOAT * batch_size * (encoder + decoder)  # forward and backward


def check_training(config: Seq2SeqConfig, batch_size: int, src_len: int, tgt_len: int,
                   flags: str = "--hidden-size, --embedding-dim, --num-layers or --batch-size"
                   ) -> None:
    """Refuses training a model whose weights and one step do not fit."""
    what = (f"training a model of {parameters(config):,} weights (hidden size "
            f"{config.hidden_size}, embedding {config.embedding_dim}, {config.num_layers} "
            f"layers) on batches of {batch_size} questions of up to {src_len} tokens")
    check_memory(training_bytes(config, batch_size, src_len, tgt_len), what, f"lower {flags}")


def check_decoding(config: Seq2SeqConfig, questions: int, beam: int, max_len: int,
                   src_len: int, names: tuple[str, str] = ("--beam", "--max-len")) -> None:
    """Refuses a search whose hypotheses do not fit, with everything one step holds for each.

    ``shared.decoding.search.check_search_memory`` counts the token history alone;
    beam search also holds, per hypothesis and step, its logits (float32), their
    float64 log-softmax and extensions, the history twice and a copy of the
    sequence it extends, its state and the selected copy of it, and with attention
    its copy of the memory (``shared.decoding.search.beam_search``).
    """
    V, T = config.tgt_vocab_size, max_len
    per_hypothesis = (FLOAT * V + 3 * 8 * V + 3 * INDEX * T + 112
                      + 3 * FLOAT * config.num_layers * config.decoder_hidden_size
                      * len(config.state_names)
                      + (2 * FLOAT * src_len * config.decoder_hidden_size
                         if config.has_attention else 0))
    beam_name, len_name = names
    plural = "s" if questions != 1 else ""
    check_memory(questions * beam * per_hypothesis,
                 f"beam search with {beam_name} {beam:,} and {len_name} {max_len} over "
                 f"{questions} question{plural} of a model with {V} target tokens",
                 f"lower {beam_name} or {len_name}, or decode fewer questions at once")
