"""Data-parallel training on Keras: N devices of this process, on JAX or on TensorFlow.

Mirror of ``torch_impl/data_parallel.py``.  ``train(model, ..., data_parallel=N)``
calls ``train_replicated``, which trains ``model`` on N devices, each its slice of
every global batch (``shared.training.replicas``), and leaves the trained weights
in ``model``.  Where torch's replicas are processes, Keras's are devices of this
process, so nothing is started; what differs is the backend's distribution API:

                 replicas on                the step                              its loss
    jax          devices (DataParallel's    per_backend.TrainStep, unchanged: one  sum / G over the
                 data layout)               jitted program over the batch, padded  whole batch
                                            to N * R rows, its rows split
    tensorflow   logical CPUs or GPUs       strategy.run of a replica step, on a   sum_r / G
                 (MirroredStrategy)         twin model built under the strategy
    torch        refused: Keras has no keras.distribution there (KERAS_TORCH_REFUSAL)

On a CPU the devices are virtual: JAX's come from ``XLA_FLAGS``, TensorFlow's are
logical devices, and both must be made before the framework starts
(``shared.core.runtime.configure_devices``; the command line does it).  They prove
that the replicated program computes what one process computes; they do not make a
CPU faster (docs/data-parallel.md).

``train`` hands over one epoch at a time (``shared.training.replicas.train_epoch_by_epoch``):
the step is made once (nothing to restart here), and between two epochs the weights are
put back in the model and the optimizer's state exported for the caller's hook.  Clipping
by the global norm clips the global gradient, the replicas' summed one: on JAX the one
program's gradient is global already and the optimizer's ``global_clipnorm`` does it; on
TensorFlow each replica's step would clip its own share before the optimizer sums them,
so the step all-reduces the shares, scales each by the sum's clipping factor, and hands
the optimizer the scaled shares with its own clipping off.

``run_jobs`` runs a list of jobs from canonical weights, as torch's does: the tests
call both engines the same way.

Shapes: B batch, S source length, T target length, N replicas, R = ceil(B / N) rows
per replica.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import keras
from keras import ops

from keras_impl import per_backend
from keras_impl.api import build_model
from keras_impl.model import Seq2Seq
from keras_impl.optimizer import build_optimizer, export_state, import_state
from keras_impl.per_backend import BACKEND
from keras_impl.train import (
    _loss_of,
    _reseed_dropout,
    canonical_gradients,
    masked_cross_entropy_sum,
)
from keras_impl.weights import export_weights, import_weights
from shared.checkpoint.training_state import OptimizerState
from shared.text.data import Batch
from shared.training.checks import TrainingRun, check_finite_loss, run_history
from shared.training.epochs import EpochEnd
from shared.training.replicas import (
    ENGINES,
    KERAS_TORCH_REFUSAL,
    Job,
    check_replicas_fit,
    checked_schedule,
    largest_batch,
    pad_rows,
    replicated_history,
    train_epoch_by_epoch,
)

if BACKEND == "tensorflow":
    import tensorflow as tf
elif BACKEND == "jax":
    import jax

ENGINE = ENGINES.get(BACKEND)  # none for Keras on PyTorch: refused

# How to get more devices, for the message that counts too few.
MORE_DEVICES = ("more CPU devices come from shared.core.runtime.configure_devices(N) before "
                "the framework starts, as the command line does")


def available_replicas() -> tuple[int, str]:
    """How many replicas can start here, and what they are: the backend's devices."""
    if BACKEND == "jax":
        devices = jax.devices()
        kind = devices[0].platform.upper()
    elif BACKEND == "tensorflow":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        kind = devices[0].device_type
    else:
        return 0, "Keras on PyTorch"
    plural = "s" if len(devices) != 1 else ""
    return len(devices), f"{len(devices)} {BACKEND} {kind} device{plural} ({MORE_DEVICES})"


def is_writer() -> bool:
    """Whether this process writes the run's files: the first of JAX's processes, or the one."""
    return BACKEND != "jax" or jax.process_index() == 0


