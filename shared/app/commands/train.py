"""``seq2seq-rosetta train``: train one backend on a task or a TSV file, save a checkpoint.

    seq2seq-rosetta train --backend torch --task dates --epochs 5 --out runs/dates
    seq2seq-rosetta train --backend keras --data pairs.tsv --epochs 10 --out runs/mine
    seq2seq-rosetta train --backend torch --task dates --epochs 5 --data-parallel 2 --out runs/dp

Writes ``model.safetensors`` (the neutral checkpoint either backend reads) and
``history.json`` into ``--out``, each atomically, from one process: with
``--data-parallel N`` (``shared.app.replicas``) the replicas train and one writes.
"""

from __future__ import annotations

import argparse
import json

from shared.app import flags, replicas
from shared.app.backends import TRAINERS, load_backend
from shared.checkpoint import save_checkpoint
from shared.core.config import ATTENTIONS, CELLS, Seq2SeqConfig
from shared.files.atomic import write_atomically
from shared.text.data import MAX_LENGTH, batches, build_tokenizers, drop_long_pairs, read_pairs
from shared.text.tasks import TASKS, load_task


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` command to ``subparsers`` (``shared.app.cli``'s)."""
    train = subparsers.add_parser("train", help="train one backend, save a neutral checkpoint")
    train.add_argument("--backend", choices=TRAINERS, required=True)
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", choices=sorted(TASKS), help="a built-in generated task")
    source.add_argument("--data", help="a question<TAB>answer file (Tatoeba format)")
    train.add_argument("--n", type=flags.COUNT, default=4000, help="pairs to generate for --task")
    train.add_argument("--level", choices=("char", "word"), default="char")
    train.add_argument("--epochs", type=flags.COUNT, required=True)
    train.add_argument("--batch-size", type=flags.COUNT, default=64)
    train.add_argument("--embedding-dim", type=flags.COUNT, default=32)
    train.add_argument("--hidden-size", type=flags.COUNT, default=128)
    train.add_argument("--num-layers", type=flags.COUNT, default=1)
    train.add_argument("--bidirectional", action="store_true")
    train.add_argument("--dropout", type=float, default=0.0)
    train.add_argument("--cell", choices=CELLS, default="lstm",
                       help="the recurrent cell: lstm hands off (h, c), gru hands off h")
    train.add_argument("--max-length", type=flags.COUNT, default=MAX_LENGTH,
                       help="drop pairs whose question or answer has more tokens than this")
    train.add_argument("--attention", choices=ATTENTIONS, default="none",
                       help="the decoder also reads every encoder output: luong (h_t^T W_a h_s) "
                            "or bahdanau (v_a^T tanh(W_1 h_t + W_2 h_s)); see docs/attention.md")
    train.add_argument("--lr", type=flags.positive_number, default=1e-2)
    train.add_argument("--seed", type=flags.SEED, default=0)
    train.add_argument("--data-parallel", type=flags.COUNT, default=1, metavar="N",
                       help="N replicas, each training on its slice of every batch: torch's "
                            "DDP processes, Keras's devices on JAX or TensorFlow "
                            "(docs/data-parallel.md)")
    train.add_argument("--out", required=True, help="directory for model.safetensors, history.json")
    train.set_defaults(func=run)
    return train


def _pairs(args) -> list[tuple[str, str]]:
    if args.data is not None:
        return read_pairs(args.data)
    return load_task(args.task, args.n, args.seed)


def run(args) -> int:
    out = flags.output_dir(args.out)
    replicas.check_flag(args)
    pairs = _pairs(args)
    src_tok, tgt_tok = build_tokenizers(pairs, level=args.level)
    kept, dropped = drop_long_pairs(pairs, src_tok, tgt_tok, args.max_length, "--max-length")
    if dropped:
        print(f"dropped {dropped} of {len(pairs)} pairs with a question or answer longer than "
              f"--max-length {args.max_length} tokens; training on {len(kept)}")
        pairs = kept
        src_tok, tgt_tok = build_tokenizers(pairs, level=args.level)  # their vocabulary only
    config = Seq2SeqConfig(
        src_vocab_size=len(src_tok),
        tgt_vocab_size=len(tgt_tok),
        embedding_dim=args.embedding_dim,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        bidirectional=args.bidirectional,
        dropout=args.dropout,
        cell=args.cell,
        attention=args.attention,
    )
    backend = load_backend(args.backend)
    replicas.prepare(args, backend)
    model = backend.build_model(config, seed=args.seed)

    def epoch_batches(epoch: int):  # a new shuffle every epoch
        return batches(pairs, src_tok, tgt_tok, args.batch_size, seed=args.seed + epoch,
                       max_length=args.max_length)

    history = backend.train(model, epoch_batches, args.epochs, lr=args.lr, seed=args.seed,
                            data_parallel=args.data_parallel)
    if not replicas.writes_outputs(args, backend):
        return 0  # another rank of the same run writes them
    history = replicas.recorded(history, backend)
    out.mkdir(parents=True, exist_ok=True)
    weights = backend.export_weights(model)
    save_checkpoint(out / "model.safetensors", weights, config, src_tok, tgt_tok)
    write_atomically(out / "history.json", json.dumps(history, indent=2).encode())
    print(f"saved {out / 'model.safetensors'} (final loss {history['loss'][-1]:.4f})")
    return 0


