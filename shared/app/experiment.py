"""The thought-vector experiment: is a big enough thought vector enough?

The claim under test: "given the thought vector is big enough, [the encoder]
will learn to carry what is important by itself" -- that a decoder which sees
the question only through the hand-off needs nothing more, if the hand-off is
wide enough.  The classic answer (Bahdanau et al. 2014, Luong et al. 2015) is
that a fixed-size state fails on long inputs and the decoder should look back
at every encoder output.  This experiment measures it:

1. Tasks whose answer needs the whole question: ``reverse`` ("abcde" ->
   "edcba") and ``sort`` ("dbca" -> "abcd"), questions of 4 to 40 letters.
2. Models: no attention at several hidden sizes (64, 128, 256, 512: the thought
   vector is (h, c), 2H numbers), and Luong and Bahdanau attention at the
   smallest size; one-layer, one-directional LSTMs otherwise alike.
3. The same budget for every model: the same number of Adam steps, on the same
   stream of fresh batches (every question is new, so nothing is memorised).
   Each batch holds questions of one length, drawn uniformly: no padding, so
   PyTorch runs its fused kernel.
4. Held-out questions at each measured length, answered greedily: exact-match
   accuracy (the whole answer right) and per-token accuracy (answer positions
   whose token is right; a missing or extra token counts as wrong).

Output in ``--out`` (default out/thought-vector): ``results.json`` (settings,
machine, times, and every model's figures by length), ``results.md`` (the same
as tables) and ``accuracy-vs-length.png`` (exact match against length, one line
per model, one panel per task).  ``--quick`` is a smaller run (one task, two
sizes, shorter questions, fewer steps) for a first look in about a minute.

The command line is ``shared.app.commands.experiment``.  This module imports no
framework: the backend is given to ``run_experiment``.
"""

from __future__ import annotations

import json
import os
import platform
import string
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.core.config import ATTENTIONS, Seq2SeqConfig
from shared.core.tokens import EOS
from shared.files.atomic import write_atomically, write_atomically_by
from shared.layout import count_parameters
from shared.text.data import build_tokenizers, encode_questions, make_batch

ALPHABET = string.ascii_lowercase
# What a run writes into --out.
OUTPUTS = ("results.json", "results.md", "accuracy-vs-length.png")
# The answer to each question, written once: both need every letter of the question.
RULES = {"reverse": lambda question: question[::-1],
         "sort": lambda question: "".join(sorted(question))}


@dataclass(frozen=True)
class Settings:
    """One run's sizes; ``--quick`` and the full run differ only here."""

    tasks: tuple[str, ...]
    hidden_sizes: tuple[int, ...]
    lengths: tuple[int, int]            # shortest and longest question
    steps: int
    eval_per_length: int
    batch_size: int = 64
    embedding_dim: int = 32
    lr: float = 3e-3
    cell: str = "lstm"

    def measured_lengths(self) -> list[int]:
        """About ten evenly spaced lengths from the shortest to the longest question."""
        low, high = self.lengths
        return sorted({round(x) for x in np.linspace(low, high, min(10, high - low + 1))})


FULL = Settings(tasks=("reverse", "sort"), hidden_sizes=(64, 128, 256, 512), lengths=(4, 40),
                steps=800, eval_per_length=100)
QUICK = Settings(tasks=("reverse",), hidden_sizes=(64, 256), lengths=(4, 24), steps=300,
                 eval_per_length=50)


def questions(rng: np.random.Generator, length: int, count: int) -> list[str]:
    """``count`` random questions of ``length`` lowercase letters."""
    return ["".join(ALPHABET[i] for i in rng.integers(0, len(ALPHABET), size=length))
            for _ in range(count)]


def experiment_batches(task: str, settings: Settings, src_tok, tgt_tok, seed: int) -> list:
    """``settings.steps`` batches of fresh questions, each batch of one length."""
    rng = np.random.default_rng(seed)
    low, high = settings.lengths
    batches = []
    for _ in range(settings.steps):
        length = int(rng.integers(low, high + 1))
        pairs = [(q, RULES[task](q)) for q in questions(rng, length, settings.batch_size)]
        batches.append(make_batch(pairs, src_tok, tgt_tok))
    return batches


def accuracy(backend, model, task: str, length: int, count: int, src_tok, tgt_tok,
             seed: int) -> tuple[float, float]:
    """(exact-match, per-token) accuracy of greedy answers to ``count`` held-out questions."""
    # Another seed stream than training's: held-out questions (40 letters: 26^40 of them).
    rng = np.random.default_rng([seed, length, 1])
    asked = questions(rng, length, count)
    tokens = backend.greedy_decode(model, encode_questions(asked, src_tok), length + 1)
    exact, right = 0, 0
    for question, row in zip(asked, tokens, strict=True):  # row (length + 1,)
        answer = tgt_tok.encode(RULES[task](question))      # the answer's ids, EOS not included
        exact += row.tolist() == [*answer, EOS]
        # Position by position over the answer: an early EOS leaves the rest wrong.
        right += int(np.sum(row[:length] == answer))
    return exact / count, right / (count * length)