def _check_here(replicas: int, schedule: list[list[Batch]]) -> None:
    if BACKEND == "torch":
        raise ValueError(f"data_parallel {replicas}: {KERAS_TORCH_REFUSAL}")
    check_replicas_fit(replicas, largest_batch(schedule), *available_replicas())


def train_replicated(model: Seq2Seq, schedule: list[list[Batch]], replicas: int,
                     run: TrainingRun, verbose: bool,
                     on_epoch_end: Callable[[EpochEnd], bool | None] | None = None,
                     loss_rule: str = "global") -> dict:
    """Train ``model`` on ``replicas`` devices, each its slice of every global batch.

    The arguments are ``train``'s, already checked (``run``); ``schedule`` holds each
    epoch's batches; ``on_epoch_end`` runs between two epochs, the weights in the model;
    ``loss_rule`` is a ``Job``'s ("replica-mean", the trap, only to measure it).

    Returns:
        history: ``train``'s, with ``"data_parallel"`` and ``"engine"``.

    Raises:
        ValueError: Keras on PyTorch, or more replicas than the largest batch has rows
            or than there are devices.
    """
    return _train_epochs(model, schedule, replicas, run, verbose, on_epoch_end, loss_rule)[0]


def _train_epochs(model: Seq2Seq, schedule: list[list[Batch]], replicas: int, run: TrainingRun,
                  verbose: bool, on_epoch_end, loss_rule: str) -> tuple[dict, OptimizerState]:
    """``train_replicated``'s history, and the optimizer's state it ended with."""
    schedule = checked_schedule(model.config, schedule)
    _check_here(replicas, schedule)
    step = ReplicatedStep(model, run, replicas, loss_rule)
    ended: list[OptimizerState] = [run.state]

    def train_epoch(epoch: int, epoch_batches: list[Batch], state):
        losses: list[float] = []
        bar = keras.utils.Progbar(len(epoch_batches), verbose=1 if verbose else 0,
                                  unit_name="step")
        for batch in epoch_batches:
            losses.append(step(batch))
            check_finite_loss(losses[-1], step=len(losses), lr=run.settings.lr)
            bar.add(1, values=[("loss", losses[-1])])
        step.finish()
        ended[0] = step.optimizer_state(state.step if state is not None else 0, len(losses))
        return losses, ended[0]

    losses, done = train_epoch_by_epoch(train_epoch, schedule, run, on_epoch_end)
    history = run_history("keras", run, losses, done)
    return replicated_history(history, replicas, ENGINE), ended[0]


def run_jobs(jobs: list[Job], replicas: int) -> list[dict]:
    """Each job's result, one after the other on this process's devices.

    Returns:
        One dict per job: a "train" job's ``{"weights", "history", "optimizer_state"}``,
        a "gradients" job's ``{"loss", "gradients"}`` (all-reduced, canonical names).
    """
    jobs = [job.checked() for job in jobs]
    _check_here(replicas, [epoch for job in jobs for epoch in job.schedule])  # as torch's: once
    results = []
    for job in jobs:
        model = build_model(job.config, seed=job.seed)
        import_weights(model, job.weights)
        if job.kind == "gradients":
            loss, gradients = _gradients(model, job.schedule[0][0], replicas, job.loss_rule)
            results.append({"loss": loss, "gradients": gradients})
            continue
        run = TrainingRun(len(job.schedule), job.seed, job.settings, 0, job.optimizer_state)
        history, state = _train_epochs(model, job.schedule, replicas, run, job.verbose, None,
                                       job.loss_rule)
        results.append({"weights": export_weights(model), "history": history,
                        "optimizer_state": state})
    return results


@functools.cache
def _strategy(replicas: int):
    """One MirroredStrategy per replica count for the life of the process.

    A second strategy reuses the first one's collective keys: when their first
    collectives differ in shape, TensorFlow aborts ("Shape mismatch in the collective
    instance").  GPUs when there are some, else the logical CPUs.
    """
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices[:replicas]])


