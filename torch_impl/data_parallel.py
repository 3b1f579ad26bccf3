"""Data-parallel training on PyTorch: DistributedDataParallel, one process per replica.

Mirror of ``keras_impl/data_parallel.py``.  ``train(model, ..., data_parallel=N)``
calls ``train_replicated``, which starts N ranks on this machine
(``torch.multiprocessing``'s fork server, a rendezvous on a free port of 127.0.0.1), gives
each the model's canonical weights and every global batch, and takes rank 0's
weights back into ``model`` when they finish.  Each rank:

    builds the model from the weights         (an LSTM's bias_hh frozen by the constructor,
    wraps it in DDP                            before wrapping: DDP skips frozen parameters)
    for each global batch:
        takes its slice                        (shared.training.replicas.split_batch)
        sums the cross-entropy over its real tokens, all-reduces [sum, count] with the others,
        backward of sum / G * N                (DDP averages gradients over the N ranks)
        clips the gradients, if asked          (after the all-reduce: every rank clips the
                                                same global gradient by its global norm)
        steps its optimizer                    (all ranks hold the same gradients: the same step)

``train`` calls it one epoch at a time (``shared.training.replicas.train_epoch_by_epoch``):
each epoch's ranks start from the weights and the optimizer's state (canonical) the last
epoch ended with, and rank 0 sends both back, so the caller's hook runs between epochs.

The ranks talk through gloo on a CPU and NCCL where CUDA is present (one GPU per
rank).  Under an outside ``torchrun`` (``RANK`` and ``WORLD_SIZE`` in the
environment: several machines, docs/data-parallel.md) nothing is started: this
process is that rank.  Rank 0 draws the progress bar; the caller (the process
that started the ranks, or global rank 0 under torchrun: ``is_writer``) writes
the checkpoint.  A rank that raises ends the others and the run
(``ReplicaFailedError``, one line naming the rank and its error).

``run_jobs`` runs several jobs (training runs, one step's gradients) in one start of
the ranks: the tests start them once for every case.

Shapes: B batch, S source length, T target length, N replicas, R = ceil(B / N) rows
per replica, V_tgt target vocabulary.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from shared.text.data import Batch
from shared.training.checks import (
    TrainingDivergedError,
    TrainingRun,
    check_finite_loss,
    epoch_means,
    run_history,
)
from shared.training.epochs import EpochEnd
from shared.training.replicas import (
    ENGINES,
    Job,
    ReplicaFailedError,
    check_replicas_fit,
    cores_here,
    largest_batch,
    outside_torchrun,
    replicated_history,
    split_batch,
    train_epoch_by_epoch,
    train_job,
)
from torch_impl.api import build_model
from torch_impl.model import Seq2Seq
from torch_impl.optimizer import build_optimizer, clip_gradients, export_state, import_state
from torch_impl.train import canonical_gradients, masked_cross_entropy_sum
from torch_impl.weights import export_weights, import_weights

ENGINE = ENGINES["torch"]


def available_replicas() -> tuple[int, str]:
    """How many replicas can start here, and what they are: GPUs, or else CPU cores."""
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        return count, f"{count} CUDA GPU{'s' if count != 1 else ''}"
    count = cores_here()
    return count, f"{count} CPU core{'s' if count != 1 else ''}"


def is_writer() -> bool:
    """Whether this process writes the run's files: not a rank of an outside torchrun but 0."""
    return not outside_torchrun() or int(os.environ["RANK"]) == 0


def train_replicated(model: Seq2Seq, schedule: list[list[Batch]], replicas: int,
                     run: TrainingRun, verbose: bool,
                     on_epoch_end: Callable[[EpochEnd], bool | None] | None = None) -> dict:
    """Train ``model`` on ``replicas`` ranks, each its slice of every global batch; see the module.

    The arguments are ``train``'s, already checked (``run``); ``schedule`` holds each
    epoch's batches.  The ranks start once per epoch, from the weights and the optimizer
    state the last epoch ended with; ``on_epoch_end`` runs here between two epochs.

    Returns:
        history: ``train``'s, with ``"data_parallel"`` and ``"engine"``.

    Raises:
        ValueError: more replicas than the largest batch has rows or than can start here.
        ReplicaFailedError: a rank failed; ``model`` keeps the last finished epoch's weights.
    """

    def train_epoch(epoch: int, epoch_batches: list[Batch], state):
        job = train_job(model.config, export_weights(model), epoch_batches, run, epoch, state,
                        verbose)
        result = run_jobs([job], replicas)[0]
        import_weights(model, result["weights"])
        model.eval()  # dropout off while the hook evaluates, as train leaves it
        return result["history"]["loss"], result["optimizer_state"]

    losses, done = train_epoch_by_epoch(train_epoch, schedule, run, on_epoch_end)
    model.eval()
    history = run_history("torch", run, losses, done)
    return replicated_history(history, replicas, ENGINE)


