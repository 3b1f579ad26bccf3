"""``seq2seq-rosetta train``: train one backend on a task or a TSV file, scored on held-out pairs.

    seq2seq-rosetta train --backend torch --task dates --epochs 5 --out runs/dates
    seq2seq-rosetta train --backend keras --data pairs.tsv --epochs 20 --patience 3 \\
        --clip-norm 1 --out runs/mine
    seq2seq-rosetta train --backend torch --data pairs.tsv --epochs 5 --clip-norm 1 \\
        --resume runs/mine/model-last.safetensors --out runs/mine-torch
    seq2seq-rosetta train --backend torch --task dates --epochs 5 --data-parallel 2 --out runs/dp

Writes into ``--out`` after every epoch (``shared.training.record``): model.safetensors
(the epoch of the lowest held-out loss; the last without a held-out set),
model-last.safetensors, history.json; loss.png at the end.  Every checkpoint holds the
optimizer's state, so ``--resume`` continues the run on either backend, and with it the
run's record (history, best epoch, patience) from the history.json beside the checkpoint.
docs/training.md walks through a run.  With ``--data-parallel N`` (``shared.app.replicas``)
N replicas train each epoch and this process, the one writer, scores and saves between
epochs: every flag above composes with it (docs/data-parallel.md).

Everything the flags can get wrong is refused in one line before the first step:
a --val-split that holds out fewer pairs than one batch, --patience without a held-out
set, a --resume checkpoint whose model, vocabularies or optimizer differ from the flags.

Every file is written whole or not at all (``shared.files.atomic``), and a used
``--out`` is named with what it will replace before the work starts.  What ``--n``,
``--epochs``, the model's sizes and ``--batch-size`` ask for is estimated first and
refused over the memory cap (``shared.app.limits``).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import NamedTuple

from shared.app import flags, limits, replicas
from shared.app.backends import TRAINERS, load_backend
from shared.app.flags import UsageError
from shared.checkpoint import Checkpoint, CheckpointError, load_checkpoint, optimizer_settings
from shared.checkpoint.training_state import OPTIMIZERS
from shared.core.config import ATTENTIONS, CELLS, Seq2SeqConfig
from shared.files.atomic import write_atomically
from shared.text.data import MAX_LENGTH, batches, build_tokenizers, drop_long_pairs, read_pairs
from shared.text.tasks import TASKS, load_task
from shared.text.tokenizer import Tokenizer
from shared.training.heldout import (
    DEFAULT_FRACTION,
    fresh_task_pairs,
    held_out_count,
    split_pairs,
)
from shared.training.record import BEST, HISTORY, LAST, RunRecord, earlier_record
from shared.training.resume import resume_differences

# The flags that make the pairs, and so the tokenizers: what a resumed run gives again.
DATA_FLAGS = "--data or --task, --n, --level, --max-length, --val-split, --seed"
# Each difference resume_differences can find, and the flag that sets it.
RESUME_FLAGS = {
    "config.embedding_dim": "--embedding-dim", "config.hidden_size": "--hidden-size",
    "config.num_layers": "--num-layers", "config.bidirectional": "--bidirectional",
    "config.dropout": "--dropout", "config.cell": "--cell", "config.attention": "--attention",
    "optimizer.name": "--optimizer", "optimizer.lr": "--lr", "optimizer.clip_norm": "--clip-norm",
    "seed": "--seed", "batch_size": "--batch-size",
}


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that choose the pairs, shared with ``evaluate`` (which scores a run's held-out)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", choices=sorted(TASKS), help="a built-in generated task")
    source.add_argument("--data", help="a question<TAB>answer file (Tatoeba format)")
    parser.add_argument("--n", type=flags.COUNT, default=4000, help="pairs to generate for --task")
    parser.add_argument("--seed", type=flags.SEED, default=0,
                        help="seeds the pairs of --task, the held-out draw, the shuffles and "
                             "the initial weights")
    parser.add_argument("--max-length", type=flags.COUNT, default=MAX_LENGTH,
                        help="drop pairs whose question or answer has more tokens than this")
    parser.add_argument("--val-split", type=flags.fraction, default=None, metavar="F",
                        help=f"hold out this share of the pairs (default {DEFAULT_FRACTION}); for "
                             "--task, as many new pairs, none of whose questions are trained on")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` command to ``subparsers`` (``shared.app.cli``'s)."""
    train = subparsers.add_parser(
        "train", help="train one backend, save a neutral checkpoint",
        description="Train on a built-in task or a question<TAB>answer file, scored after every "
                    "epoch on held-out pairs (loss, exact match, token accuracy, BLEU, chrF); "
                    "resume a run on either backend. docs/training.md walks through a run.")
    train.add_argument("--backend", choices=TRAINERS, required=True)
    add_data_flags(train)
    train.add_argument("--level", choices=("char", "word"), default="char")
    train.add_argument("--no-val", action="store_true",
                       help="hold nothing out: train on every pair, no held-out figures")
    model = train.add_argument_group("the model")
    model.add_argument("--embedding-dim", type=flags.COUNT, default=32)
    model.add_argument("--hidden-size", type=flags.COUNT, default=128)
    model.add_argument("--num-layers", type=flags.COUNT, default=1)
    model.add_argument("--bidirectional", action="store_true")
    model.add_argument("--dropout", type=float, default=0.0)
    model.add_argument("--cell", choices=CELLS, default="lstm",
                       help="the recurrent cell: lstm hands off (h, c), gru hands off h")
    model.add_argument("--attention", choices=ATTENTIONS, default="none",
                       help="the decoder also reads every encoder output: luong (h_t^T W_a h_s) "
                            "or bahdanau (v_a^T tanh(W_1 h_t + W_2 h_s)); see docs/attention.md")
    training = train.add_argument_group("training")
    training.add_argument("--epochs", type=flags.COUNT, required=True,
                          help="epochs to run (with --resume: more epochs)")
    training.add_argument("--batch-size", type=flags.COUNT, default=64, help="pairs per step")
    training.add_argument("--optimizer", choices=OPTIMIZERS, default="adam",
                          help="adam (PyTorch's update rule in both frameworks) or sgd")
    training.add_argument("--lr", type=flags.positive_number, default=1e-2,
                          help="the learning rate (default 0.01)")
    training.add_argument("--clip-norm", type=flags.positive_number, default=None, metavar="X",
                          help="scale the gradients to global norm X when theirs is larger")
    training.add_argument("--data-parallel", type=flags.COUNT, default=1, metavar="N",
                          help="N replicas, each training on its slice of every batch: torch's "
                               "DDP processes, Keras's devices on JAX or TensorFlow "
                               "(docs/data-parallel.md)")
    training.add_argument("--patience", type=flags.COUNT, default=None, metavar="K",
                          help="stop when the held-out loss has not improved for K epochs")
    run_flags = train.add_argument_group("checkpoints")
    run_flags.add_argument("--resume", metavar="CHECKPOINT",
                           help="continue this run (its model, optimizer state and epochs), "
                                "on either backend; give the run's other flags again")
    run_flags.add_argument("--fresh-optimizer", action="store_true",
                           help="with --resume: start the optimizer afresh (a checkpoint "
                                "without optimizer state needs it)")
    run_flags.add_argument("--out", required=True,
                           help=f"directory for {BEST}, {LAST}, history.json, loss.png")
    train.set_defaults(func=run)
    return train


