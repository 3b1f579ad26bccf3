"""The held-out figures as defined in shared/training/metrics.py, and the rules around them.

Each figure is checked against an independent computation: the loss against
PyTorch's ``cross_entropy(ignore_index=PAD)``, BLEU and chrF against sacrebleu's own
one-call functions with the settings the docs name, exact match and token
accuracy on hand-made cases; then the held-out split, early stopping, what a
resume compares and the record it continues, framework-free.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import sacrebleu

from shared.checkpoint import Checkpoint, TrainingState, optimizer_settings, save_checkpoint
from shared.core.config import Seq2SeqConfig
from shared.core.tokens import EOS, PAD
from shared.layout import random_weights
from shared.text.data import build_tokenizers
from shared.text.tasks import load_task
from shared.training.epochs import EarlyStopping
from shared.training.heldout import fresh_task_pairs, held_out_count, split_pairs
from shared.training.metrics import (
    corpus_bleu,
    corpus_chrf,
    exact_match,
    reference_text,
    teacher_forced_counts,
)
from shared.training.record import earlier_record
from shared.training.resume import resume_differences
from tests.checkpoint_files import adam_state


def test_the_loss_is_torchs_masked_cross_entropy_over_every_token(rng):
    torch = pytest.importorskip("torch")
    logits = rng.standard_normal((3, 4, 7)).astype(np.float32) * 3                 # (B, T, V)
    tgt_out = np.array([[5, 6, EOS, PAD], [4, EOS, PAD, PAD], [6, 5, 4, EOS]])      # (B, T)
    nll, right, tokens = teacher_forced_counts(logits, tgt_out)
    expected = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits).reshape(-1, 7), torch.from_numpy(tgt_out).reshape(-1),
        ignore_index=PAD)
    assert tokens == 9
    assert nll / tokens == pytest.approx(float(expected), rel=1e-6)
    argmax = logits.argmax(-1)
    assert right == int(((argmax == tgt_out) & (tgt_out != PAD)).sum())


def test_token_accuracy_counts_the_right_predictions_at_real_positions():
    logits = np.zeros((1, 3, 6), np.float32)
    logits[0, 0, 4] = logits[0, 1, 3] = logits[0, 2, 5] = 1.0   # predicts 4, 3, then 5 at PAD
    _, right, tokens = teacher_forced_counts(logits, np.array([[4, EOS, PAD]]))
    assert (right, tokens) == (1, 2)


def test_exact_match_and_the_word_level_reference():
    assert exact_match(["2026-11-26", "1999-01-02"], ["2026-11-26", "1999-01-03"]) == 0.5
    assert reference_text("  the   cat sat ", "word") == "the cat sat"
    assert reference_text(" a  b", "char") == " a  b"
    with pytest.raises(ValueError, match="one hypothesis per reference"):
        exact_match(["a"], ["a", "b"])


@pytest.mark.parametrize(("level", "tokenize"), [("char", "char"), ("word", "13a")])
def test_bleu_and_chrf_are_sacrebleus_with_the_documented_settings(level, tokenize):
    hypotheses = ["the cat sat on the mat", "a dog ran", "2026-11-26"]
    references = ["the cat sat on a mat", "the dog ran off", "2026-11-25"]
    bleu, signature = corpus_bleu(hypotheses, references, level)
    assert bleu == pytest.approx(
        sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score)
    assert f"tok:{tokenize}" in signature and "nrefs:1" in signature
    chrf, chrf_signature = corpus_chrf(hypotheses, references)
    assert chrf == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score)
    assert "nc:6|nw:0|space:no" in chrf_signature
    assert corpus_bleu(references, references, level)[0] == pytest.approx(100.0)
    assert 0 < bleu < 100


def test_a_split_is_seeded_disjoint_and_in_file_order():
    pairs = [(f"q{i}", f"a{i}") for i in range(50)]
    train, held = split_pairs(pairs, held_out_count(0.2, len(pairs)), seed=3)
    assert len(held) == 10 and len(train) == 40 and set(train).isdisjoint(held)
    assert train == sorted(train, key=pairs.index) and held == sorted(held, key=pairs.index)
    assert split_pairs(pairs, 10, seed=3) == (train, held)
    assert split_pairs(pairs, 10, seed=4)[1] != held
    with pytest.raises(ValueError, match=r"val_split must be a number in \(0, 1\); got 1.5"):
        held_out_count(1.5, 50)


def test_a_tasks_held_out_pairs_are_new_questions():
    train = load_task("addition", 4000, seed=0)
    held = fresh_task_pairs("addition", 400, 0, train)
    assert len(held) == 400 and not {q for q, _ in held} & {q for q, _ in train}
    assert fresh_task_pairs("addition", 400, 0, train) == held
    assert all(sum(map(int, q.split("+"))) == int(a) for q, a in held)  # the task's pairs still
    every_sum = [(f"{a}+{b}", str(a + b)) for a in range(100) for b in range(100)]
    with pytest.raises(ValueError, match="too few questions unseen in training"):
        fresh_task_pairs("addition", 100, 0, every_sum)


def test_early_stopping_waits_patience_epochs_after_the_best():
    stopping = EarlyStopping(patience=2)
    seen = [stopping.update(loss) for loss in (3.0, 2.0, 2.5, 1.5, 1.6, 1.5)]
    assert seen == [(True, False), (True, False), (False, False), (True, False), (False, False),
                    (False, True)]
    assert (stopping.best, stopping.best_epoch) == (1.5, 3)
    never = EarlyStopping(None)
    assert not any(never.update(1.0)[1] for _ in range(10))


def test_a_resume_names_each_difference():
    pairs = load_task("reverse", 40, seed=0)
    src, tgt = build_tokenizers(pairs)
    config = Seq2SeqConfig(len(src), len(tgt), 4, 5)
    training = adam_state(config)  # lr 0.01, clip_norm 1.5, seed 7, batch size 16
    checkpoint = Checkpoint(random_weights(config), config, src, tgt, training)
    settings = optimizer_settings("adam", 0.01, clip_norm=1.5)
    assert resume_differences(checkpoint, config, src, tgt, settings, 7, 16) == []
    other = Seq2SeqConfig(len(src), len(tgt), 4, 6)
    words = build_tokenizers(pairs, level="word")[0]
    found = resume_differences(checkpoint, other, words, tgt,
                               optimizer_settings("sgd", 0.01, clip_norm=1.5), 8, 16)
    assert found[:2] == [("src_tokenizer", f"{len(src)} char tokens", f"{len(words)} word tokens"),
                         ("config.hidden_size", 5, 6)]
    assert ("optimizer.name", "adam", "sgd") in found and ("seed", 7, 8) in found


def _history(epochs: int, val_loss: list[float]) -> dict:
    """A history.json of ``epochs`` epochs of 2 steps, 8 held-out pairs."""
    figures = {name: [0.5] * epochs for name in ("exact_match", "token_accuracy", "bleu", "chrf")}
    return {"backend": "torch", "held_out_pairs": 8, "epoch": list(range(1, epochs + 1)),
            "loss": [1.0] * epochs, "steps": [2] * epochs, "val_loss": val_loss, **figures,
            "step_loss": [float(i) for i in range(2 * epochs)], "resumes": []}


# A run of 5 epochs whose best held-out loss is epoch 2's, resumed from epoch 4.
BROKEN = {
    "no-history": (None, "no history.json beside it"),
    "not-json": ("{", "is not readable JSON"),
    "short": (_history(3, [3.0, 1.0, 2.0]), "does not hold epochs 1 to 4"),
    "other-held-out": ({**_history(5, [3.0, 1.0, 2.0, 2.5, 0.5]), "held_out_pairs": 9},
                       "held out 9 pairs; these flags hold out 8"),
    "list-length": ({**_history(5, [3.0, 1.0, 2.0, 2.5, 0.5]), "bleu": [1.0]},
                    "has no list 'bleu' of 5 numbers"),
    "steps": ({**_history(5, [3.0, 1.0, 2.0, 2.5, 0.5]), "steps": [2, 2, 2, 2, 2.5]},
              "has no list 'steps' of 5 numbers"),
    "no-best": (_history(5, [3.0, 1.0, 2.0, 2.5, 0.5]),
                "the best epoch's (2) checkpoint is not"),
}


@pytest.mark.parametrize("case", [*BROKEN, "whole"])
def test_a_resume_continues_the_record_beside_its_checkpoint(tmp_path, case):
    """The history up to the checkpoint's epoch and the best epoch's file, or why not."""
    pairs = load_task("reverse", 40, seed=0)
    src, tgt = build_tokenizers(pairs)
    config = Seq2SeqConfig(len(src), len(tgt), 4, 5)
    state = adam_state(config, epochs_done=4)

    def save(name, epochs_done):
        path = tmp_path / name
        save_checkpoint(path, random_weights(config, seed=epochs_done), config, src, tgt,
                        training=TrainingState(epochs_done, 7, 16, state.optimizer))
        return path

    resume = save("model-last.safetensors", 4)
    history, why = BROKEN.get(case, (_history(5, [3.0, 1.0, 2.0, 2.5, 0.5]), ""))
    if history is not None:
        (tmp_path / "history.json").write_text(
            history if isinstance(history, str) else json.dumps(history))
    if case == "whole":
        best = save("model.safetensors", 2)
    earlier, found = earlier_record(resume, Checkpoint(random_weights(config), config, src, tgt,
                                                       state), held_out_pairs=8)
    if case != "whole":
        assert earlier is None and why in found, found
        return
    assert found == "" and earlier.best == best.read_bytes()
    assert earlier.history["epoch"] == [1, 2, 3, 4] and earlier.history["best_epoch"] == 2
    assert earlier.history["val_loss"] == [3.0, 1.0, 2.0, 2.5]
    assert earlier.history["step_loss"] == [float(i) for i in range(8)]