def run_jobs(jobs: list[Job], replicas: int) -> list[dict]:
    """Each job's result from one start of ``replicas`` ranks (or, under torchrun, this rank's).

    Returns:
        One dict per job: a "train" job's ``{"weights", "history", "optimizer_state"}``
        (the state exported after its last step), a "gradients"
        job's ``{"loss", "gradients"}`` (all-reduced, canonical names).
    """
    jobs = [job.checked() for job in jobs]
    if outside_torchrun():
        world = int(os.environ["WORLD_SIZE"])
        if replicas != world:
            raise ValueError(f"data_parallel is {replicas} but torchrun started {world} ranks "
                             f"(WORLD_SIZE); give data_parallel {world}")
        return _rank_jobs(int(os.environ["RANK"]), world, jobs, "env://")
    rows = max(largest_batch(job.schedule) for job in jobs)
    check_replicas_fit(replicas, rows, *available_replicas())
    return _start_ranks(jobs, replicas)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_ranks(jobs: list[Job], replicas: int) -> list[dict]:
    """Spawn the ranks, wait for them, and return rank 0's results (or raise the first failure)."""
    # Each rank is a fork of a server process that imported torch once, so a rank starts at
    # once, where a fresh interpreter would import torch again.  Forking the caller itself
    # would copy its frameworks' threads mid-flight (TensorFlow's, torch's).  The server
    # preloads torch only: it does not take the caller's sys.path (each rank does), so this
    # project's modules are imported by each rank, from where the caller imported them.
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["torch", "torch.distributed", "torch.nn.parallel"])
    outbox = context.SimpleQueue()
    init = f"tcp://127.0.0.1:{_free_port()}"
    ranks = mp.start_processes(_rank, args=(replicas, jobs, init, outbox), nprocs=replicas,
                               join=False, start_method="forkserver")
    said: dict[str, list] = {"results": [], "error": []}

    def read() -> None:  # as they come, so that a full pipe never stalls rank 0
        while not outbox.empty():
            kind, value = outbox.get()
            said[kind].append(value)

    # join() logs each rank it ends after a failure; the failure is said once, below.
    spawn_log = logging.getLogger("torch.multiprocessing.spawn")
    level = spawn_log.level
    spawn_log.setLevel(logging.ERROR)
    try:
        while not ranks.join(timeout=0.1):
            read()
    except (mp.ProcessRaisedException, mp.ProcessExitedException) as failure:
        read()
        raise _failure(said["error"], failure, replicas) from None
    finally:
        spawn_log.setLevel(level)
    read()  # what rank 0 sent just before it ended, after the last read
    assert said["results"], "rank 0 ended without its results"
    return said["results"][0]


def _failure(errors: list, failure: Exception, replicas: int) -> Exception:
    """The first rank's error as one line; a diverged run stays a diverged run."""
    if not errors:  # killed before it could say anything
        return ReplicaFailedError(f"replica {failure.error_index} of {replicas} failed: "
                                  f"{str(failure).strip().splitlines()[-1]}")
    rank, kind, message = errors[0]
    if kind == TrainingDivergedError.__name__:  # every rank sees the same global loss
        return TrainingDivergedError(message)
    return ReplicaFailedError(f"replica {rank} of {replicas} failed: {kind}: {message}")


def _rank(rank: int, world: int, jobs: list[Job], init: str, outbox) -> None:
    """One spawned rank: run the jobs; rank 0 sends the results, a failing rank its error."""
    try:
        results = _rank_jobs(rank, world, jobs, init)
    except BaseException as error:
        outbox.put(("error", (rank, type(error).__name__, " ".join(str(error).split()))))
        raise
    if rank == 0:
        outbox.put(("results", results))


class _Here(NamedTuple):
    """Where a job runs: this rank, of how many, on which device."""

    rank: int
    world: int
    device: torch.device