def _replica_loss(model: Seq2Seq, src, tgt_in, tgt_out, training: bool, rule: str):
    """Inside a TensorFlow replica: its sum over real tokens / the global count G."""
    context = tf.distribute.get_replica_context()
    total, count = masked_cross_entropy_sum(model((src, tgt_in), training=training), tgt_out)
    if rule == "replica-mean":  # the trap, as model.fit has it: the replicas' own means / N
        return total / count / context.num_replicas_in_sync
    tokens = context.all_reduce(tf.distribute.ReduceOp.SUM, count)                   # G
    # Keras's TF optimizer SUMS the replicas' gradients (no mean): dividing by G, with no
    # replica factor, makes that sum one process's gradient of sum / G.
    return total / tokens


class ReplicatedStep:
    """One optimisation step of N replicas on a global batch, ``step(batch) -> loss``.

    ``finish()`` leaves the trained weights in the model: JAX trains on values
    outside it (as ``TrainStep``), TensorFlow on a twin whose variables are mirrored
    on every device (a model built outside the strategy's scope cannot be updated in it).
    ``optimizer_state(start, steps)`` exports the optimizer's state after ``finish()``.

    Args:
        run: ``train``'s checked run: the optimizer (made here, where TensorFlow's must
            be, under the strategy), the state it starts from, the dropout's seed.
    """

    def __init__(self, model: Seq2Seq, run: TrainingRun, replicas: int, rule: str = "global"):
        self.model, self.replicas, self.settings = model, replicas, run.settings
        seed = (run.seed + run.first_epoch) % 2**32
        ids = ((None, None), "int64")                                           # (B, S) or (B, T)
        if BACKEND == "jax":
            _reseed_dropout(model, seed)
            # One program over the sharded batch: its gradient is the global one, and the
            # optimizer's global_clipnorm clips it as one process's does.
            self._opt = build_optimizer(model, run.settings)
            if run.state is not None:
                import_state(model, self._opt, run.state)
            self._step = per_backend.TrainStep(model, self._opt, _jax_loss(replicas, rule),
                                               signature=[ids, ids, ids])
            return
        clip_norm = run.settings.clip_norm
        self._strategy = _strategy(replicas)
        with self._strategy.scope():  # variables made here are mirrored on every replica
            self._twin = build_model(model.config)
            import_weights(self._twin, export_weights(model))
            _reseed_dropout(self._twin, seed)
            # Its own clipping off: it would clip each replica's share (see replica_step).
            unclipped = dataclasses.replace(run.settings, clip_norm=None)
            self._opt = opt = build_optimizer(self._twin, unclipped)  # slots now, not in the trace
            if run.state is not None:
                import_state(self._twin, opt, run.state)
        twin, variables = self._twin, self._twin.trainable_variables

        def replica_step(src, tgt_in, tgt_out):
            with tf.GradientTape() as tape:
                loss = _replica_loss(twin, *_rows_of_replica(replicas, src, tgt_in, tgt_out),
                                     training=True, rule=rule)
            grads = per_backend._tf_dense(tape.gradient(loss, variables))
            if clip_norm is not None:
                grads = _clipped_shares(grads, clip_norm)
            opt.apply_gradients(zip(grads, variables, strict=True))
            return loss

        def step(src, tgt_in, tgt_out):
            losses = self._strategy.run(replica_step, args=(src, tgt_in, tgt_out))
            # The replicas' shares of sum / G add up to the global masked mean.
            return self._strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

        # One trace: every replica reads its rows of the global batch, whose sizes stay free.
        self._step = tf.function(step, input_signature=[per_backend._tf_spec(ids)] * 3)

    def __call__(self, batch: Batch) -> float:
        return float(self._step(*_placed(batch, self.replicas)))

    def finish(self) -> None:
        if BACKEND == "jax":
            self._step.finish()
        else:
            import_weights(self.model, export_weights(self._twin))

    def optimizer_state(self, start: int, steps: int) -> OptimizerState:
        """The optimizer's state after ``finish()``: ``start`` + ``steps`` steps taken."""
        model = self.model if BACKEND == "jax" else self._twin
        return export_state(model, self._opt, self.settings, start + steps)


