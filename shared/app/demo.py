"""The demo, the project's main job: one command tells the whole story.

1. Generate a built-in task and build both tokenizers and one config.
2. Build the Keras model, export its initial weights in the canonical layout
   and load them into the PyTorch model: one initialisation, two frameworks.
3. Train both on the same batches with the same Adam settings; the two loss
   curves lie on top of each other until float32 rounding, amplified by Adam
   over hundreds of steps, moves them apart; both learn the task.
4. Save the PyTorch-trained model as a neutral checkpoint, load it into a fresh
   Keras model, and print the parity table (``shared.ladder``): each framework
   against the NumPy reference, then each other, rung by rung: the hand-off, the
   logits, the decoder's final state, (the attention weights,) greedy and beam tokens.
5. Answer a few held-out questions with both, side by side.
6. Write report.json, loss.png and model.safetensors; with ``--attention``, also
   attention.png: the attention weights of one answer in Keras and in PyTorch,
   side by side (the default demo has no attention, to stay under two minutes).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from shared.app.backends import load_backend, model_from_checkpoint, threads_for_both
from shared.checkpoint import load_checkpoint, save_checkpoint
from shared.core.config import Seq2SeqConfig
from shared.core.runtime import seed_everything
from shared.core.tokens import PAD
from shared.files.atomic import write_atomically, write_atomically_by
from shared.ladder import engine_name, engine_outputs, parity_report, run_reference
from shared.text.data import batches, build_tokenizers, encode_questions, make_batch
from shared.text.tasks import load_task

# Sized so that --quick ends within a minute and
# the default within three on two cores, and both learn the task.
SETTINGS = {
    "quick": {"n": 4000, "epochs": 12, "hidden_size": 128, "embedding_dim": 32},
    "default": {"n": 6000, "epochs": 8, "hidden_size": 96, "embedding_dim": 32,
                "num_layers": 2, "bidirectional": True},
}
BATCH_SIZE = 64
LR = 1e-2
# Matched Adam: the two frameworks place epsilon differently (see docs/gate-order.md),
# so a tiny epsilon makes the difference negligible.
ADAM_EPSILON = 1e-8


def _say(text: str = "") -> None:
    print(text, flush=True)


def run_demo(
    out: Path, quick: bool = False, task: str | None = None, seed: int = 0, cell: str = "lstm",
    attention: str = "none",
) -> int:
    """Run the demo; return 0 when the swapped checkpoint agrees within tolerance, else 1."""
    settings = {**SETTINGS["quick" if quick else "default"], "cell": cell, "attention": attention}
    task = task or "dates"
    started = time.perf_counter()
    keras_impl, torch_impl = load_backend("keras"), load_backend("torch")
    with threads_for_both():
        return _demo(keras_impl, torch_impl, out, settings, task, seed, started)


def _demo(keras_impl, torch_impl, out: Path, settings: dict, task: str, seed: int,
          started: float) -> int:
    seed_everything(seed)

    pairs = load_task(task, settings["n"] + 200, seed)
    train_pairs, test_pairs = pairs[:-200], pairs[-200:]
    src_tok, tgt_tok = build_tokenizers(pairs)
    config = Seq2SeqConfig(
        src_vocab_size=len(src_tok), tgt_vocab_size=len(tgt_tok),
        embedding_dim=settings["embedding_dim"], hidden_size=settings["hidden_size"],
        num_layers=settings.get("num_layers", 1),
        bidirectional=settings.get("bidirectional", False), cell=settings["cell"],
        attention=settings["attention"],
    )
    _say(f"cell {config.cell}: the encoder hands the decoder "
         + ("(h, c), hidden and cell state" if config.cell == "lstm" else "h alone, a GRU's state")
         + (f", and its {config.attention} attention reads every encoder output"
            if config.has_attention else ""))
    _say(f"task {task!r}: {len(train_pairs)} training pairs, e.g. {train_pairs[0]}")
    _say(f"config: {config}")
    _show_batch(train_pairs[0], src_tok, tgt_tok)

    keras_model = keras_impl.build_model(config, seed=seed)
    torch_model = torch_impl.build_model(config, seed=seed)
    torch_impl.import_weights(torch_model, keras_impl.export_weights(keras_model))
    # The same batches for both frameworks, shuffled anew each epoch.
    schedule = [list(batches(train_pairs, src_tok, tgt_tok, BATCH_SIZE, seed=seed + epoch))
                for epoch in range(settings["epochs"])]

    histories, seconds = {}, {}
    runs = (("keras", keras_impl, keras_model), ("torch", torch_impl, torch_model))
    for name, backend, model in runs:
        _say(f"\ntraining {name} ({settings['epochs']} epochs x {len(schedule[0])} steps)")
        tic = time.perf_counter()
        histories[name] = backend.train(
            model, schedule.__getitem__, settings["epochs"], optimizer="adam", lr=LR,
            adam_epsilon=ADAM_EPSILON, seed=seed,
        )
        seconds[name] = time.perf_counter() - tic

    out.mkdir(parents=True, exist_ok=True)
    path = out / "model.safetensors"
    save_checkpoint(path, torch_impl.export_weights(torch_model), config, src_tok, tgt_tok)
    checkpoint = load_checkpoint(path)
    swapped = model_from_checkpoint(keras_impl, checkpoint)
    _say(f"\nsaved the torch-trained model to {path}; loaded it into a fresh Keras model")

    src = encode_questions([q for q, _ in test_pairs], src_tok)                # (B, S)
    # Both frameworks climb the ladder against the NumPy reference, then each other.
    names = {"keras": engine_name(keras_impl), "torch": engine_name(torch_impl)}
    reference = run_reference(checkpoint.weights, config, src, max_len=24)
    report = parity_report({names["keras"]: engine_outputs(keras_impl, swapped, reference.inputs),
                            names["torch"]: engine_outputs(torch_impl, torch_model,
                                                           reference.inputs)}, reference)
    pair = f"{names['keras']} vs {names['torch']}"
    _say("\nparity: the torch-trained checkpoint in Keras and in PyTorch, each against the NumPy "
         "reference (float64), then each other")
    _say(report.table())

    answers = {name: [tgt_tok.decode(r) for r in report.outputs[engine]["greedy"]["tokens"]]
               for name, engine in names.items()}
    expected = [answer for _, answer in test_pairs]
    correct = float(np.mean([a == e for a, e in zip(answers["torch"], expected, strict=True)]))
    _say(f"\nheld-out answers ({correct:.0%} of {len(test_pairs)} exactly right):")
    _say(f"{'question':<20} {'expected':<12} {'keras':<12} {'torch':<12}")
    rows = zip(test_pairs, answers["keras"], answers["torch"], strict=True)
    for (question, answer), k, t in list(rows)[:8]:
        _say(f"{question:<20} {answer:<12} {k:<12} {t:<12}")

    report_json = {
        "task": task,
        "cell": config.cell,
        "config": config.to_dict(),
        "max_abs_diff": {"handoff": report.worst(pair, "hand-off"),
                         "logits": report.worst(pair, "logits")},
        "greedy_agreement": 1 - report.worst(pair, "greedy") / len(src),
        "parity_ok": report.ok,
        "exact_match": correct,
        "train_seconds": seconds,
        "loss": {name: h["loss"] for name, h in histories.items()},
        "final_loss": {name: h["loss"][-1] for name, h in histories.items()},
        "total_seconds": time.perf_counter() - started,
    }
    written = [out / "report.json"]
    if config.has_attention:
        question = test_pairs[0][0]
        tgt_in = reference.inputs.tgt_in[:1]                                # (1, T + 1)
        steps = int((tgt_in[0] != PAD).sum())                               # BOS + answer
        # The first answer's weights (T', S), as the ladder's attention rung compared them.
        weights = {name: report.outputs[engine]["attention"]["weights"][0, :steps]
                   for name, engine in names.items()}
        worst = float(np.abs(weights["keras"] - weights["torch"]).max())
        _say(f"\nattention weights of the answer to {question!r}, Keras vs PyTorch: "
             f"max |diff| {worst:.1e}")
        answer = tgt_tok.decode(reference.outputs["greedy"]["tokens"][0])  # what tgt_in reads
        report_json["attention"] = {"question": question, "answer": answer,
                                    "max_abs_diff": worst}
        cols = [src_tok.tokens[i] for i in src[0] if i != PAD]
        rows = [tgt_tok.tokens[i] for i in tgt_in[0, 1:steps]] + ["EOS"]
        if _plot_attention(out / "attention.png", weights, rows, cols, config.attention):
            written.append(out / "attention.png")
    write_atomically(out / "report.json", json.dumps(report_json, indent=2).encode())
    if _plot(out / "loss.png", histories, task, config.cell):
        written.insert(1, out / "loss.png")
    _say(f"\nwrote {', '.join(str(path) for path in written)}")
    _say(f"done in {report_json['total_seconds']:.0f} s")
    return 0 if report.ok else 1


def _plot_attention(path: Path, weights: dict, rows: list, cols: list, kind: str) -> bool:
    """The two heat maps side by side: rows the answer's steps, columns the question's tokens.

    Step t reads the token before it (BOS first) and writes ``rows[t]``; the last
    real step writes EOS.
    """
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(2 + 0.9 * len(cols), 1.5 + 0.3 * len(rows)),
                             sharey=True)
    for ax, name in zip(axes, ("keras", "torch"), strict=True):
        image = ax.imshow(weights[name][: len(rows), : len(cols)], vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(cols)), cols)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel("question (encoder position)")
        ax.set_title(name)
    axes[0].set_ylabel("answer (decoder step)")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    fig.suptitle(f"{kind} attention of one answer, Keras and PyTorch")
    write_atomically_by(path, lambda file: fig.savefig(file, format="png", dpi=120))
    plt.close(fig)
    return True


def _show_batch(pair: tuple[str, str], src_tok, tgt_tok) -> None:
    """One pair as the models see it: ids, and the target shifted by one step."""
    batch = make_batch([pair], src_tok, tgt_tok)
    _say("one pair as token ids (PAD=0, BOS=1, EOS=2):")
    _say(f"  src     {batch.src[0].tolist()}   the question, read by the encoder")
    _say(f"  tgt_in  {batch.tgt_in[0].tolist()}   BOS + answer, read by the decoder")
    _say(f"  tgt_out {batch.tgt_out[0].tolist()}   answer + EOS, what it learns to predict")


def _plot(path: Path, histories: dict, task: str, cell: str) -> bool:
    """Both loss curves on one chart; False when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        _say("matplotlib is not installed: no loss.png (pip install 'seq2seq-rosetta[plot]')")
        return False
    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, style in (("keras", "-"), ("torch", "--")):
        ax.plot(histories[name]["loss"], style, label=f"{name}", linewidth=1.2)
    ax.set_xlabel("training step")
    ax.set_ylabel("masked cross-entropy")
    ax.set_yscale("log")
    ax.set_title(f"One initialisation, same batches: Keras and PyTorch ({task}, {cell})")
    ax.legend()
    fig.tight_layout()
    write_atomically_by(path, lambda file: fig.savefig(file, format="png", dpi=120))
    plt.close(fig)
    return True
