"""One model scored on question/answer pairs, on any engine: the held-out metrics.

    metrics = evaluate(backend, model, pairs, src_tok, tgt_tok)
    metrics.loss, metrics.exact_match, metrics.token_accuracy, metrics.bleu, metrics.chrf

``backend`` is an engine's module (``keras_impl``, ``torch_impl``, ``onnx_impl``): only
its public ``forward`` (teacher-forced logits) and ``greedy_decode`` are called, so
every engine is scored by the same code and the same definitions
(``shared.training.metrics``).  The pairs go through in their order, in batches
of ``batch_size``; each greedy answer ends at EOS or after ``answer_length(...)``
tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

from shared.core.checks import check_count
from shared.text.data import make_batch
from shared.text.tokenizer import Tokenizer
from shared.training.metrics import (
    corpus_bleu,
    corpus_chrf,
    exact_match,
    reference_text,
    teacher_forced_counts,
)

# The figures, in the order they are printed and named in history.json (loss as val_loss).
FIGURES = ("loss", "exact_match", "token_accuracy", "bleu", "chrf")


@dataclass(frozen=True)
class Metrics:
    """A model's figures on a set of pairs (``shared.training.metrics`` defines each).

    Attributes:
        loss: mean cross-entropy per answer token, teacher-forced (nats).
        exact_match: fraction of greedy answers equal to the reference, in [0, 1].
        token_accuracy: fraction of answer tokens predicted right, teacher-forced, in [0, 1].
        bleu: sacrebleu's corpus BLEU, 0-100.
        chrf: sacrebleu's corpus chrF, 0-100.
        pairs: how many pairs were scored.
        bleu_signature, chrf_signature: sacrebleu's signatures (every setting used).
    """

    loss: float
    exact_match: float
    token_accuracy: float
    bleu: float
    chrf: float
    pairs: int
    bleu_signature: str
    chrf_signature: str

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """One line of the five figures, as the commands print them."""
        return (f"held-out loss {self.loss:.4f}, exact match {self.exact_match:.3f}, token "
                f"accuracy {self.token_accuracy:.3f}, BLEU {self.bleu:.1f}, chrF {self.chrf:.1f}")


def answer_length(pairs: Sequence[tuple[str, str]], tgt_tokenizer: Tokenizer) -> int:
    """The most tokens greedy decoding writes: twice the longest reference, plus EOS.

    An answer still going past that is wrong anyway, and a model that never writes EOS
    (early in training) would otherwise keep the decoder running to a fixed cap.
    """
    return 2 * max(len(tgt_tokenizer.encode(answer)) for _, answer in pairs) + 1


def evaluate(
    backend: ModuleType,
    model: Any,
    pairs: Sequence[tuple[str, str]],
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    batch_size: int = 64,
    max_len: int | None = None,
) -> Metrics:
    """Scores ``model`` on ``pairs`` with ``backend``'s ``forward`` and ``greedy_decode``.

    Args:
        backend: the engine module the model belongs to.
        model: a model of that engine (dropout off: the engines' inference API sees to it).
        pairs: (question, answer) pairs, at least one.
        src_tokenizer, tgt_tokenizer: the model's tokenizers.
        batch_size: pairs per forward pass and per greedy batch.
        max_len: the most tokens per greedy answer; None: ``answer_length(pairs, ...)``.

    Returns:
        ``Metrics``.
    """
    batch_size = check_count(batch_size, "batch_size")
    if not pairs:
        raise ValueError("pairs is empty; evaluation needs at least one (question, answer) pair")
    max_len = answer_length(pairs, tgt_tokenizer) if max_len is None else max_len
    nll, right, tokens, hypotheses = 0.0, 0, 0, []
    for start in range(0, len(pairs), batch_size):
        batch = make_batch(pairs[start : start + batch_size], src_tokenizer, tgt_tokenizer)
        logits = backend.forward(model, batch.src, batch.tgt_in)                 # (B, T, V)
        counts = teacher_forced_counts(logits, batch.tgt_out)
        nll, right, tokens = nll + counts[0], right + counts[1], tokens + counts[2]
        answers = backend.greedy_decode(model, batch.src, max_len)              # (B, max_len)
        hypotheses += [tgt_tokenizer.decode(row) for row in answers]
    references = [reference_text(answer, tgt_tokenizer.level) for _, answer in pairs]
    bleu, bleu_signature = corpus_bleu(hypotheses, references, tgt_tokenizer.level)
    chrf, chrf_signature = corpus_chrf(hypotheses, references)
    return Metrics(nll / tokens, exact_match(hypotheses, references), right / tokens, bleu, chrf,
                   len(pairs), bleu_signature, chrf_signature)
