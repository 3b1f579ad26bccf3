"""``seq2seq-rosetta port`` from TF2 object-based checkpoints, and a SavedModel's message.

tf.keras 2.x does not install next to Keras 3, so the checkpoint is written by
``tf.train.Checkpoint`` itself over ``tf.Module`` objects laid out as tf.keras
2.x lays out a subclassed translator (``encoder/gru/cell/kernel``,
``decoder/fc/kernel``, a Bidirectional's ``forward_layer/cell/...``), holding the
arrays of real Keras layers with random weights; those Keras layers give the
source's own outputs.  The same objects saved as a SavedModel are refused with
the path of their weights, which then ports.

Shape legend: B batch, S source length, E embedding, H hidden, V vocabulary.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared.core.compare import STATE_ATOL, assert_close
from tests.port_support import LENGTHS, ported, refused_port, torch_tree

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
import torch_impl  # noqa: E402

V, E, H = 11, 4, 5


def module(**attributes):
    """A tf.Module whose attributes are the objects (or variables) given: one object path."""
    found = tf.Module()
    for name, value in attributes.items():
        setattr(found, name, tf.Variable(value) if isinstance(value, np.ndarray) else value)
    return found


def cell(layer):
    kernel, recurrent_kernel, bias = layer.get_weights()
    return module(cell=module(kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias))


@pytest.fixture(scope="module")
def keras_layers_and_checkpoint(tmp_path_factory):
    """Keras layers with random weights, and a tf.train.Checkpoint of them in tf.keras paths."""
    rng = np.random.default_rng(3)
    embedding = keras.layers.Embedding(V, E)
    gru = keras.layers.GRU(H, return_sequences=True)
    bidirectional = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True))
    fc = keras.layers.Dense(V)
    x = embedding(np.zeros((1, 2), "int32"))
    fc(bidirectional(gru(x)))
    for layer in (embedding, gru, bidirectional, fc):
        layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32)
                           for w in layer.get_weights()])
    forward, backward = (cell(side) for side in (bidirectional.forward_layer,
                                                 bidirectional.backward_layer))
    model = module(
        encoder=module(embedding=module(embeddings=embedding.get_weights()[0]), gru=cell(gru)),
        decoder=module(lstm=module(forward_layer=forward, backward_layer=backward),
                       fc=module(kernel=fc.get_weights()[0], bias=fc.get_weights()[1])))
    folder = tmp_path_factory.mktemp("tf2")
    optimizer = module(iter=np.array(7, np.int64))
    prefix = tf.train.Checkpoint(model=model, optimizer=optimizer).save(str(folder / "ckpt"))
    return (embedding, gru, bidirectional, fc), model, prefix, folder


def test_tf2_checkpoint_paths_port_to_torch_and_give_the_keras_layers_outputs(
    keras_layers_and_checkpoint, tmp_path, capsys
):
    (embedding, gru, bidirectional, fc), _, prefix, _ = keras_layers_and_checkpoint
    dst = tmp_path / "tf2.safetensors"
    report = ported(capsys, prefix, "--to", "torch", "--out", dst, "--check", lines=(
        "(TF2 object-based checkpoint)", "the model is the checkpoint's object 'model'",
        "tf.keras's defaults (tanh, sigmoid) are assumed",
        "encoder.gru = nn.GRU(4, 5, batch_first=True)",
        "decoder.lstm = nn.LSTM(5, 3, bidirectional=True, batch_first=True)",
        "decoder.fc = nn.Linear(6, 11)", "training-state variables",
        "4 of 4 layers within 1e-05"))

    tree = torch_tree(report)
    torch_impl.load_ported(tree, dst)
    ids = np.random.default_rng(4).integers(0, V, (len(LENGTHS), max(LENGTHS)))
    mask = np.arange(max(LENGTHS)) < LENGTHS[:, None]
    expected = keras.ops.convert_to_numpy(
        fc(bidirectional(gru(embedding(ids), mask=mask), mask=mask)))
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    with torch.no_grad():
        y = tree.encoder.embedding(torch.from_numpy(ids))
        for rnn in (tree.encoder.gru, tree.decoder.lstm):
            packed = pack_padded_sequence(y, torch.from_numpy(LENGTHS), batch_first=True,
                                          enforce_sorted=False)
            y, _ = pad_packed_sequence(rnn(packed)[0], batch_first=True,
                                       total_length=max(LENGTHS))
        logits = tree.decoder.fc(y).numpy()
    assert_close("logits from a TF2 checkpoint, ported to PyTorch", logits[mask], expected[mask],
                 STATE_ATOL)


def test_a_saved_model_is_refused_with_the_path_of_its_weights(keras_layers_and_checkpoint,
                                                              tmp_path, capsys):
    _, model, _, folder = keras_layers_and_checkpoint
    saved = folder / "exported"
    tf.saved_model.save(model, str(saved))
    for src in (saved, saved / "saved_model.pb"):
        err = refused_port(capsys, src, "--to", "torch", "--out", tmp_path / "x.pt")
        assert f"{saved} is a TensorFlow SavedModel, which port does not load" in err
        assert f"port {saved}/variables/variables" in err
    report = ported(capsys, saved / "variables" / "variables", "--to", "keras", "--out",
                    tmp_path / "weights.safetensors", "--check")
    assert 'encoder_gru = keras.layers.GRU(5, name="encoder_gru")' in report
    assert "4 of 4 layers within 1e-05" in report