OUTPUTS = (BEST, LAST, HISTORY, "loss.png")


class Data(NamedTuple):
    """The pairs a run trains and is scored on, and the tokenizers of the training pairs."""

    train_pairs: list[tuple[str, str]]
    held_out: list[tuple[str, str]] | None
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer


def read_data(args, level: str, using: str = "training on", say=print) -> list[tuple[str, str]]:
    """The flags' pairs, without those over --max-length (said in one line, ``using`` the rest)."""
    if args.data is not None:
        pairs = read_pairs(args.data)
    else:
        limits.check_pairs(args.n)
        pairs = load_task(args.task, args.n, args.seed)
    counting = build_tokenizers(pairs, level=level)  # a pair's length needs no vocabulary
    kept, dropped = drop_long_pairs(pairs, *counting, args.max_length, "--max-length")
    if dropped:
        say(f"dropped {dropped} of {len(pairs)} pairs with a question or answer longer than "
            f"--max-length {args.max_length} tokens; {using} {len(kept)}")
    return kept


def held_out_pairs(args, pairs: list, count: int):
    """(training pairs, held-out pairs): a file's split, or a task's fresh pairs."""
    if args.task is not None:
        return pairs, fresh_task_pairs(args.task, count, args.seed, pairs)
    return split_pairs(pairs, count, args.seed)