def model_name(attention: str, hidden: int) -> str:
    return f"{'no attention' if attention == 'none' else attention} H={hidden}"


def models_of(settings: Settings) -> list[tuple[str, int]]:
    """(attention, hidden) of every model: no attention at each size, attention at the smallest."""
    smallest = min(settings.hidden_sizes)
    return ([("none", h) for h in settings.hidden_sizes]
            + [(kind, smallest) for kind in ATTENTIONS if kind != "none"])


def run_experiment(backend, settings: Settings, out: Path, seed: int = 0, say=print) -> dict:
    """Train and measure every model on every task; write the results; return them."""
    started = time.time()
    src_tok, tgt_tok = build_tokenizers([(ALPHABET, ALPHABET)])  # every letter, both sides
    results = []
    for task in settings.tasks:
        batches = experiment_batches(task, settings, src_tok, tgt_tok, seed)
        for attention, hidden in models_of(settings):
            config = Seq2SeqConfig(len(src_tok), len(tgt_tok), settings.embedding_dim, hidden,
                                   cell=settings.cell, attention=attention)
            model = backend.build_model(config, seed=seed)
            clock = time.time()
            history = backend.train(model, batches, epochs=1, lr=settings.lr, seed=seed,
                                    verbose=False)
            trained = time.time() - clock
            by_length = []
            for length in settings.measured_lengths():
                exact, token = accuracy(backend, model, task, length, settings.eval_per_length,
                                        src_tok, tgt_tok, seed)
                by_length.append({"length": length, "exact": exact, "token": token})
            result = {
                "task": task, "model": model_name(attention, hidden), "attention": attention,
                "hidden_size": hidden, "thought_vector": len(config.state_names) * hidden,
                "parameters": count_parameters(backend.export_weights(model)),
                "train_seconds": round(trained, 1),
                "final_loss": float(np.mean(history["loss"][-20:])),
                "exact": float(np.mean([r["exact"] for r in by_length])),
                "token": float(np.mean([r["token"] for r in by_length])),
                "by_length": by_length,
            }
            results.append(result)
            say(f"{task:8s} {result['model']:16s} exact {result['exact']:6.1%}  "
                f"token {result['token']:6.1%}  loss {result['final_loss']:.3f}  "
                f"({trained:.0f} s)")
    report = {
        "claim": "a big enough thought vector carries what is important by itself",
        "settings": {**settings.__dict__, "lengths": list(settings.lengths),
                     "measured_lengths": settings.measured_lengths(), "seed": seed,
                     "backend": backend.NAME},
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "seconds": round(time.time() - started, 1),
        "results": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "results.json", json.dumps(report, indent=2).encode())
    write_atomically(out / "results.md", markdown(report).encode())
    if plot(out / "accuracy-vs-length.png", report):
        say(f"wrote {out / 'accuracy-vs-length.png'}")
    say(f"wrote {out / 'results.json'} and {out / 'results.md'} ({report['seconds']:.0f} s in all)")
    return report


def markdown(report: dict) -> str:
    """Exact-match accuracy by length, one table per task, one row per model."""
    lengths = report["settings"]["measured_lengths"]
    lines = []
    for task in report["settings"]["tasks"]:
        lines += [f"### {task}: exact-match accuracy by question length", "",
                  "| model | parameters | " + " | ".join(map(str, lengths)) + " | mean | tokens |",
                  "|---|---:|" + "---:|" * (len(lengths) + 2)]
        for r in (r for r in report["results"] if r["task"] == task):
            cells = [f"{x['exact']:.0%}" for x in r["by_length"]]
            lines.append(f"| {r['model']} | {r['parameters']:,} | " + " | ".join(cells)
                         + f" | {r['exact']:.0%} | {r['token']:.0%} |")
        lines.append("")
    return "\n".join(lines)


def plot(path: Path, report: dict) -> bool:
    """Exact match against length, one line per model; False when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    tasks = report["settings"]["tasks"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for r in (r for r in report["results"] if r["task"] == task):
            style = "-" if r["attention"] == "none" else "--"
            ax.plot([x["length"] for x in r["by_length"]], [x["exact"] for x in r["by_length"]],
                    style, marker="o", markersize=3, label=f"{r['model']} ({r['parameters']:,})")
        ax.set(title=f"{task}: {report['settings']['steps']} steps each",
               xlabel="question length", ylabel="exact-match accuracy", ylim=(-0.03, 1.03))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomically_by(path, lambda file: fig.savefig(file, format="png", dpi=110))
    plt.close(fig)
    return True
