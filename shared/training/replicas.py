"""Data-parallel training, the framework-free part: replicas' slices, the checks, the loss rule.

N replicas train as one process does when they see the same global batches in the
same order, each its slice, and their gradients add up to the gradient of the one
process's loss: the mean cross-entropy over the global batch's real target tokens,

    loss = (sum over every replica's real tokens of CE) / G,   G = the global real-token count

So each replica computes its own sum over its real tokens and divides it by G, the
count all-reduced over the replicas, never by its own count.  Dividing by its own
count (the masked mean that one process uses, and what each engine's default does)
weighs a replica with few real tokens as much as one with many: the mean of the
replicas' means, which drifts from one process (docs/data-parallel.md measures how far).
What remains differs per engine, in how its gradient reduction treats the replicas:

    engine             replicas are                 replica's loss   why
    torch-ddp          processes (DDP; gloo, or     sum_r / G * N    DDP averages: its all-reduce
                       NCCL on GPUs)                                 divides the sum by N
    keras-tensorflow   logical devices or GPUs      sum_r / G        Keras's TF optimizer sums
                       (MirroredStrategy)                            the replicas' gradients
    keras-jax          devices of one jitted        sum / G, as one  one program sees the whole
                       program (DataParallel)       process          sharded batch

Each engine says its factor in one comment where it computes the loss
(``torch_impl/data_parallel.py``, ``keras_impl/data_parallel.py``).  Keras on
PyTorch has no ``keras.distribution`` and is refused (``KERAS_TORCH_REFUSAL``).

Slices: replica r takes the contiguous rows [r * R, (r + 1) * R) of every global batch,
R = ceil(B / N); a short slice (an uneven split, the short last batch of an epoch) is
filled with all-PAD rows up to R, so every replica runs the same shapes.  A PAD row
holds no real target token: it adds nothing to the sum nor to the gradients, and a
replica whose slice is all PAD contributes zero and still takes part in every
all-reduce.  A batch size smaller than N is refused before training
(``check_replicas``), so only a short last batch leaves a replica empty.

Shapes: B batch, S source length, T target length, N replicas, R rows per replica.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from shared.checkpoint.training_state import OptimizerSettings, OptimizerState, optimizer_settings
from shared.core.checks import check_count
from shared.core.config import Seq2SeqConfig
from shared.core.tokens import PAD
from shared.text.data import Batch
from shared.training.checks import TrainingRun, check_training_batch, epoch_means
from shared.training.epochs import EpochEnd

# The engine that runs N replicas, by trainer or Keras backend: what history.json records.
ENGINES = {"torch": "torch-ddp", "jax": "keras-jax", "tensorflow": "keras-tensorflow"}

KERAS_TORCH_REFUSAL = (
    "Keras on PyTorch has no keras.distribution (Keras's multi-GPU guide for that backend "
    "wraps the model in torch's DistributedDataParallel by hand); use --backend torch, or run "
    "Keras on jax or tensorflow (KERAS_BACKEND)"
)


class ReplicaFailedError(RuntimeError):
    """A replica stopped with an error: the run ends, and nothing is written."""


JOB_KINDS = ("train", "gradients")
# How the replicas' losses combine: "global", each replica's sum over its real tokens / the
# global count G (the rule above), or "replica-mean", each replica's own masked mean,
# averaged over the replicas by its engine's reduction: the trap, what every engine's
# default loss gives.  The trap is kept to be measured (the tests, docs/examples).
LOSS_RULES = ("global", "replica-mean")


@dataclass(frozen=True)
class Job:
    """One piece of work for N replicas, from canonical weights.

    A replica that is a process (a DDP rank) cannot be handed a model object; it is
    handed this, and builds its model from ``config`` and ``weights``.

    Attributes:
        kind: "train" (every epoch of ``schedule``) or "gradients" (one step's
            all-reduced gradients on ``schedule[0][0]``, no update).
        config, weights: the model, its canonical weights.
        schedule: each epoch's global batches (``training_batches``).
        optimizer, lr, adam_epsilon, seed, verbose, clip_norm: as ``train``'s, already checked.
        loss_rule: one of ``LOSS_RULES``; "global" is the one that equals one process.
        optimizer_state: the optimizer's state to start from (``train``'s, or the
            previous epoch's: see ``train_epoch_by_epoch``); None: fresh.  A "train"
            job returns the state it ends with.
    """

    kind: str
    config: Seq2SeqConfig
    weights: dict
    schedule: list
    optimizer: str = "adam"
    lr: float = 1e-3
    adam_epsilon: float | None = None
    seed: int = 0
    verbose: bool = False
    loss_rule: str = "global"
    clip_norm: float | None = None
    optimizer_state: OptimizerState | None = None

    @property
    def settings(self) -> OptimizerSettings:
        """The optimizer these fields make (``train`` checked them against the state's)."""
        return optimizer_settings(self.optimizer, self.lr, self.adam_epsilon, self.clip_norm)

    @property
    def first_step(self) -> int:
        """The optimizer steps taken before this job: Adam's bias correction reads them."""
        return 0 if self.optimizer_state is None else self.optimizer_state.step

    def checked(self) -> Job:
        """This job with its kind and every global batch checked (``checked_schedule``)."""
        if self.kind not in JOB_KINDS:
            raise ValueError(f"kind must be one of {', '.join(JOB_KINDS)}; got {self.kind!r}")
        if self.loss_rule not in LOSS_RULES:
            raise ValueError(f"loss_rule must be one of {', '.join(LOSS_RULES)}; "
                             f"got {self.loss_rule!r}")
        return replace(self, schedule=checked_schedule(self.config, self.schedule))


def train_job(config: Seq2SeqConfig, weights: dict, epoch_batches: list[Batch], run: TrainingRun,
              epoch: int, state: OptimizerState | None, verbose: bool) -> Job:
    """The "train" job of one epoch of a checked ``TrainingRun``, from these weights and state."""
    settings = run.settings
    return Job("train", config, weights, [epoch_batches], settings.name, settings.lr,
               settings.epsilon, (run.seed + epoch) % 2**32, verbose,
               clip_norm=settings.clip_norm, optimizer_state=state)


# An engine's one replicated epoch: (epoch number, its batches, the optimizer state to start
# from) -> (its steps' losses, the state it ends with), the trained weights left in the model.
EpochTrainer = Callable[[int, list[Batch], OptimizerState | None],
                        tuple[list[float], OptimizerState]]


def train_epoch_by_epoch(train_epoch: EpochTrainer, schedule: list[list[Batch]],
                         run: TrainingRun, on_epoch_end: Callable[[EpochEnd], bool | None] | None
                         ) -> tuple[list[float], list[list[Batch]]]:
    """Run the replicas one epoch at a time, the hook in this process between two epochs.

    Each epoch starts from the weights and the optimizer's state the last one ended with
    (the first from ``run.state``, a resume's), so the replicas train as one call over
    every epoch would, and ``on_epoch_end`` (held-out figures, checkpoints, patience)
    sees the model and the state as a one-process run shows them.  Written once for
    both engines: ``torch_impl.data_parallel``, ``keras_impl.data_parallel``.

    Returns:
        (losses, done): every step's loss, and the epochs run (each its batches).
    """
    state = run.state
    start = 0 if state is None else state.step
    losses: list[float] = []
    done: list[list[Batch]] = []
    for epoch, epoch_batches in enumerate(schedule, start=run.first_epoch):
        epoch_losses, state = train_epoch(epoch, epoch_batches, state)
        assert state.step == start + len(losses) + len(epoch_losses), (state.step, start)
        losses += epoch_losses
        done.append(epoch_batches)
        if on_epoch_end is not None:
            end = EpochEnd(epoch, epoch_means(losses, done)[-1], tuple(epoch_losses), state.step,
                           lambda state=state: state)
            if on_epoch_end(end):
                break
    return losses, done


def checked_schedule(config: Seq2SeqConfig, schedule: list[list[Batch]]) -> list[list[Batch]]:
    """Every global batch checked now (int64 arrays), before any replica starts.

    A bad batch is then refused in the caller's process, in ``train``'s words, not
    by each replica as a failure.
    """
    return [[Batch(*check_training_batch(config, *batch)) for batch in epoch_batches]
            for epoch_batches in schedule]


def largest_batch(schedule: list[list[Batch]]) -> int:
    """The rows of the largest global batch: more replicas than this are refused."""
    return max(len(batch.src) for epoch_batches in schedule for batch in epoch_batches)


def check_replicas(replicas: object, name: str = "data_parallel") -> int:
    """The number of replicas: an integer >= 1 (1 is a plain one-process run)."""
    return check_count(replicas, name)


def check_replicas_fit(replicas: int, rows: int, available: int, devices: str,
                       name: str = "data_parallel", rows_name: str = "the largest batch") -> None:
    """Refuse more replicas than a global batch has rows, or than can start here.

    Args:
        replicas: the count, checked by ``check_replicas``.
        rows: the rows of the largest global batch (the batch size).
        available: how many replicas this machine can run (devices, or cores).
        devices: what ``available`` counts, for the message ("2 CPU cores").
        name, rows_name: how the caller calls the count and the rows.

    Raises:
        ValueError: one line naming ``name``, what was asked and what there is.
    """
    if replicas > rows:
        raise ValueError(
            f"{name} {replicas} is more replicas than a global batch has rows ({rows_name} "
            f"has {rows}); every replica needs a row: lower {name} or raise the batch size")
    if replicas > available:
        raise ValueError(
            f"{name} {replicas} is more replicas than can start here: {devices}, one "
            f"replica each; lower {name}")


def outside_torchrun() -> bool:
    """True in a process that an outside ``torchrun`` started (it sets RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def cores_here() -> int:
    """The CPU cores this process may run on: one replica per core on a CPU."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def rows_per_replica(rows: int, replicas: int) -> int:
    """R = ceil(B / N): every replica's slice has this many rows, PAD rows filling the last."""
    return math.ceil(rows / replicas)


def split_batch(batch: Batch, replicas: int) -> list[Batch]:
    """Replica r's contiguous rows of a checked global batch, each (R, S) / (R, T).

    The rows past the end are all PAD, in tgt_in too: they are not a training pair
    (``check_training_batch`` refuses an all-PAD tgt_in row), and they exist only after
    the global batch passed its checks.  They hold no real target token.
    """
    rows = rows_per_replica(len(batch.src), replicas)

    def part(array: np.ndarray, replica: int) -> np.ndarray:
        piece = array[replica * rows : (replica + 1) * rows]                 # (<= R, S or T)
        out = np.full((rows, array.shape[1]), PAD, dtype=array.dtype)        # (R, S or T)
        out[: len(piece)] = piece
        return out

    return [Batch(*(part(array, replica) for array in batch)) for replica in range(replicas)]


def pad_rows(batch: Batch, replicas: int) -> Batch:
    """The global batch with all-PAD rows up to N * R rows: the slices of ``split_batch``, joined.

    A program over devices (Keras on JAX) splits the batch axis evenly itself.
    """
    slices = split_batch(batch, replicas)
    return Batch(*(np.concatenate(parts) for parts in zip(*slices, strict=True)))  # (N * R, .)


def real_tokens(tgt_out: np.ndarray) -> int:
    """The real (not PAD) target tokens: the masked mean's divisor."""
    return int((np.asarray(tgt_out) != PAD).sum())


def replicated_history(history: dict, replicas: int, engine: str) -> dict:
    """A trainer's history with the replica count and the engine that ran them."""
    return {**history, "data_parallel": replicas, "engine": engine}
