"""What differs per Keras backend, and nothing else: seeding, compiling, gradients, a train step.

Keras 3 runs one model on TensorFlow, JAX or PyTorch, chosen by ``KERAS_BACKEND``
before Keras is first imported.  The layers, ``keras.ops`` and the optimizers are
the same on all three; what Keras leaves to the program is how to compile a
function and how to take gradients.  This module writes those the way the Keras
guides write a custom training step for each backend ("Writing a training loop
from scratch in TensorFlow / JAX / PyTorch"), so that the model, the API and the
training loop read the same on every backend.

                 compile encode/decode    gradients                     train step
    tensorflow   tf.function (a graph)    tf.GradientTape               apply_gradients, traced
    jax          jax.jit, StatelessScope  jax.value_and_grad            stateless_apply, jitted
    torch        eager, torch.no_grad()   loss.backward(), .value.grad  optimizer.apply, eager

Embedding gradients: TensorFlow's tape returns ``IndexedSlices`` (one slice per
token occurrence), JAX and PyTorch a dense array; only TensorFlow needs the
densify step that makes Keras's Adam take PyTorch's step (see ``_tf_dense``).

Shapes: B batch, S source length, T target length, V_tgt target vocabulary.
"""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Callable

import keras
import numpy as np
from keras.src.utils import module_utils as _module_utils  # see no_tensorflow_import

BACKEND = keras.backend.backend()
SUPPORTED = ("tensorflow", "jax", "torch")
if BACKEND not in SUPPORTED:
    raise ImportError(
        f"keras_impl runs Keras on {', '.join(SUPPORTED)}; KERAS_BACKEND is {BACKEND!r}. "
        "Set KERAS_BACKEND to one of those before Python starts."
    )

if BACKEND == "tensorflow":
    import tensorflow as tf
elif BACKEND == "jax":
    import jax
else:
    import torch


def seed(value: int) -> None:
    """Seed Python, NumPy and Keras's global seed generator, as ``keras.utils.set_random_seed``.

    ``set_random_seed`` also seeds TensorFlow whenever TensorFlow is installed,
    which imports it (seconds of start-up, a second framework) into a JAX or PyTorch program.
    Off TensorFlow we take its other steps ourselves; tests/test_keras_backend_checks.py
    checks that both give the same weights.
    """
    if BACKEND == "tensorflow":
        keras.utils.set_random_seed(value)
        return
    from keras.src.backend.common import global_state  # what set_random_seed resets

    global_state.set_global_attribute("global_random_seed", value)
    global_state.set_global_attribute("global_seed_generator", None)
    random.seed(value)
    np.random.seed(value)
    if BACKEND == "torch":
        torch.manual_seed(value)


@contextlib.contextmanager
def no_tensorflow_import():
    """Keep Keras from importing TensorFlow, off TensorFlow, while a layer is made.

    ``keras.layers.Bidirectional`` serialises the layer it wraps, and Keras's
    serialiser asks whether TensorFlow is installed (``module_utils.tensorflow``, a
    lazy module) to recognise ``tf.TensorShape`` and the like: asking imports it,
    seconds of start-up and a second framework in a JAX or PyTorch program.  While TensorFlow is
    not imported no TensorFlow object can exist, so "not available" is the true
    answer; it is given for the duration of the block only.
    """
    lazy = getattr(_module_utils, "tensorflow", None)
    if BACKEND == "tensorflow" or "tensorflow" in sys.modules or lazy is None or (
            getattr(lazy, "_available", True) is not None):
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None  # asked again next time