def _rank_jobs(rank: int, world: int, jobs: list[Job], init: str) -> list[dict]:
    """Join the group, run every job as rank ``rank`` of ``world``, leave the group."""
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", rank))
    here = _Here(rank, world, torch.device("cuda", local) if cuda else torch.device("cpu"))
    torch.set_num_threads(1)  # one core per replica
    # Under an outside torchrun this process stays in the group from one epoch's call to the
    # next (torchrun's rendezvous is made once); the ranks started here end with their call.
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", init_method=init, rank=rank,
                                world_size=world)
    try:
        return [_run_job(job, here) for job in jobs]
    finally:
        if not outside_torchrun():
            dist.destroy_process_group()


def _run_job(job: Job, here: _Here) -> dict:
    model = build_model(job.config, seed=job.seed)
    import_weights(model, job.weights)
    # The constructor froze an LSTM's bias_hh: DDP, made now, leaves it out.  (Freezing a
    # parameter after wrapping would stall DDP's reducer, waiting for its gradient.)
    model.to(here.device)
    gpu = [here.device.index] if here.device.type == "cuda" else None
    replicated = DistributedDataParallel(model, device_ids=gpu)
    if job.kind == "gradients":
        return _gradients(model, replicated, job.schedule[0][0], here, job.loss_rule)
    return _train(model, replicated, job, here)


def _replica_loss(replicated: DistributedDataParallel, batch: Batch, here: _Here,
                  rule: str) -> tuple[torch.Tensor, float]:
    """(this rank's loss to differentiate, the global masked mean for the log)."""
    arrays = split_batch(batch, here.world)[here.rank]                   # (R, S), (R, T) x2
    src, tgt_in, tgt_out = (torch.from_numpy(a).to(here.device) for a in arrays)
    total, count = masked_cross_entropy_sum(replicated(src, tgt_in), tgt_out)   # scalars
    pair = torch.stack([total.detach(), count.to(total.dtype)])
    dist.all_reduce(pair)                                # [global CE sum, global real tokens G]
    if rule == "replica-mean":  # the trap: DDP averages each rank's own masked mean
        return total / count, float(pair[0] / pair[1])
    # DDP averages the ranks' gradients (its all-reduce divides by N): times N undoes it,
    # so the step follows d(global sum / G), one process's masked mean.
    return total / pair[1] * here.world, float(pair[0] / pair[1])


def _train(model: Seq2Seq, replicated: DistributedDataParallel, job: Job, here: _Here) -> dict:
    torch.manual_seed(job.seed + here.rank)  # dropout: each replica its own masks
    settings = job.settings
    opt = build_optimizer(model, settings)
    if job.optimizer_state is not None:
        import_state(model, opt, job.optimizer_state)
    model.train()
    losses: list[float] = []
    steps = sum(len(epoch_batches) for epoch_batches in job.schedule)
    with tqdm(total=steps, disable=not (job.verbose and here.rank == 0), desc=ENGINE,
              unit="step") as bar:
        for epoch_batches in job.schedule:
            for batch in epoch_batches:
                opt.zero_grad(set_to_none=True)
                loss, logged = _replica_loss(replicated, batch, here, job.loss_rule)
                loss.backward()                       # DDP all-reduces the gradients here
                # Every rank holds the global gradient now: clipping it by its global norm
                # is one process's clipping, the same on every rank.
                clip_gradients(model, settings)
                opt.step()
                losses.append(logged)
                check_finite_loss(losses[-1], step=len(losses), lr=job.lr)
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
    model.eval()
    history = {
        "backend": "torch",
        "optimizer": settings.name,
        "lr": settings.lr,
        "epochs": len(job.schedule),
        "loss": losses,
        "epoch_loss": epoch_means(losses, job.schedule),
    }
    # Every rank holds the same weights and state; each returns them (under an outside
    # torchrun each rank's caller goes on with its own), and only rank 0's travel back.
    model.cpu()
    state = export_state(model, opt, settings, job.first_step + len(losses))
    return {"weights": export_weights(model), "optimizer_state": state,
            "history": replicated_history(history, here.world, ENGINE)}


def _gradients(model: Seq2Seq, replicated: DistributedDataParallel, batch: Batch,
               here: _Here, rule: str) -> dict:
    """One step's all-reduced gradients, canonical names; dropout off, as ``loss_and_gradients``."""
    model.train()
    with contextlib.ExitStack() as undo:
        for rnn in (model.encoder_rnn, model.decoder_rnn):
            undo.callback(setattr, rnn, "dropout", rnn.dropout)
            rnn.dropout = 0.0
        loss, logged = _replica_loss(replicated, batch, here, rule)
        loss.backward()
    model.cpu()
    return {"loss": logged, "gradients": canonical_gradients(model)}
