"""Training on Keras: the loss, canonical gradients and a training loop.

Mirror of ``torch_impl/train.py``.  The loss is defined once in words and
written in each framework: the mean cross-entropy over the target positions
that are not PAD (teacher forcing: the decoder reads BOS + answer and is scored
on answer + EOS).

Shapes: B batch, S source length, T target length, V_tgt target vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import keras
import numpy as np
from keras import ops

from keras_impl import per_backend
from keras_impl.model import Seq2Seq
from keras_impl.optimizer import build_optimizer, export_state, import_state
from keras_impl.weights import to_canonical
from shared import PAD, Batch
from shared.checkpoint.training_state import OptimizerState
from shared.training.checks import (
    check_finite_loss,
    check_finite_weights,
    check_training_args,
    check_training_batch,
    epoch_means,
    run_history,
    share_bias_gradients,
    training_batches,
)
from shared.training.epochs import EpochEnd
from shared.training.replicas import check_replicas


def masked_cross_entropy_sum(logits, tgt_out):
    """The cross-entropy summed over positions where ``tgt_out`` is not PAD, and their count.

    One process divides the sum by its count; data-parallel replicas divide theirs
    by the count of the whole global batch (``shared.training.replicas``).

    Args:
        logits: (B, T, V_tgt) decoder scores.
        tgt_out: int (B, T), answer + EOS, post-padded with PAD.

    Returns:
        (total, count): float scalars.
    """
    per_token = ops.sparse_categorical_crossentropy(tgt_out, logits, from_logits=True)  # (B, T)
    real = ops.cast(ops.not_equal(tgt_out, PAD), per_token.dtype)                     # (B, T)
    # The sum over real positions only: what ignore_index=PAD gives in torch.
    return ops.sum(per_token * real), ops.sum(real)


def masked_cross_entropy(logits, tgt_out):
    """Mean cross-entropy over positions where ``tgt_out`` is not PAD.

    Args:
        logits: (B, T, V_tgt) decoder scores.
        tgt_out: int (B, T), answer + EOS, post-padded with PAD.
    """
    total, count = masked_cross_entropy_sum(logits, tgt_out)
    return total / count


def _arrays(model: Seq2Seq, src, tgt_in, tgt_out) -> tuple[np.ndarray, ...]:
    return check_training_batch(model.config, src, tgt_in, tgt_out)          # (B, S), (B, T) x2


def _loss_of(model: Seq2Seq, src, tgt_in, tgt_out, training=False):
    """The batch loss on backend tensors: what every backend differentiates."""
    return masked_cross_entropy(model((src, tgt_in), training=training), tgt_out)


def loss_and_gradients(model: Seq2Seq, src, tgt_in, tgt_out) -> tuple[float, dict]:
    """The loss of one batch and its gradients, keyed by canonical names (dropout off).

    An LSTM in Keras keeps one bias per gate where the canonical layout has b_ih and
    b_hh; since the loss depends only on their sum, its gradient is the gradient of
    both.  A GRU keeps both biases, each with its own gradient.

    Returns:
        (loss, gradients): a float and a dict of float32 arrays shaped like
        ``export_weights(model)``.
    """
    inputs = tuple(ops.convert_to_tensor(a) for a in _arrays(model, src, tgt_in, tgt_out))
    loss, grads = per_backend.loss_and_grads(model, _loss_of, inputs)
    return loss, canonical_gradients(model, grads)


def canonical_gradients(model: Seq2Seq, grads: list) -> dict:
    """Gradients in ``model.trainable_variables`` order, keyed by canonical names."""
    grads = {id(v): g for v, g in zip(model.trainable_variables, grads, strict=True)}
    # An LSTM's one Keras bias exports as b_ih; its gradient is also the gradient of b_hh.
    gradients = to_canonical(model, read=lambda v: grads[id(v)])
    return share_bias_gradients(gradients, model.config)


def _reseed_dropout(model: Seq2Seq, seed: int) -> None:
    """Restart the dropout's random stream from ``seed``, on every backend alike."""
    generator = getattr(model.between_layers, "seed_generator", None)  # none when rate is 0
    if generator is None:
        return
    generator.state.assign(ops.cast(ops.convert_to_tensor([seed, 0]), generator.state.dtype))


def _check_weights(model: Seq2Seq, steps: int, lr: float) -> None:
    check_finite_weights(((v.path, ops.convert_to_numpy(v)) for v in model.weights),
                         steps=steps, lr=lr)