def _clipped_shares(grads: list, clip_norm: float) -> list:
    """Inside a TensorFlow replica: its gradient share scaled by the global gradient's clipping.

    The optimizer sums the replicas' shares into the global gradient; scaling every share
    by clip_norm / max(norm, clip_norm), the norm of that sum (Keras's global_clipnorm),
    makes the sum the clipped global gradient.  Clipping each share by its own norm, what
    the optimizer's own clipping does inside a replica, would not.
    """
    context = tf.distribute.get_replica_context()
    summed = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)      # the global gradient
    norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in summed]))
    scale = clip_norm / tf.maximum(norm, clip_norm)
    return [g * tf.cast(scale, g.dtype) for g in grads]


@functools.cache
def _jax_loss(replicas: int, rule: str):
    """JAX: the loss of the one program over the sharded batch, keras_impl's own unless the trap.

    Its sum and its count run over the whole global batch: XLA all-reduces them.
    """
    return _loss_of if rule == "global" else _replica_mean_loss(replicas)


def _replica_mean_loss(replicas: int):
    """JAX: the trap written into the one program, each replica's rows' own masked mean, averaged.

    A jitted step over the sharded batch cannot fall into it by itself (its sum and
    count are global); a loss written per device (``shard_map``, ``pmap``) would.
    """

    def loss_of(model: Seq2Seq, src, tgt_in, tgt_out, training=False):
        logits = model((src, tgt_in), training=training)                        # (N * R, T, V)
        rows = src.shape[0] // replicas                                          # R
        means = []
        for replica in range(replicas):
            part = slice(replica * rows, (replica + 1) * rows)
            total, count = masked_cross_entropy_sum(logits[part], tgt_out[part])
            means.append(total / count)
        return sum(means) / replicas

    return loss_of


@functools.cache
def _data_parallel(replicas: int):
    """JAX: Keras's DataParallel over the first ``replicas`` devices (its data layout only)."""
    return keras.distribution.DataParallel(devices=jax.devices()[:replicas])


def _placed(batch: Batch, replicas: int) -> list:
    """A checked global batch padded to N * R rows (``pad_rows``), placed for the replicas.

    JAX splits its rows over the devices (DataParallel's data layout); TensorFlow's
    replicas each read their rows of it (``_rows_of_replica``).
    """
    arrays = pad_rows(batch, replicas)                               # (N * R, S), (N * R, T) x2
    if BACKEND == "tensorflow":
        return [tf.constant(a) for a in arrays]
    layout = _data_parallel(replicas).get_data_layout(arrays.src.shape)
    return [keras.distribution.distribute_tensor(a, layout) for a in arrays]


def _rows_of_replica(replicas: int, *arrays) -> list:
    """Inside a TensorFlow replica: its R contiguous rows of each (N * R, .) array."""
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    rows = tf.shape(arrays[0])[0] // replicas                                      # R
    return [array[replica * rows : (replica + 1) * rows] for array in arrays]       # (R, .)


def _gradients(model: Seq2Seq, batch: Batch, replicas: int, rule: str) -> tuple[float, dict]:
    """One step's all-reduced gradients on ``replicas`` devices, canonical names (dropout off)."""
    inputs = _placed(batch, replicas)
    if BACKEND == "jax":  # one program over the sharded batch: its gradient is the global one
        loss, grads = per_backend.loss_and_grads(model, _jax_loss(replicas, rule), tuple(inputs))
        return loss, canonical_gradients(model, grads)
    strategy = _strategy(replicas)
    with strategy.scope():
        twin = build_model(model.config)
        import_weights(twin, export_weights(model))
    variables = twin.trainable_variables

    def replica_gradients(src, tgt_in, tgt_out):
        context = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            loss = _replica_loss(twin, *_rows_of_replica(replicas, src, tgt_in, tgt_out),
                                 training=False, rule=rule)
        grads = per_backend._tf_dense(tape.gradient(loss, variables))
        # What the optimizer would sum, summed here: the gradient of one process's loss.
        return context.all_reduce(tf.distribute.ReduceOp.SUM, [loss, *grads])

    # Eagerly: one step, where tracing it would cost more than it saves.
    summed = strategy.run(replica_gradients, args=tuple(inputs))
    loss, *grads = (ops.convert_to_numpy(strategy.experimental_local_results(value)[0])
                    for value in summed)
    return float(loss), canonical_gradients(twin, grads)
