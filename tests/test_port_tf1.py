"""``seq2seq-rosetta port`` from real TF1 checkpoints, written by TF1 cells in a v1 graph.

One ``tf.compat.v1`` graph, built once for the module, holds the cells that
TF1 seq2seq code used (``legacy_rnn``'s ``rnn_cell_impl``, as
``tests/peers.py`` runs them): a two-layer ``MultiRNNCell`` of
``LSTMCell``s, a ``GRUCell`` and an ``LSTMCell`` with peepholes, each saved
with ``tf.compat.v1.train.Saver`` to its own checkpoint, random weights
everywhere.  The LSTM stack is ported to both frameworks and, in PyTorch, run
as printed against TF1's own outputs; the GRUCell goes to Keras
(``reset_after=False``) and is refused for PyTorch; the peepholes are refused.

Shape legend: B batch, T steps, H hidden.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from shared.core.compare import STATE_ATOL, assert_close
from shared.port import read
from tests.port_support import run_port, torch_tree

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")
try:
    from tensorflow.python.keras.layers.legacy_rnn import rnn_cell_impl
except ImportError as error:  # pragma: no cover - depends on the TensorFlow build
    pytest.skip(f"TF1 cells (legacy_rnn) are not in this TensorFlow: {error}",
                allow_module_level=True)

INPUTS, H = 3, 4
LENGTHS = np.array([5, 1, 3])  # mixed, with a length-1 row


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{"lstm" | "gru" | "peepholes": checkpoint prefix}, and TF1's own run of the LSTM stack."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(len(LENGTHS), max(LENGTHS), INPUTS)).astype(np.float32)  # (B, T, in)
    folder = tmp_path_factory.mktemp("tf1")
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # each TF1 cell warns it is deprecated
        stack = rnn_cell_impl.MultiRNNCell([rnn_cell_impl.LSTMCell(H), rnn_cell_impl.LSTMCell(H)])
        outputs, final = tf.compat.v1.nn.dynamic_rnn(
            stack, tf.constant(x), sequence_length=tf.constant(LENGTHS), dtype=tf.float32)
        with tf.compat.v1.variable_scope("decoder"):
            gru = rnn_cell_impl.GRUCell(H)
            tf.compat.v1.nn.dynamic_rnn(gru, tf.constant(x), dtype=tf.float32)
        with tf.compat.v1.variable_scope("peep"):
            peephole = rnn_cell_impl.LSTMCell(H, use_peepholes=True)
            tf.compat.v1.nn.dynamic_rnn(peephole, tf.constant(x), dtype=tf.float32)
        prefixes = {}
        with tf.compat.v1.Session(graph=graph) as session:
            for variable in tf.compat.v1.global_variables():
                variable.load(rng.uniform(-0.5, 0.5, variable.shape).astype(np.float32), session)
            for name, cell in (("lstm", stack), ("gru", gru), ("peepholes", peephole)):
                (folder / name).mkdir()
                saver = tf.compat.v1.train.Saver(var_list=cell.variables)
                prefixes[name] = saver.save(session, str(folder / name / "model.ckpt"))
            tf1_outputs, tf1_final = session.run([outputs, final])
    return prefixes, x, tf1_outputs, tf1_final


def test_multirnncell_of_lstmcells_ported_to_torch_runs_as_tf1_did(checkpoints, tmp_path, capsys):
    prefixes, x, tf1_outputs, tf1_final = checkpoints
    dst = tmp_path / "stack.pt"
    code, report, err = run_port(capsys, prefixes["lstm"], "--to", "torch", "--out", dst,
                                 "--check")
    assert (code, err) == (0, ""), report + err
    for line in ("rnn.multi_rnn_cell.cell_0.lstm_cell = nn.LSTM(3, 4, batch_first=True)",
                 "rnn.multi_rnn_cell.cell_1.lstm_cell = nn.LSTM(4, 4, batch_first=True)",
                 "TF1 forget_bias 1.0 folded into the forget-gate bias",
                 "tf1 legacy_rnn", "2 of 2 layers within 1e-05"):
        assert line in report, f"{line!r} not in the report:\n{report}"

    tree = torch_tree(report)
    tree.load_state_dict(torch.load(dst, weights_only=True), strict=True)
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    y = torch.from_numpy(x)
    with torch.no_grad():
        for k, cell in enumerate((tree.rnn.multi_rnn_cell.cell_0.lstm_cell,
                                  tree.rnn.multi_rnn_cell.cell_1.lstm_cell)):
            packed = pack_padded_sequence(y, torch.from_numpy(LENGTHS), batch_first=True,
                                          enforce_sorted=False)
            y, (h, c) = cell(packed)
            y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
            assert_close(f"layer {k} h vs TF1", h[0].numpy(), tf1_final[k].h, STATE_ATOL)
            assert_close(f"layer {k} c vs TF1", c[0].numpy(), tf1_final[k].c, STATE_ATOL)
    assert_close("stack outputs vs TF1", y.numpy(), tf1_outputs, STATE_ATOL)


def test_multirnncell_ported_to_keras_from_its_folder(checkpoints, tmp_path, capsys):
    prefixes, *_ = checkpoints
    folder = prefixes["lstm"].rsplit("/", 1)[0]
    code, report, err = run_port(capsys, folder, "--to", "keras", "--out",
                                 tmp_path / "stack.safetensors", "--check")
    assert (code, err) == (0, ""), report + err
    assert 'rnn_multi_rnn_cell_cell_1_lstm_cell = keras.layers.LSTM(4, name=' in report
    assert "2 of 2 layers within 1e-05" in report


def test_the_forget_bias_is_folded_into_the_forget_gate_bias(checkpoints, tmp_path, capsys):
    prefixes, *_ = checkpoints
    default, half = (read(prefixes["lstm"], tf1_forget_bias=b).ported()[0] for b in (1.0, 0.5))
    for gate in "igo":
        np.testing.assert_array_equal(default.weights[f"l0.forward.{gate}.b_ih"],
                                      half.weights[f"l0.forward.{gate}.b_ih"], err_msg=gate)
    np.testing.assert_allclose(default.weights["l0.forward.f.b_ih"]
                               - half.weights["l0.forward.f.b_ih"], 0.5, atol=1e-6)
    # A cell built with forget_bias=0.5 runs as the port made with it.
    code, report, err = run_port(capsys, prefixes["lstm"], "--to", "torch", "--out",
                                 tmp_path / "half.safetensors", "--check",
                                 "--tf1-forget-bias", "0.5")
    assert (code, err) == (0, ""), report + err
    assert "TF1 forget_bias 0.5 folded" in report


def test_gru_cell_goes_to_keras_reset_after_false_and_is_refused_for_torch(
    checkpoints, tmp_path, capfd
):
    # capfd, not capsys: what TensorFlow's C++ side writes to fd 2 must not reach stderr either.
    prefixes, *_ = checkpoints
    code, report, err = run_port(capfd, prefixes["gru"], "--to", "keras", "--out",
                                 tmp_path / "gru.safetensors", "--check")
    assert (code, err) == (0, ""), report + err
    assert ('decoder_rnn_gru_cell = keras.layers.GRU(4, reset_after=False, '
            'name="decoder_rnn_gru_cell")') in report
    assert "1 of 1 layers within 1e-05" in report
    dst = tmp_path / "gru.pt"
    code, out, err = run_port(capfd, prefixes["gru"], "--to", "torch", "--out", dst)
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert ("'decoder.rnn.gru_cell' (TF1 GRUCell is a GRU that resets before the recurrent "
            "product (every TF1 GRUCell does); nn.GRU resets after it") in err
    assert not dst.exists()


def test_peepholes_are_refused_for_both_targets(checkpoints, tmp_path, capsys):
    prefixes, *_ = checkpoints
    for target in ("torch", "keras"):
        code, out, err = run_port(capsys, prefixes["peepholes"], "--to", target, "--out",
                                  tmp_path / "peep.safetensors")
        assert code == 2 and out == "" and len(err.splitlines()) == 1, err
        assert "'peep.rnn.lstm_cell' (TF1 LSTMCell has peephole weights" in err
