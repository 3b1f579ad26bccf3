"""Seq2SeqConfig: derived sizes, errors that name the field, an exact dict round trip."""

import dataclasses
import json

import pytest

import shared
from shared import Seq2SeqConfig

VALID = {"src_vocab_size": 30, "tgt_vocab_size": 17, "embedding_dim": 8, "hidden_size": 12}


def test_defaults_and_derived_sizes():
    config = Seq2SeqConfig(**VALID)
    assert (config.num_layers, config.bidirectional, config.dropout) == (1, False, 0.0)
    assert config.num_directions == 1 and config.decoder_hidden_size == 12
    bi = Seq2SeqConfig(**VALID, num_layers=3, bidirectional=True, dropout=0.25)
    assert bi.num_directions == 2 and bi.decoder_hidden_size == 24
    assert shared.Seq2SeqConfig is Seq2SeqConfig


def test_is_frozen():
    config = Seq2SeqConfig(**VALID)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.hidden_size = 5


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("src_vocab_size", 3, r"Seq2SeqConfig.src_vocab_size must be >= 4; got 3"),
        ("tgt_vocab_size", 0, r"Seq2SeqConfig.tgt_vocab_size must be >= 4; got 0"),
        ("embedding_dim", 0, r"Seq2SeqConfig.embedding_dim must be >= 1; got 0"),
        ("hidden_size", -4, r"Seq2SeqConfig.hidden_size must be >= 1; got -4"),
        ("num_layers", 0, r"Seq2SeqConfig.num_layers must be >= 1; got 0"),
        ("hidden_size", 8.0, r"Seq2SeqConfig.hidden_size must be an int; got float 8.0"),
        ("num_layers", True, r"Seq2SeqConfig.num_layers must be an int; got bool True"),
        ("src_vocab_size", "30", r"Seq2SeqConfig.src_vocab_size must be an int; got str '30'"),
        ("bidirectional", 1, r"Seq2SeqConfig.bidirectional must be True or False; got 1"),
        ("dropout", 1.0, r"Seq2SeqConfig.dropout must be in \[0, 1\); got 1.0"),
        ("dropout", -0.1, r"Seq2SeqConfig.dropout must be in \[0, 1\); got -0.1"),
        ("dropout", float("nan"), r"Seq2SeqConfig.dropout must be in \[0, 1\); got nan"),
        ("dropout", "0.1", r"Seq2SeqConfig.dropout must be a float; got '0.1'"),
        ("dropout", False, r"Seq2SeqConfig.dropout must be a float; got False"),
    ],
)
def test_errors_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        Seq2SeqConfig(**{**VALID, field: value})


def test_smallest_valid_sizes():
    config = Seq2SeqConfig(4, 4, 1, 1)
    assert config.decoder_hidden_size == 1


@pytest.mark.parametrize(
    "config",
    [
        Seq2SeqConfig(**VALID),
        Seq2SeqConfig(**VALID, num_layers=2, bidirectional=True, dropout=0.5),
        Seq2SeqConfig(**VALID, cell="gru"),
        Seq2SeqConfig(**VALID, cell="gru", attention="bahdanau"),
    ],
)
def test_to_dict_from_dict_round_trip(config):
    data = config.to_dict()
    assert data == {
        **VALID,
        "num_layers": config.num_layers,
        "bidirectional": config.bidirectional,
        "dropout": config.dropout,
        "cell": config.cell,
        "attention": config.attention,
    }
    assert Seq2SeqConfig.from_dict(data) == config
    assert Seq2SeqConfig.from_dict(json.loads(json.dumps(data))) == config


def test_from_dict_fills_defaults():
    assert Seq2SeqConfig.from_dict(dict(VALID)) == Seq2SeqConfig(**VALID)


def test_a_config_written_before_the_cell_field_is_an_lstm():
    old = {**VALID, "num_layers": 1, "bidirectional": False, "dropout": 0.0}  # no "cell"
    assert Seq2SeqConfig.from_dict(old).cell == "lstm"


def test_a_config_written_before_the_attention_field_has_no_attention():
    old = {**VALID, "num_layers": 1, "bidirectional": False, "dropout": 0.0, "cell": "gru"}
    assert Seq2SeqConfig.from_dict(old).attention == "none"
    assert Seq2SeqConfig(**VALID).attention == "none"


@pytest.mark.parametrize("attention", ["none", "luong", "bahdanau"])
def test_attention_keeps_every_size(attention):
    config = Seq2SeqConfig(**VALID, bidirectional=True, attention=attention)
    assert config.decoder_hidden_size == 24 and config.state_names == ("h", "c")
    assert config.has_attention == (attention != "none")


@pytest.mark.parametrize("attention", ["Luong", "dot", "general", "", None, 1, True])
def test_an_unknown_attention_is_refused(attention):
    with pytest.raises(ValueError, match=r"Seq2SeqConfig.attention must be one of 'none', "
                                         r"'luong', 'bahdanau'; got"):
        Seq2SeqConfig(**VALID, attention=attention)


@pytest.mark.parametrize(("cell", "parts"), [("lstm", ("h", "c")), ("gru", ("h",))])
def test_the_cell_decides_the_state(cell, parts):
    assert Seq2SeqConfig(**VALID, cell=cell).state_names == parts


@pytest.mark.parametrize("cell", ["LSTM", "rnn", "", None, 4])
def test_an_unknown_cell_is_refused(cell):
    with pytest.raises(ValueError, match=r"Seq2SeqConfig.cell must be one of 'lstm', 'gru'"):
        Seq2SeqConfig(**VALID, cell=cell)


def test_from_dict_rejects_unknown_missing_and_non_dicts():
    with pytest.raises(ValueError, match=r"unknown Seq2SeqConfig field\(s\): heads, rnn"):
        Seq2SeqConfig.from_dict({**VALID, "heads": 2, "rnn": "gru"})
    without_hidden = {k: v for k, v in VALID.items() if k != "hidden_size"}
    with pytest.raises(ValueError, match=r"missing Seq2SeqConfig field\(s\): hidden_size"):
        Seq2SeqConfig.from_dict(without_hidden)
    with pytest.raises(ValueError, match=r"a Seq2SeqConfig needs a dict; got list"):
        Seq2SeqConfig.from_dict([30, 17, 8, 12])
    with pytest.raises(ValueError, match=r"Seq2SeqConfig.embedding_dim must be >= 1; got 0"):
        Seq2SeqConfig.from_dict({**VALID, "embedding_dim": 0})
