"""Training on PyTorch: the loss, canonical gradients and a training loop.

Mirror of ``keras_impl/train.py``.  The loss is defined once in words and
written in each framework: the mean cross-entropy over the target positions
that are not PAD (teacher forcing: the decoder reads BOS + answer and is scored
on answer + EOS).

Shapes: B batch, S source length, T target length, V_tgt target vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

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
from torch_impl.model import Seq2Seq
from torch_impl.optimizer import build_optimizer, clip_gradients, export_state, import_state
from torch_impl.weights import to_canonical


def masked_cross_entropy_sum(
    logits: torch.Tensor, tgt_out: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The cross-entropy summed over positions where ``tgt_out`` is not PAD, and their count.

    One process divides the sum by its count; data-parallel replicas divide theirs
    by the count of the whole global batch (``shared.training.replicas``).

    Args:
        logits: (B, T, V_tgt) decoder scores.
        tgt_out: int64 (B, T), answer + EOS, post-padded with PAD.

    Returns:
        (total, count): float and int64 scalars.
    """
    V = logits.shape[-1]
    # ignore_index drops PAD positions from the sum.
    total = F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD,
                            reduction="sum")
    return total, (tgt_out != PAD).sum()


def masked_cross_entropy(logits: torch.Tensor, tgt_out: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over positions where ``tgt_out`` is not PAD.

    Args:
        logits: (B, T, V_tgt) decoder scores.
        tgt_out: int64 (B, T), answer + EOS, post-padded with PAD.
    """
    total, count = masked_cross_entropy_sum(logits, tgt_out)
    return total / count


def _tensors(model: Seq2Seq, src, tgt_in, tgt_out) -> tuple[torch.Tensor, ...]:
    arrays = check_training_batch(model.config, src, tgt_in, tgt_out)        # (B, S), (B, T) x2
    device = next(model.parameters()).device  # the CPU, or a GPU after model.to("cuda")
    return tuple(torch.from_numpy(a).to(device) for a in arrays)


def loss_and_gradients(model: Seq2Seq, src, tgt_in, tgt_out) -> tuple[float, dict]:
    """The loss of one batch and its gradients, keyed by canonical names (dropout off).

    Returns:
        (loss, gradients): a float and a dict of float32 arrays shaped like
        ``export_weights(model)``.
    """
    src, tgt_in, tgt_out = _tensors(model, src, tgt_in, tgt_out)
    was_training = model.training
    # Training mode (cuDNN computes RNN gradients only there), but dropout off.
    rnns = (model.encoder_rnn, model.decoder_rnn)
    dropouts = [rnn.dropout for rnn in rnns]
    model.train()
    for rnn in rnns:
        rnn.dropout = 0.0
    model.zero_grad(set_to_none=False)
    try:
        loss = masked_cross_entropy(model(src, tgt_in), tgt_out)
        loss.backward()
    finally:
        for rnn, p in zip(rnns, dropouts, strict=True):
            rnn.dropout = p
    gradients = canonical_gradients(model)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return loss.item(), gradients


def canonical_gradients(model: Seq2Seq) -> dict:
    """The parameters' ``.grad``, keyed by canonical names (after a ``backward()``)."""
    # An LSTM's bias_hh is frozen (see Seq2Seq): its gradient equals bias_ih's, as in Keras.
    gradients = to_canonical(
        model, read=lambda p: p.grad if p.requires_grad else torch.zeros_like(p)
    )
    return share_bias_gradients(gradients, model.config)


def _check_weights(model: Seq2Seq, steps: int, lr: float) -> None:
    check_finite_weights(((name, p.detach().numpy()) for name, p in model.named_parameters()),
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
        adam_epsilon: Adam's epsilon, added after the bias correction
            (``torch.optim.Adam``); None: 1e-8, PyTorch's default.
        seed: seeds torch for dropout (from seed + first_epoch).
        verbose: show a progress bar.
        clip_norm: scale the gradients to this global norm when theirs is larger
            (``clip_grad_norm_``); None: no clipping.
        first_epoch: the epochs a resumed run has done: ``batches`` is asked for epoch
            first_epoch, first_epoch + 1, ...
        optimizer_state: the optimizer's state to continue from (from a checkpoint,
            written by either framework); None: fresh.
        on_epoch_end: called after each epoch with a ``shared.training.epochs.EpochEnd``,
            the model's weights in place; training stops when it returns True.
        data_parallel: replicas, each a process training on its slice of every batch
            (``torch_impl.data_parallel``), one epoch at a time with this function's
            hook, clipping and optimizer state between epochs; 1 trains here.

    Returns:
        history: {"loss": per-step losses, "epoch_loss": per-epoch means, ...}.
    """
    run = check_training_args(epochs, optimizer, lr, adam_epsilon, seed, clip_norm=clip_norm,
                              first_epoch=first_epoch, optimizer_state=optimizer_state,
                              config=model.config)
    replicas = check_replicas(data_parallel)
    schedule = training_batches(batches, run.epochs, run.first_epoch)
    if replicas > 1:
        # Imported here: torch.distributed, and what DDP imports, only for a replicated run.
        from torch_impl.data_parallel import train_replicated

        return train_replicated(model, schedule, replicas, run, verbose, on_epoch_end)
    torch.manual_seed((run.seed + run.first_epoch) % 2**32)
    opt = build_optimizer(model, run.settings)
    start = 0
    if run.state is not None:
        import_state(model, opt, run.state)
        start = run.state.step
    model.train()
    losses: list[float] = []
    done = []  # the epochs run, each a list of batches
    for epoch, epoch_batches in enumerate(schedule, start=run.first_epoch):
        # A with-block ends the bar's line even when a step raises, so an error starts a
        # line; one bar per epoch, so the hook's line comes after a whole bar.
        with tqdm(total=len(epoch_batches), disable=not verbose, desc=f"torch {epoch + 1}",
                  unit="step") as bar:
            for batch in epoch_batches:
                src, tgt_in, tgt_out = _tensors(model, batch.src, batch.tgt_in, batch.tgt_out)
                opt.zero_grad(set_to_none=True)
                loss = masked_cross_entropy(model(src, tgt_in), tgt_out)   # scalar
                loss.backward()
                clip_gradients(model, run.settings)
                opt.step()
                losses.append(loss.item())
                check_finite_loss(losses[-1], step=len(losses), lr=lr)
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
        done.append(epoch_batches)
        if on_epoch_end is not None:
            _check_weights(model, len(losses), lr)  # before the hook evaluates or saves them
            model.eval()  # dropout off while the hook evaluates
            taken = start + len(losses)
            end = EpochEnd(epoch, epoch_means(losses, done)[-1],
                           tuple(losses[-len(epoch_batches):]), taken,
                           lambda taken=taken: export_state(model, opt, run.settings, taken))
            stop = on_epoch_end(end)
            model.train()
            if stop:
                break
    _check_weights(model, len(losses), lr)  # the last update is seen by no loss
    model.eval()
    return run_history("torch", run, losses, done)
