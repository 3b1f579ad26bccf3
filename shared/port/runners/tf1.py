"""Run a TF1 cell from a checkpoint in real TF1 code, for ``--check``.

The cell (``LSTMCell``, ``BasicLSTMCell`` or ``GRUCell`` of
``tensorflow.python.keras.layers.legacy_rnn.rnn_cell_impl``, the TF1 cells
that TensorFlow 2 still ships) runs under ``tf.compat.v1.nn.dynamic_rnn`` in a
``tf.compat.v1`` graph, holding the checkpoint's own arrays, with
``sequence_length`` and an initial state (an LSTM's as ``LSTMStateTuple(c, h)``:
TF1 puts c first).  Conventions as in ``run_torch``.

Shape legend: B batch, T steps, H hidden.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np


def available() -> bool:
    try:
        from tensorflow.python.keras.layers.legacy_rnn import rnn_cell_impl  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def _quiet(tf):
    """TF1 APIs warn that they are deprecated, each; they are what is being run, on purpose."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.setLevel(level)


def cell(layer, x: np.ndarray, lengths: np.ndarray, h0: np.ndarray, c0: np.ndarray | None):
    """The layer's TF1 cell on a padded batch; returns (outputs (B, T, H), h_n (1, B, H), c_n)."""
    import tensorflow as tf
    from tensorflow.python.keras.layers.legacy_rnn import rnn_cell_impl

    graph = tf.Graph()
    with _quiet(tf), graph.as_default():
        cls = getattr(rnn_cell_impl, layer.settings["cell"])
        if layer.cell == "lstm":
            tf1_cell = cls(layer.hidden, forget_bias=layer.settings["forget_bias"])
            start = rnn_cell_impl.LSTMStateTuple(c0[0], h0[0])  # (c, h): TF1's order
        else:
            tf1_cell = cls(layer.hidden)
            start = h0[0]
        outputs, final = tf.compat.v1.nn.dynamic_rnn(
            tf1_cell, tf.constant(x), sequence_length=tf.constant(lengths), initial_state=start
        )
        depth = 1 if layer.cell == "lstm" else 2  # "kernel" vs "gates/kernel"
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for variable in tf1_cell.variables:
                name = "/".join(variable.name.split(":")[0].split("/")[-depth:])
                variable.load(layer.raw[name], session)
            outputs, final = session.run([outputs, final])
    if layer.cell == "lstm":
        return outputs, final.h[None], final.c[None]
    return outputs, final[None], None
