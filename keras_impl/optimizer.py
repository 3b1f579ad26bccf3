"""The optimizer on Keras: one Adam update rule, clipping by the global norm, a neutral state.

Mirror of ``torch_impl/optimizer.py``.  A run moves between the frameworks with
its optimizer's state (``shared.checkpoint.training_state``), so both must
compute one update from it.  Adam, as both engines here compute it (PyTorch's
rule, and Algorithm 1 of Kingma & Ba):

    m = β₁ m + (1 - β₁) g              v = β₂ v + (1 - β₂) g²
    m̂ = m / (1 - β₁ᵗ)                  v̂ = v / (1 - β₂ᵗ)
    w = w - lr · m̂ / (√v̂ + ε)

Keras's own ``keras.optimizers.Adam`` keeps the same m and v but adds ε before
the bias correction, ``w - lr · √(1-β₂ᵗ)/(1-β₁ᵗ) · m / (√v + ε)``: PyTorch's update
with ε replaced by ε/√(1-β₂ᵗ), which changes with t.  The two differ wherever √v̂
comes near ε (gradients near 1e-9, or a weight whose gradient has been zero), so
``Adam`` below overrides the update step alone and keeps Keras's slots, clipping
and variables.  Clipping is Keras's ``global_clipnorm``: every gradient scaled by
clip_norm / max(norm, clip_norm), the norm taken over all of them together
(``clipnorm`` would clip each variable by its own norm: not PyTorch's).

Slots: Keras keeps m and v per variable in ``_momentums`` and ``_velocities``
(found with ``_get_variable_index``, as Keras's own update step finds them), and
the step count in ``iterations``; ``export_state`` and ``import_state`` rename them
to and from canonical names with the weights' converter (``keras_impl.weights``).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_impl.model import Seq2Seq
from keras_impl.weights import from_canonical, to_canonical
from shared.checkpoint.training_state import SLOTS, OptimizerSettings, OptimizerState


class Adam(keras.optimizers.Adam):
    """Keras's Adam with epsilon added after the bias correction, as PyTorch adds it."""

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        t = ops.cast(self.iterations + 1, variable.dtype)
        correction_1 = 1 - ops.power(ops.cast(self.beta_1, variable.dtype), t)       # 1 - β₁ᵗ
        correction_2 = 1 - ops.power(ops.cast(self.beta_2, variable.dtype), t)       # 1 - β₂ᵗ
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        # √v̂ + ε, with v̂ = v / (1 - β₂ᵗ): epsilon after the correction.
        denominator = ops.add(ops.divide(ops.sqrt(v), ops.sqrt(correction_2)), self.epsilon)
        self.assign_sub(variable, ops.divide(ops.multiply(m, lr / correction_1), denominator))


def build_optimizer(model: Seq2Seq, settings: OptimizerSettings):
    """A Keras optimizer for ``settings``, built on the model's trainable variables.

    ``Adam`` above or plain SGD; clipping by the global norm is the optimizer's own
    (``global_clipnorm``), where PyTorch's loop calls ``clip_grad_norm_``.
    """
    if settings.name == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=settings.lr,
                                         global_clipnorm=settings.clip_norm)
    else:
        optimizer = Adam(learning_rate=settings.lr, beta_1=settings.beta_1,
                         beta_2=settings.beta_2, epsilon=settings.epsilon,
                         global_clipnorm=settings.clip_norm)
    optimizer.build(model.trainable_variables)
    return optimizer


def _slot_variables(optimizer) -> dict[str, list]:
    """Each slot's Keras variables, in the order of the variables they belong to."""
    if isinstance(optimizer, keras.optimizers.Adam):
        return {"m": optimizer._momentums, "v": optimizer._velocities}
    return {}


def export_state(model: Seq2Seq, optimizer, settings: OptimizerSettings, step: int
                 ) -> OptimizerState:
    """The optimizer's state, keyed by canonical names (an LSTM's b_hh: zeros, as its weight)."""
    slots = {}
    for slot, kept in _slot_variables(optimizer).items():
        slots[slot] = to_canonical(
            model, read=lambda v, kept=kept: kept[optimizer._get_variable_index(v)])
    assert sorted(slots) == sorted(SLOTS[settings.name]), (sorted(slots), settings.name)
    return OptimizerState(settings, step, slots)


def import_state(model: Seq2Seq, optimizer, state: OptimizerState) -> None:
    """Put a checked neutral state into ``optimizer``, as if it had taken ``state.step`` steps."""
    optimizer.iterations.assign(state.step)
    for slot, kept in _slot_variables(optimizer).items():
        from_canonical(model, state.slots[slot],
                       write=lambda v, value, kept=kept: kept[
                           optimizer._get_variable_index(v)].assign(value))