def train(
    model: Seq2Seq,
    batches: Iterable[Batch] | Callable[[int], Iterable[Batch]],
    epochs: int,
    optimizer: str = "adam",
    lr: float = 1e-3,
    adam_epsilon: float | None = None,
    seed: int = 0,
    verbose: bool = True,
    clip_norm: float | None = None,
    first_epoch: int = 0,
    optimizer_state: OptimizerState | None = None,
    on_epoch_end: Callable[[EpochEnd], bool | None] | None = None,
    data_parallel: int = 1,
) -> dict:
    """Train with teacher forcing on ``batches``, epoch after epoch.

    Args:
        batches: ``shared.Batch`` objects replayed every epoch, or a function of the
            epoch number returning that epoch's batches (a new shuffle each epoch).
        epochs: passes over the batches.
        optimizer: "adam" or "sgd".
        lr: learning rate.
        adam_epsilon: Adam's epsilon, added after the bias correction as PyTorch adds
            it (``keras_impl.optimizer.Adam``); None: 1e-8, PyTorch's default.
        seed: seeds the dropout between stacked layers (from seed + first_epoch).
        verbose: show the Keras progress bar.
        clip_norm: scale the gradients to this global norm when theirs is larger
            (Keras's ``global_clipnorm``); None: no clipping.
        first_epoch: the epochs a resumed run has done: ``batches`` is asked for epoch
            first_epoch, first_epoch + 1, ...
        optimizer_state: the optimizer's state to continue from (from a checkpoint,
            written by either framework); None: fresh.
        on_epoch_end: called after each epoch with a ``shared.training.epochs.EpochEnd``,
            the model's weights in place; training stops when it returns True.
        data_parallel: replicas, each a device training on its slice of every batch
            (``keras_impl.data_parallel``), one epoch at a time with this function's
            hook, clipping and optimizer state between epochs; 1 trains as one.

    Returns:
        history: {"loss": per-step losses, "epoch_loss": per-epoch means, ...}.
    """
    run = check_training_args(epochs, optimizer, lr, adam_epsilon, seed, clip_norm=clip_norm,
                              first_epoch=first_epoch, optimizer_state=optimizer_state,
                              config=model.config)
    replicas = check_replicas(data_parallel)
    schedule = training_batches(batches, run.epochs, run.first_epoch)
    if replicas > 1:
        # Imported here: the backend's distribution API, only for a replicated run.
        from keras_impl.data_parallel import train_replicated

        return train_replicated(model, schedule, replicas, run, verbose, on_epoch_end)
    _reseed_dropout(model, (run.seed + run.first_epoch) % 2**32)
    opt = build_optimizer(model, run.settings)
    start = 0
    if run.state is not None:
        import_state(model, opt, run.state)
        start = run.state.step
    ids = ((None, None), "int64")                                               # (B, S) or (B, T)
    step = per_backend.TrainStep(model, opt, _loss_of, signature=[ids, ids, ids])
    losses: list[float] = []
    done = []  # the epochs run, each a list of batches
    for epoch, epoch_batches in enumerate(schedule, start=run.first_epoch):
        # One bar per epoch, as Keras's fit shows: the hook's line comes after a whole bar.
        bar = keras.utils.Progbar(len(epoch_batches), verbose=1 if verbose else 0,
                                  unit_name="step")
        for batch in epoch_batches:
            arrays = _arrays(model, batch.src, batch.tgt_in, batch.tgt_out)      # (B, S), (B, T) x2
            losses.append(step(*(ops.convert_to_tensor(a) for a in arrays)))
            check_finite_loss(losses[-1], step=len(losses), lr=lr)
            bar.add(1, values=[("loss", losses[-1])])
        done.append(epoch_batches)
        if on_epoch_end is not None:
            step.finish()  # JAX trains on values outside the model: put them in
            _check_weights(model, len(losses), lr)  # before the hook evaluates or saves them
            taken = start + len(losses)
            end = EpochEnd(epoch, epoch_means(losses, done)[-1],
                           tuple(losses[-len(epoch_batches):]), taken,
                           lambda taken=taken: export_state(model, opt, run.settings, taken))
            if on_epoch_end(end):
                break
    step.finish()
    _check_weights(model, len(losses), lr)  # the last update is seen by no loss
    return run_history("keras", run, losses, done)
