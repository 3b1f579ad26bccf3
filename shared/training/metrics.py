"""The held-out metrics, defined once: loss, token accuracy, exact match, BLEU and chrF.

    loss            mean cross-entropy per answer token (the answer's tokens and EOS),
                    teacher-forced, in nats: the training loss's definition, taken
                    over the whole set, every token weighing the same
    token_accuracy  the fraction of those tokens whose most likely prediction,
                    teacher-forced (the decoder reads the true answer so far), is right
    exact_match     the fraction of questions whose greedy answer is the reference
                    exactly, as text (a word-level reference with its spaces
                    collapsed to one, as the tokenizer writes words)
    bleu            corpus BLEU of the greedy answers against the references, by
                    sacrebleu, 0-100: tokenize="char" for a character-level model (every
                    character but whitespace is a token), "13a" (its default, WMT's) for
                    a word-level one; otherwise its defaults (4-grams, exponential
                    smoothing, one reference, mixed case)
    chrf            corpus chrF by sacrebleu, 0-100, its defaults for either level:
                    character 6-grams, β = 2, whitespace ignored, no word n-grams

The two teacher-forced figures read logits; the other three read only the greedy
tokens, so two engines that agree on the tokens agree on them exactly.  sacrebleu is
the field's reference implementation (Post, 2018): each score comes with its
signature, which names every setting, so that a figure can be compared with
another.  It is imported when a score is asked for: ``pip install
'seq2seq-rosetta[metrics]'``.

Shapes: B batch, T target length, V target vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shared.core.tokens import PAD

# sacrebleu's BLEU tokenizer for each of our tokenizer levels.
BLEU_TOKENIZE = {"char": "char", "word": "13a"}


def teacher_forced_counts(logits: np.ndarray, tgt_out: np.ndarray) -> tuple[float, int, int]:
    """(summed cross-entropy, tokens predicted right, tokens) over the non-PAD targets.

    Args:
        logits: (B, T, V) decoder scores, teacher-forced.
        tgt_out: int (B, T), answer + EOS, post-padded with PAD.

    The cross-entropy is taken in float64 from the float32 logits (log-softmax, the
    largest logit subtracted first); a tie in the most likely token goes to the
    lowest id, as in greedy decoding.
    """
    logits = np.asarray(logits, dtype=np.float64)                                   # (B, T, V)
    shifted = logits - logits.max(axis=-1, keepdims=True)                           # (B, T, V)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))       # (B, T, V)
    picked = np.take_along_axis(log_probs, tgt_out[..., None], axis=-1)[..., 0]     # (B, T)
    real = tgt_out != PAD                                                           # (B, T)
    right = (logits.argmax(axis=-1) == tgt_out) & real                              # (B, T)
    return float(-picked[real].sum()), int(right.sum()), int(real.sum())


def reference_text(answer: str, level: str) -> str:
    """The answer as a model of this tokenizer level can write it: words joined by one space."""
    return " ".join(answer.split()) if level == "word" else answer


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """The fraction of hypotheses equal to their reference."""
    _check_lengths(hypotheses, references)
    return sum(h == r for h, r in zip(hypotheses, references, strict=True)) / len(references)


def _sacrebleu():
    try:
        from sacrebleu.metrics import BLEU, CHRF
    except ImportError as error:
        raise ImportError(
            f"BLEU and chrF need sacrebleu ({error}); pip install 'seq2seq-rosetta[metrics]'"
        ) from error
    return BLEU, CHRF


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], level: str
                ) -> tuple[float, str]:
    """(BLEU 0-100, sacrebleu's signature) with the tokenizer of ``BLEU_TOKENIZE[level]``."""
    _check_lengths(hypotheses, references)
    BLEU, _ = _sacrebleu()
    bleu = BLEU(tokenize=BLEU_TOKENIZE[level])
    score = bleu.corpus_score(list(hypotheses), [list(references)])
    return float(score.score), str(bleu.get_signature())


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, str]:
    """(chrF 0-100, sacrebleu's signature) with sacrebleu's defaults."""
    _check_lengths(hypotheses, references)
    _, CHRF = _sacrebleu()
    chrf = CHRF()
    score = chrf.corpus_score(list(hypotheses), [list(references)])
    return float(score.score), str(chrf.get_signature())


def _check_lengths(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if not references or len(hypotheses) != len(references):
        raise ValueError(f"need one hypothesis per reference, at least one; got "
                         f"{len(hypotheses)} hypotheses and {len(references)} references")
