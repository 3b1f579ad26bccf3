"""Training settings with one name and two meanings in Keras 3 and PyTorch.

The forward pass of a ported model can agree to 1e-7 and its training still
differ, because some optimizer and embedding settings do different things in
the two frameworks.  Each is shown with one step on tiny tensors:

* **Adam on embeddings** (Keras on TensorFlow): an ``Embedding``'s gradient is
  a ``tf.IndexedSlices``, one slice per token occurrence, and Keras's Adam
  squares the slices one by one: v gets g1² + ... + gn², not (g1 + ... + gn)².
  For a token seen n times with equal gradients the first step is sqrt(n)
  times PyTorch's (1.41 for 2, 3.46 for 12); unequal gradients give less
  (|sum g| / sqrt(sum g²) <= sqrt(n)).  Densify the gradient to match
  (``keras_impl/train.py`` does).
* **clipnorm**: Keras ``clipnorm=`` clips each variable's gradient by its own
  norm; ``torch.nn.utils.clip_grad_norm_`` clips by the norm of all of them
  together, which is Keras's ``global_clipnorm=``.
* **weight_decay**: Keras ``Adam(weight_decay=)`` shrinks the weights
  directly, apart from the gradient (decoupled: PyTorch's ``AdamW``);
  PyTorch's ``Adam(weight_decay=)`` adds wd * w to the gradient (L2), which
  Adam then rescales.
* **padding_idx vs mask_zero**: ``nn.Embedding(padding_idx=0)`` starts row 0 at
  zeros and never gives it a gradient; Keras ``Embedding(mask_zero=True)``
  only attaches a mask: row 0 is initialised like any other and gets a
  gradient from any layer that reads it.

Sources: keras/src/optimizers/adam.py and base_optimizer.py (``_clip_gradients``,
``_apply_weight_decay``), torch/optim/adam.py, torch/nn/modules/sparse.py.

Run: python docs/examples/10_training_differences.py

Shapes: V vocabulary, E embedding.
"""

import os
import sys
from pathlib import Path

os.environ["KERAS_BACKEND"] = "tensorflow"
# As in the test suite: fewer TensorFlow log lines, and oneDNN off for repeatable numbers.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# Run from a checkout without installing: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import keras
import numpy as np
import tensorflow as tf
import torch

from shared.core.compare import assert_close

V, E = 5, 3
LR = 0.1
TOKEN = 2                                   # the token id that occurs n times
DIRECTION = np.array([0.5, -1.0, 2.0], "float32")   # (E,): d loss / d embedding, each occurrence


def keras_embedding_step(n: int, densify: bool) -> np.ndarray:
    """One Keras Adam step on an embedding whose row TOKEN occurs n times; returns that row."""
    embedding = keras.layers.Embedding(V, E)
    embedding.build((None,))
    embedding.set_weights([np.zeros((V, E), "float32")])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(embedding(tf.constant([[TOKEN] * n])) * DIRECTION)  # (1, n, E) summed
    (gradient,) = tape.gradient(loss, embedding.trainable_variables)
    assert isinstance(gradient, tf.IndexedSlices), "TensorFlow gives embeddings sparse gradients"
    if densify:
        gradient = tf.convert_to_tensor(gradient)  # (V, E): the occurrences summed first
    keras.optimizers.Adam(learning_rate=LR).apply_gradients([(gradient, embedding.embeddings)])
    return np.asarray(embedding.embeddings)[TOKEN]


def torch_embedding_step(n: int) -> np.ndarray:
    """The same step in PyTorch, whose embedding gradient is dense."""
    embedding = torch.nn.Embedding(V, E)
    torch.nn.init.zeros_(embedding.weight)
    optimizer = torch.optim.Adam(embedding.parameters(), lr=LR)
    (embedding(torch.full((1, n), TOKEN)) * torch.from_numpy(DIRECTION)).sum().backward()
    optimizer.step()
    return embedding.weight.detach().numpy()[TOKEN].copy()


def adam_on_embeddings() -> None:
    for n in (2, 12):
        sparse = keras_embedding_step(n, densify=False)
        dense = keras_embedding_step(n, densify=True)
        ratio = np.abs(sparse / dense)                                    # (E,)
        assert_close(f"first-step ratio for {n} occurrences", ratio, np.full(E, np.sqrt(n)), 1e-4)
        assert_close(f"densified Keras vs PyTorch, {n} occurrences", dense,
                     torch_embedding_step(n), 1e-5)
        print(f"Adam on an embedding row seen {n:2d} times: Keras's sparse step is "
              f"{ratio.mean():.3f}x PyTorch's (sqrt({n}) = {np.sqrt(n):.3f}); densified: equal")


GRADIENTS = [np.array([3.0, 4.0], "float32"), np.array([12.0], "float32")]  # norms 5 and 12


