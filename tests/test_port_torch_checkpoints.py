"""``seq2seq-rosetta port`` from what people save in PyTorch besides a bare state_dict.

Written by real PyTorch in the tests: a training checkpoint (``epoch``,
``model_state_dict``, an Adam ``optimizer_state_dict`` that has taken a step,
``loss``), the translation tutorial's ``{"encoder": ..., "decoder": ...}`` (each
sub-model reported on its own), a DDP state_dict (``module.`` on every key) and
a whole pickled model, which is refused with what to save instead.  Each port is
loaded back with ``load_ported`` and gives the source model's own outputs.

Shape legend: B batch, S source length, T target length, E embedding, H hidden,
V vocabulary.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared.core.compare import STATE_ATOL, assert_close
from tests.port_support import (
    LENGTHS,
    keras_layers,
    padded_ids,
    ported,
    randomised,
    refused_port,
    torch_tree,
)

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

import keras_impl  # noqa: E402
import torch_impl  # noqa: E402

V_SRC, V_TGT, E, H = 11, 9, 4, 5


class EncoderRNN(nn.Module):  # the PyTorch seq2seq translation tutorial's, without dropout
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(V_SRC, E)
        self.gru = nn.GRU(E, H, batch_first=True)

    def forward(self, ids):                                   # (B, S) -> h (1, B, H)
        packed = pack_padded_sequence(self.embedding(ids), torch.from_numpy(LENGTHS),
                                      batch_first=True, enforce_sorted=False)
        return self.gru(packed)[1]


class DecoderRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(V_TGT, E)
        self.gru = nn.GRU(E, H, batch_first=True)
        self.out = nn.Linear(H, V_TGT)

    def forward(self, ids, hidden):                           # (B, T) -> logits (B, T, V)
        return self.out(self.gru(torch.relu(self.embedding(ids)), hidden)[0])


def batch(seed: int):
    rng = np.random.default_rng(seed)
    src = padded_ids(rng, V_SRC)
    return torch.from_numpy(src), torch.from_numpy(rng.integers(0, V_TGT, (len(LENGTHS), 3)))


def test_a_training_checkpoint_ports_its_model_and_sets_the_rest_aside(tmp_path, capsys):
    encoder = randomised(EncoderRNN(), seed=0)
    optimizer = torch.optim.Adam(encoder.parameters())
    encoder(batch(0)[0]).sum().backward()
    optimizer.step()  # the optimizer's state now holds exp_avg tensors, as a real one does
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "model_state_dict": encoder.state_dict(),
                "optimizer_state_dict": optimizer.state_dict(), "loss": 0.52}, path)
    dst = tmp_path / "encoder_keras.safetensors"
    report = ported(capsys, path, "--to", "keras", "--out", dst, "--check", lines=(
        "(PyTorch training checkpoint (torch.save))",
        "the model is its state_dict under 'model_state_dict'",
        "also in the file, not weights: epoch=3, loss=0.52",
        "not ported: optimizer_state_dict: training state",
        'gru_l0 = keras.layers.GRU(5, name="gru_l0")', "2 of 2 layers within 1e-05"))

    layers = keras_layers(report, return_state=True)
    ids = keras.Input((None,), dtype="int32")
    _, h = layers["gru_l0"](layers["embedding"](ids), mask=keras.ops.not_equal(ids, 0))
    model = keras.Model(ids, h)
    keras_impl.load_ported(model, dst)
    src, _ = batch(1)
    with torch.no_grad():
        expected = encoder(src)[0].numpy()                    # (B, H)
    assert_close("encoder hand-off h from a training checkpoint",
                 keras.ops.convert_to_numpy(model(src.numpy())), expected, STATE_ATOL)


def test_a_dict_of_state_dicts_reports_each_sub_model_and_loads_into_both(tmp_path, capsys):
    encoder, decoder = randomised(EncoderRNN(), seed=1), randomised(DecoderRNN(), seed=2)
    path = tmp_path / "tutorial.tar"
    torch.save({"encoder": encoder.state_dict(), "decoder": decoder.state_dict()}, path)
    dst = tmp_path / "tutorial.safetensors"
    report = ported(capsys, path, "--to", "torch", "--out", dst, "--check", lines=(
        "a dict of 2 state_dicts (encoder, decoder)",
        "nn.ModuleDict({'encoder': encoder, 'decoder': decoder})",
        " sub-model 'encoder': its own state_dict, 5 tensors",
        " sub-model 'decoder': its own state_dict, 7 tensors",
        "decoder.out = nn.Linear(5, 9)", "5 of 5 layers within 1e-05"))
    assert report.index("sub-model 'encoder'") < report.index("encoder.gru = nn.GRU")

    mine = nn.ModuleDict({"encoder": EncoderRNN(), "decoder": DecoderRNN()}).eval()
    torch_impl.load_ported(mine, dst)
    src, tgt = batch(3)
    with torch.no_grad():
        expected = decoder(tgt, encoder(src)).numpy()
        got = mine["decoder"](tgt, mine["encoder"](src)).numpy()
    assert_close("tutorial logits through both sub-models", got, expected, STATE_ATOL)


def test_ddp_prefix_is_dropped_and_said(tmp_path, capsys):
    encoder = randomised(EncoderRNN(), seed=4)
    path = tmp_path / "ddp.pt"
    torch.save({f"module.{key}": value for key, value in encoder.state_dict().items()}, path)
    dst = tmp_path / "ddp_out.pt"
    report = ported(capsys, path, "--to", "torch", "--out", dst, "--check")
    assert "DDP's prefix 'module.' dropped from every name" in report
    tree = torch_tree(report)
    torch_impl.load_ported(tree, dst)
    for name, value in encoder.state_dict().items():
        torch.testing.assert_close(tree.state_dict()[name], value, rtol=0, atol=0)


@pytest.mark.parametrize("module", [EncoderRNN, lambda: nn.LSTM(3, 4)],
                         ids=["a user's class", "nn.LSTM"])
def test_a_pickled_model_is_refused_with_what_to_save_instead(module, tmp_path, capsys):
    path = tmp_path / "whole_model.pt"
    torch.save(module(), path)
    err = refused_port(capsys, path, "--to", "keras", "--out", tmp_path / "x.safetensors")
    cls = f"{EncoderRNN.__module__}.EncoderRNN" if module is EncoderRNN \
        else "torch.nn.modules.rnn.LSTM"
    assert f"holds a whole pickled model (torch.save(model), class {cls}), not a state_dict" in err
    assert "torch.save(model.state_dict(), 'model.pt')" in err
    assert "add_safe_globals" not in err


def test_a_dict_without_a_state_dict_is_one_line(tmp_path, capsys):
    path = tmp_path / "no_model.pt"
    torch.save({"epoch": 3, "optimizer": {"state": {}, "param_groups": []}}, path)
    err = refused_port(capsys, path, "--to", "keras", "--out", tmp_path / "x.safetensors")
    assert "holds no state_dict (a dict of tensors) among its entries epoch, optimizer" in err