def compile_fn(fn: Callable, model: keras.Model, signature: list) -> Callable:
    """``fn`` (a model method on backend tensors) compiled the way this backend compiles.

    Args:
        signature: one ``(shape, dtype)`` per argument, ``None`` for a free size
            (a state argument is a tuple of them).  TensorFlow traces one graph for
            it; JAX compiles once per concrete shape; PyTorch runs eagerly.
    """
    if BACKEND == "tensorflow":
        specs = [_tf_spec(arg) for arg in signature]
        return tf.function(fn, input_signature=specs)
    if BACKEND == "jax":
        variables = model.variables
        # jax.jit needs a pure function: the weights come in as arguments, and
        # StatelessScope makes the layers read them instead of their variables.
        def pure(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                return fn(*args)

        jitted = jax.jit(pure)
        return lambda *args: jitted([v.value for v in variables], *args)

    def no_grad(*args):  # inference: no autograd graph for backward
        with torch.no_grad():
            return fn(*args)

    return no_grad


def _tf_spec(arg):
    if not isinstance(arg[-1], str):                                        # a state tuple
        return tuple(_tf_spec(part) for part in arg)
    shape, dtype = arg
    return tf.TensorSpec(shape, dtype)


def loss_and_grads(model: keras.Model, loss_of: Callable, inputs: tuple) -> tuple[float, list]:
    """The loss ``loss_of(model, *inputs)`` and its gradients, one per trainable variable.

    Returns:
        (loss, grads): a float, and NumPy arrays in ``model.trainable_variables`` order.
    """
    variables = model.trainable_variables
    if BACKEND == "tensorflow":
        with tf.GradientTape() as tape:
            loss = loss_of(model, *inputs)
        grads = _tf_dense(tape.gradient(loss, variables))
    elif BACKEND == "jax":
        if getattr(model, "_jax_loss_and_grads", None) is None:  # compiled once per model
            model._jax_loss_and_grads = jax.jit(jax.value_and_grad(_jax_loss(model, loss_of)))
        loss, grads = model._jax_loss_and_grads(
            [v.value for v in variables], [v.value for v in model.non_trainable_variables],
            *inputs,
        )
    else:
        model.zero_grad()
        loss = loss_of(model, *inputs)
        loss.backward()
        loss, grads = loss.detach(), [v.value.grad for v in variables]
    return float(loss), [keras.ops.convert_to_numpy(g) for g in grads]


def _tf_dense(grads: list) -> list:
    """TensorFlow's embedding gradients as dense tensors instead of ``IndexedSlices``.

    ``IndexedSlices`` hold one slice per token occurrence.  Keras's Adam squares
    each slice on its own, so a token seen n times in a batch gets n * g^2 in v
    instead of (n * g)^2, and a step sqrt(n) times PyTorch's.  Dense gradients
    give the update that PyTorch, JAX and the NumPy reference make.
    """
    return [tf.convert_to_tensor(g) for g in grads]


def _jax_loss(model, loss_of, training=False):
    """``loss_of`` as a pure function of the variables' values (for value_and_grad)."""
    trainable, non_trainable = model.trainable_variables, model.non_trainable_variables

    def pure(trainable_values, non_trainable_values, *inputs):
        mapping = list(zip(trainable, trainable_values, strict=True))
        mapping += list(zip(non_trainable, non_trainable_values, strict=True))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            loss = loss_of(model, *inputs, training=training)
        # Dropout advances its seed generator: carry the new seed state out.
        return loss, [scope.get_current_value(v) for v in non_trainable]

    if training:
        return pure
    return lambda *args: pure(*args)[0]


class TrainStep:
    """One optimisation step, ``step(*inputs) -> loss``, compiled for this backend.

    ``finish()`` writes the trained values back into the model's variables (JAX
    trains on values outside the model; TensorFlow and PyTorch update in place).
    """

    def __init__(self, model: keras.Model, optimizer, loss_of: Callable, signature: list):
        self.model, self.optimizer = model, optimizer
        variables = model.trainable_variables
        if BACKEND == "tensorflow":
            # The optimizer's slots made now, not on the first call: a tf.function that
            # creates variables traces its Python function twice (the train step's trace
            # is most of the cost of a short training run).
            optimizer.build(variables)

            def step(*inputs):
                with tf.GradientTape() as tape:
                    loss = loss_of(model, *inputs, training=True)
                grads = _tf_dense(tape.gradient(loss, variables))
                optimizer.apply_gradients(zip(grads, variables, strict=True))
                return loss

            self._step = tf.function(step, input_signature=[_tf_spec(a) for a in signature])
        elif BACKEND == "jax":
            optimizer.build(variables)
            grad_fn = jax.value_and_grad(_jax_loss(model, loss_of, training=True), has_aux=True)

            def step(state, *inputs):
                trainable, non_trainable, optimizer_values = state
                (loss, non_trainable), grads = grad_fn(trainable, non_trainable, *inputs)
                trainable, optimizer_values = optimizer.stateless_apply(
                    optimizer_values, grads, trainable
                )
                return loss, (trainable, non_trainable, optimizer_values)

            self._step = jax.jit(step)
            self._state = (
                [v.value for v in variables],
                [v.value for v in model.non_trainable_variables],
                [v.value for v in optimizer.variables],
            )
        else:
            def step(*inputs):
                model.zero_grad()
                loss = loss_of(model, *inputs, training=True)
                loss.backward()
                grads = [v.value.grad for v in variables]
                with torch.no_grad():
                    optimizer.apply(grads, variables)
                return loss.detach()

            self._step = step

    def __call__(self, *inputs) -> float:
        if BACKEND == "jax":
            loss, self._state = self._step(self._state, *inputs)
            return float(loss)
        return float(self._step(*inputs))

    def finish(self) -> None:
        if BACKEND != "jax":
            return
        trainable, non_trainable, optimizer_values = self._state
        for variable, value in zip(self.model.trainable_variables, trainable, strict=True):
            variable.assign(value)
        for variable, value in zip(self.model.non_trainable_variables, non_trainable,
                                   strict=True):
            variable.assign(value)
        for variable, value in zip(self.optimizer.variables, optimizer_values, strict=True):
            variable.assign(value)
