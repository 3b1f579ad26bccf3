"""What keras_impl imports and how it seeds, on Keras's JAX and PyTorch backends.

Marked every_keras_backend, these run in ``make test``'s runs on Keras on JAX and on
PyTorch (tests/run.py), first, before any other test has imported anything: the
file's name sorts before the others of those runs.  Under TensorFlow they skip;
there tests/test_imports.py checks that keras_impl loads no torch.  By hand:
``KERAS_BACKEND=jax python -m pytest tests/test_keras_backend_checks.py``.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from shared import Seq2SeqConfig
from tests.support import KERAS_BACKEND

pytestmark = [
    pytest.mark.every_keras_backend,
    pytest.mark.skipif(KERAS_BACKEND == "tensorflow",
                       reason="checks Keras on JAX and on PyTorch: KERAS_BACKEND=jax or torch"),
]

# Bidirectional: Keras's own Bidirectional would import TensorFlow when it is installed
# (its constructor serialises the layer: keras/src/saving/serialization_lib.py);
# keras_impl keeps it from doing so (per_backend.no_tensorflow_import).
CONFIG = Seq2SeqConfig(9, 8, 4, 5, num_layers=1, bidirectional=True)


def test_keras_impl_itself_loads_no_tensorflow():
    assert "tensorflow" not in sys.modules, "something imported TensorFlow before this test"
    import keras_impl

    assert keras_impl.BACKEND == KERAS_BACKEND
    model = keras_impl.build_model(CONFIG, seed=1)
    src = np.array([[5, 6, 0], [0, 0, 0]])
    tgt_in = np.array([[1, 4, 5], [1, 0, 0]])
    tgt_out = np.array([[4, 5, 2], [2, 0, 0]])
    h, c = keras_impl.encode(model, src)
    assert h.shape == c.shape == (1, 2, 10) and not h[:, 1].any()
    keras_impl.decode(model, tgt_in, (h, c))
    keras_impl.loss_and_gradients(model, src, tgt_in, tgt_out)
    keras_impl.train(model, [_batch(src, tgt_in, tgt_out)], epochs=1, verbose=False)
    keras_impl.beam_decode(model, src, 2, 4)
    assert "tensorflow" not in sys.modules, "keras_impl loaded TensorFlow on " + KERAS_BACKEND


def _batch(src, tgt_in, tgt_out):
    from shared import Batch

    return Batch(src=src, tgt_in=tgt_in, tgt_out=tgt_out)


def test_seeding_matches_keras_set_random_seed():
    """``per_backend.seed`` builds the weights that ``keras.utils.set_random_seed`` builds.

    It copies what set_random_seed does, minus importing TensorFlow; this pins the
    copy to the original (the test itself may import TensorFlow: it runs after the
    import check above).
    """
    import keras

    import keras_impl
    from keras_impl.model import Seq2Seq

    ours = keras_impl.export_weights(keras_impl.build_model(CONFIG, seed=5))
    keras.utils.set_random_seed(5)
    model = Seq2Seq(CONFIG)
    model((np.ones((1, 1), np.int64), np.ones((1, 1), np.int64)))
    theirs = keras_impl.export_weights(model)
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    other = keras_impl.export_weights(keras_impl.build_model(CONFIG, seed=6))
    assert not np.array_equal(ours["decoder.output.W"], other["decoder.output.W"])