def keras_clipped(**clipping) -> list[np.ndarray]:
    """The gradients Keras applies after clipping: SGD with lr = 1 moves each weight by -g."""
    weights = [keras.Variable(np.zeros_like(g)) for g in GRADIENTS]
    keras.optimizers.SGD(learning_rate=1.0, **clipping).apply_gradients(
        [(tf.constant(g), w) for g, w in zip(GRADIENTS, weights, strict=True)])
    return [-np.asarray(w) for w in weights]


def clipping() -> None:
    per_variable = keras_clipped(clipnorm=1.0)
    global_norm = keras_clipped(global_clipnorm=1.0)
    params = [torch.zeros(len(g), requires_grad=True) for g in GRADIENTS]
    for param, gradient in zip(params, GRADIENTS, strict=True):
        param.grad = torch.from_numpy(gradient.copy())
    torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
    for k, gradient in enumerate(GRADIENTS):
        norm = np.linalg.norm(gradient)
        assert_close(f"clipnorm: variable {k} to norm 1 alone", per_variable[k], gradient / norm,
                     1e-6)
        assert_close(f"global_clipnorm: variable {k} / 13", global_norm[k], gradient / 13.0, 1e-6)
        assert_close(f"clip_grad_norm_ = global_clipnorm, variable {k}", params[k].grad.numpy(),
                     global_norm[k], 1e-6)
    print("clip to 1, gradient norms 5 and 12: Keras clipnorm ->",
          [round(float(np.linalg.norm(g)), 3) for g in per_variable],
          "each; global_clipnorm and torch clip_grad_norm_ ->",
          [round(float(np.linalg.norm(g)), 3) for g in global_norm])


def weight_decay() -> None:
    w0, gradient, wd = 2.0, 0.5, 0.01
    keras_w = keras.Variable(np.array([w0], "float32"))
    keras.optimizers.Adam(learning_rate=LR, weight_decay=wd).apply_gradients(
        [(tf.constant([gradient]), keras_w)])
    after = {}
    for name, optimizer in (("Adam", torch.optim.Adam), ("AdamW", torch.optim.AdamW)):
        w = torch.tensor([w0], requires_grad=True)
        w.grad = torch.tensor([gradient])
        optimizer([w], lr=LR, weight_decay=wd).step()
        after[name] = float(w.detach()[0])
    decoupled = w0 * (1 - LR * wd) - LR  # shrink w, then Adam's first step: lr * sign(g)
    assert_close("Keras Adam(weight_decay)", np.asarray(keras_w), [decoupled], 1e-5)
    assert_close("PyTorch AdamW(weight_decay) = Keras Adam", [after["AdamW"]], [decoupled], 1e-5)
    assert abs(after["Adam"] - decoupled) > 1e-3, "PyTorch Adam's L2 decay is another update"
    print(f"one step from w = {w0}, g = {gradient}, wd = {wd}: Keras Adam {float(keras_w[0]):.5f}, "
          f"torch AdamW {after['AdamW']:.5f}, torch Adam {after['Adam']:.5f} (L2: wd * w "
          "joins g and is normalised away)")


def padding_row() -> None:
    keras_embedding = keras.layers.Embedding(V, E, mask_zero=True)
    keras_embedding.build((None,))
    ids = np.array([[3, 0, 0]])                                           # a PAD = 0 row tail
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(keras_embedding(ids))  # read directly: nothing consumes the mask
    keras_grad = tf.convert_to_tensor(tape.gradient(loss, keras_embedding.embeddings))
    torch_embedding = torch.nn.Embedding(V, E, padding_idx=0)
    torch_embedding(torch.from_numpy(ids)).sum().backward()
    keras_row = np.asarray(keras_embedding.embeddings)[0]                 # (E,)
    torch_row = torch_embedding.weight.detach().numpy()[0]                # (E,)
    assert np.abs(keras_row).max() > 0, "Keras initialises the PAD row like any other"
    assert_close("nn.Embedding(padding_idx=0) row 0 at init", torch_row, np.zeros(E), 0.0)
    assert_close("Keras mask_zero: row 0's gradient (two PAD reads)", keras_grad[0],
                 np.full(E, 2.0), 0.0)
    assert_close("padding_idx: row 0's gradient", torch_embedding.weight.grad.numpy()[0],
                 np.zeros(E), 0.0)
    print("PAD row: nn.Embedding(padding_idx=0) starts at 0 and gets no gradient; Keras "
          "Embedding(mask_zero=True) starts random and gets one (here 2 per element: 2 PAD reads)")


def main() -> None:
    keras.utils.set_random_seed(0)  # seeds Keras, TensorFlow, NumPy and Python
    torch.manual_seed(0)
    adam_on_embeddings()
    clipping()
    weight_decay()
    padding_row()


if __name__ == "__main__":
    main()