def _data(args) -> Data:
    pairs = read_data(args, args.level)
    held_out = None
    if not args.no_val:
        fraction = DEFAULT_FRACTION if args.val_split is None else args.val_split
        count = held_out_count(fraction, len(pairs))
        short = count < args.batch_size or (args.data is not None and count >= len(pairs))
        if short and args.val_split is not None:
            raise UsageError(
                f"--val-split {fraction:g} holds out {count} of {len(pairs)} pairs, fewer than one "
                f"batch (--batch-size {args.batch_size}) or leaving none to train on; give a "
                "--val-split that holds out at least one batch and leaves pairs, or --no-val")
        if short:
            if args.patience is not None:
                raise UsageError(
                    f"--patience needs a held-out set (it watches the held-out loss), and the "
                    f"default {fraction:g} of {len(pairs)} pairs is {count}, fewer than one batch "
                    f"(--batch-size {args.batch_size}); give --val-split")
            print(f"no held-out set: {fraction:g} of {len(pairs)} pairs is {count}, fewer than one "
                  f"batch (--batch-size {args.batch_size}); --val-split asks for one")
        else:
            pairs, held_out = held_out_pairs(args, pairs, count)
    # The vocabularies of the training pairs alone: a held-out word unseen in training is UNK.
    return Data(pairs, held_out, *build_tokenizers(pairs, level=args.level))


def _config(args, data: Data) -> Seq2SeqConfig:
    return Seq2SeqConfig(
        src_vocab_size=len(data.src_tokenizer),
        tgt_vocab_size=len(data.tgt_tokenizer),
        embedding_dim=args.embedding_dim,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        bidirectional=args.bidirectional,
        dropout=args.dropout,
        cell=args.cell,
        attention=args.attention,
    )


def _resumed(args) -> Checkpoint | None:
    """The --resume checkpoint, loaded before any other work; a refusal names the flag."""
    if args.resume is None:
        if args.fresh_optimizer:
            raise UsageError("--fresh-optimizer goes with --resume (a new run starts afresh)")
        return None
    try:
        checkpoint = load_checkpoint(args.resume)
    except CheckpointError as error:
        raise UsageError(f"--resume: {error}") from None
    if checkpoint.training is None and not args.fresh_optimizer:
        raise UsageError(
            f"--resume {args.resume} holds no optimizer state (a checkpoint of weights only); "
            "add --fresh-optimizer to continue from its weights with a fresh optimizer")
    return checkpoint


def _check_resume(args, checkpoint: Checkpoint, config: Seq2SeqConfig, data: Data) -> None:
    """Refuse a resume whose model, vocabularies or (unless fresh) optimizer differ."""
    settings = optimizer_settings(args.optimizer, args.lr, None, args.clip_norm)
    differences = resume_differences(checkpoint, config, data.src_tokenizer, data.tgt_tokenizer,
                                     settings, args.seed, args.batch_size)
    if args.fresh_optimizer:  # a new optimizer, and a new schedule from the checkpoint's epoch
        differences = [d for d in differences if d[0].startswith(("config.", "src_", "tgt_"))]
    if not differences:
        return
    what, theirs, ours = differences[0]
    if what in RESUME_FLAGS:
        flag = RESUME_FLAGS[what]
        found = f"was trained with {flag} {theirs}; these flags give {flag} {ours}"
    elif what.startswith("optimizer."):
        found = (f"has Adam's {what[len('optimizer.'):]} {theirs}, which the command line does "
                 f"not set ({ours}); resume it from Python (backend.train)")
    else:  # a vocabulary: the data flags differ
        side = "source" if what.startswith(("src", "config.src")) else "target"
        found = (f"has a {side} vocabulary of {theirs}; these data flags make {ours}: give the "
                 f"run's data flags again ({DATA_FLAGS})")
    raise UsageError(f"--resume {args.resume} {found}")


def _earlier(args, checkpoint: Checkpoint, data: Data):
    """The record of the run --resume continues (its history.json beside it), said in one line."""
    done = checkpoint.training.epochs_done
    earlier, why = earlier_record(Path(args.resume), checkpoint, len(data.held_out or ()))
    if earlier is None:
        print(f"--resume: {why}: {HISTORY} starts at epoch {done + 1}, and the best epoch and "
              "--patience count from there")
    else:
        best = f", best epoch {earlier.history['best_epoch']}" if data.held_out else ""
        print(f"--resume: continuing the record of epochs 1 to {done}{best}")
    return earlier


def _check_sizes(args, config: Seq2SeqConfig, data: Data) -> None:
    """Refuse, before any work, a run whose batches or training step exceed the memory cap."""
    longest = 1 + max((max(len(data.src_tokenizer.encode(q)), len(data.tgt_tokenizer.encode(a)))
                       for q, a in data.train_pairs), default=0)
    limits.check_schedule(len(data.train_pairs), longest, args.epochs)
    limits.check_training(config, args.batch_size, longest, longest)


def run(args) -> int:
    out = flags.output_dir(args.out)
    if args.patience is not None and args.no_val:
        raise UsageError("--patience needs a held-out set (it watches the held-out loss); "
                         "drop --no-val")
    replicas.check_flag(args)
    resumed = _resumed(args)
    data = _data(args)
    config = _config(args, data)
    first_epoch, optimizer_state, earlier = 0, None, None
    if resumed is not None:
        _check_resume(args, resumed, config, data)
        if resumed.training is not None:
            first_epoch = resumed.training.epochs_done
            optimizer_state = None if args.fresh_optimizer else resumed.training.optimizer
            earlier = _earlier(args, resumed, data)
    _check_sizes(args, config, data)
    flags.say_replaced(out, OUTPUTS)  # every check passed: the run will write them
    backend = load_backend(args.backend)
    replicas.prepare(args, backend)
    model = backend.build_model(config, seed=args.seed)
    if resumed is not None:
        backend.import_weights(model, resumed.weights)
    record = RunRecord(out, backend, model, data.src_tokenizer, data.tgt_tokenizer,
                       seed=args.seed, batch_size=args.batch_size, held_out=data.held_out,
                       patience=args.patience, earlier=earlier)
    record.history.update(replicas.recorded(args, backend))  # history.json names the replicas
    writer = replicas.writes_outputs(args, backend)  # under torchrun, global rank 0 only

    def epoch_batches(epoch: int):  # a new shuffle every epoch, the same on every backend
        return batches(data.train_pairs, data.src_tokenizer, data.tgt_tokenizer,
                       args.batch_size, seed=args.seed + epoch, max_length=args.max_length)

    # With --data-parallel N the hook still runs here, between two epochs of the replicas.
    backend.train(model, epoch_batches, args.epochs, optimizer=args.optimizer, lr=args.lr,
                  seed=args.seed, clip_norm=args.clip_norm, first_epoch=first_epoch,
                  optimizer_state=optimizer_state,
                  on_epoch_end=record.on_epoch_end if writer else None,
                  data_parallel=args.data_parallel)
    if not writer:
        return 0  # another rank of the same run writes the files
    history = record.finish()
    _plot_losses(out / "loss.png", history)
    best = f"best epoch {history['best_epoch']}, " if data.held_out else ""
    print(f"saved {out / BEST} ({best}final loss {history['loss'][-1]:.4f})")
    return 0


def _plot_losses(path: Path, history: dict) -> None:
    """Training and held-out loss per epoch; skipped, said in one line, without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no loss.png (pip install 'seq2seq-rosetta[plot]')")
        return
    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(history["epoch"], history["loss"], marker="o", label="training")
    if history["val_loss"]:
        ax.plot(history["epoch"], history["val_loss"], marker="o", label="held-out")
    ax.set_xlabel("epoch")
    ax.set_yscale("log")  # a model that learns takes the loss down by orders of magnitude
    ax.set_ylabel("cross-entropy per token")
    resumes = history["resumes"]  # a run moved between backends names each part
    parts = [f"{r['after']}, then {r['backend']} from epoch {r['epoch']}" for r in resumes[:1]]
    parts += [f"{r['backend']} from epoch {r['epoch']}" for r in resumes[1:]]
    ax.set_title(f"{'; '.join(parts) or history['backend']}: loss per epoch")
    ax.legend()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=120)
    plt.close(fig)
    write_atomically(path, png.getvalue())
