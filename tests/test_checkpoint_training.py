"""Checkpoints with a training state: the optimizer's slots by canonical name, where a run stopped.

A checkpoint of weights only is version 1, as before; one with a training state is
version 2, holds the metadata key "training" and one slot tensor per canonical weight
(``optimizer.m.<name>``, ``optimizer.v.<name>`` for Adam, none for SGD), and is read
back bit for bit or refused in one line naming what is wrong, by the same loader
and under the same checksum as the weights.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors.numpy

from shared.checkpoint import (
    OptimizerState,
    TrainingState,
    load_checkpoint,
    optimizer_settings,
    save_checkpoint,
)
from shared.checkpoint.format import VERSION, metadata_for
from shared.checkpoint.training_state import training_metadata, training_tensors
from shared.files.atomic import write_atomically
from tests.checkpoint_files import adam_state, edit_metadata, make_parts, read_header, reseal
from tests.refusal import checkpoint_refusal, refusal


@pytest.fixture(params=["lstm", "gru"])
def parts(request):
    """(weights, config, src, tgt, training) of a one-layer bidirectional model with Adam."""
    weights, config, src, tgt = make_parts(num_layers=1, cell=request.param)
    return weights, config, src, tgt, adam_state(config)


def test_a_training_state_is_saved_and_loaded_back_bit_for_bit(parts, tmp_path):
    weights, config, src, tgt, training = parts
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, weights, config, src, tgt, training=training)
    metadata = read_header(path)[0]["__metadata__"]
    assert metadata["version"] == str(VERSION) == "2" and "training" in metadata
    loaded = load_checkpoint(path).training
    assert (loaded.epochs_done, loaded.seed, loaded.batch_size) == (3, 7, 16)
    assert loaded.optimizer.settings == training.optimizer.settings
    assert loaded.optimizer.step == 17
    for slot in ("m", "v"):
        expected = training.optimizer.slots[slot]
        assert list(loaded.optimizer.slots[slot]) == list(weights)  # canonical order
        for name, value in expected.items():
            assert loaded.optimizer.slots[slot][name].tobytes() == value.tobytes(), (slot, name)


def test_sgd_keeps_no_slots_and_weights_only_stay_version_1(parts, tmp_path):
    weights, config, src, tgt, _ = parts
    sgd = TrainingState(2, 0, 8, OptimizerState(optimizer_settings("sgd", 0.5), 10, {}))
    save_checkpoint(tmp_path / "sgd.safetensors", weights, config, src, tgt, training=sgd)
    header = read_header(tmp_path / "sgd.safetensors")[0]
    assert not [name for name in header if name.startswith("optimizer.")]
    loaded = load_checkpoint(tmp_path / "sgd.safetensors").training
    assert loaded.optimizer.settings.name == "sgd" and loaded.optimizer.settings.lr == 0.5
    save_checkpoint(tmp_path / "plain.safetensors", weights, config, src, tgt)
    assert read_header(tmp_path / "plain.safetensors")[0]["__metadata__"]["version"] == "1"
    assert load_checkpoint(tmp_path / "plain.safetensors").training is None


def _write(path, weights, config, src, tgt, training, edit_tensors=None, edit_json=None):
    """A file as a writer with a bug would make it: the slots or the JSON edited, then sealed
    with a correct checksum, so that the loader's own checks are what refuse it."""
    tensors = {**weights, **training_tensors(training)}
    data = json.loads(training_metadata(training))
    if edit_tensors:
        edit_tensors(tensors)
    if edit_json:
        edit_json(data)
    metadata = metadata_for(tensors, config, src, tgt, json.dumps(data))
    write_atomically(path, safetensors.numpy.save(tensors, metadata=metadata))


def _delete(name):
    return lambda tensors: tensors.pop(name)


def _set(name, value):
    def edit(tensors):
        tensors[name] = tensors[name].copy()
        tensors[name].flat[0] = value
    return edit


M_OUT = "optimizer.m.decoder.output.W"
V_OUT = "optimizer.v.decoder.output.W"
BAD_FILES = {
    "slot-missing": ({"edit_tensors": _delete(M_OUT)},
                     "optimizer slot 'm': weights do not have this config's canonical names; "
                     "1 missing: decoder.output.W"),
    "unknown-slot": ({"edit_tensors": lambda t: t.update({"optimizer.w.x": np.zeros(1, "f4")})},
                     "tensor 'optimizer.w.x' is not a slot of adam (m, v)"),
    "slot-shape": ({"edit_tensors": lambda t: t.update({M_OUT: t[M_OUT][:, :1].copy()})},
                   "optimizer slot 'm'"),
    "slot-nan": ({"edit_tensors": _set(M_OUT, np.nan)}, "optimizer slot 'm'"),
    "v-negative": ({"edit_tensors": _set(V_OUT, -1.0)},
                   "optimizer slot 'v' of 'decoder.output.W' holds negative values"),
    "lstm-b_hh-moment": (
        {"edit_tensors": _set("optimizer.m.decoder.layers.0.forward.f.b_hh", 0.5)},
        "optimizer slot 'm' of 'decoder.layers.0.forward.f.b_hh' is not zero"),
    "key-missing": ({"edit_json": lambda d: d.pop("step")}, "metadata 'training' must have"),
    "epochs-float": ({"edit_json": lambda d: d.update(epochs_done=2.0)},
                     "epochs_done must be an integer; got 2.0"),
    "optimizer-name": ({"edit_json": lambda d: d["optimizer"].update(name="adamw")},
                       "optimizer must be one of adam, sgd; got 'adamw'"),
    "lr-zero": ({"edit_json": lambda d: d["optimizer"].update(lr=0)},
                "lr must be a positive finite number; got 0"),
    "beta": ({"edit_json": lambda d: d["optimizer"].update(beta_2=1.5)},
             "beta_1 and beta_2 must be numbers in [0, 1)"),
    "settings-key": ({"edit_json": lambda d: d["optimizer"].pop("clip_norm")},
                     "optimizer settings must have the keys"),
    "step-negative": ({"edit_json": lambda d: d.update(step=-1)},
                      "the optimizer's step must be an integer in [0, 9007199254740992]"),
}


@pytest.mark.parametrize("bad", list(BAD_FILES))
def test_a_broken_training_state_is_refused_in_one_line(bad, tmp_path):
    weights, config, src, tgt = make_parts(num_layers=1, cell="lstm")
    edits, detail = BAD_FILES[bad]
    path = tmp_path / "model.safetensors"
    _write(path, weights, config, src, tgt, adam_state(config), **edits)
    message = checkpoint_refusal(path)
    assert "the training state does not hold: " in message and detail in message, message


def test_the_checksum_covers_the_slots(parts, tmp_path):
    weights, config, src, tgt, training = parts
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, weights, config, src, tgt, training=training)
    header, start = read_header(path)
    raw = bytearray(path.read_bytes())
    raw[start + header[M_OUT]["data_offsets"][0]] ^= 1  # one bit of one moment
    path.write_bytes(bytes(raw))
    assert "checksum mismatch" in checkpoint_refusal(path)


def test_slots_without_a_training_state_and_the_reverse_are_refused(parts, tmp_path):
    weights, config, src, tgt, training = parts
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, weights, config, src, tgt, training=training)
    edit_metadata(path, version="1", training=None)  # a version 1 file left with the slots
    reseal(path)
    assert "is an optimizer slot, but the file has no training state" in checkpoint_refusal(path)
    save_checkpoint(path, weights, config, src, tgt)
    edit_metadata(path, version="2")
    reseal(path)
    assert "__metadata__ lacks keys ['training']" in checkpoint_refusal(path)


def test_save_refuses_a_state_that_does_not_fit_and_writes_nothing(parts, tmp_path):
    weights, config, src, tgt, training = parts
    slots = {**training.optimizer.slots, "v": dict(training.optimizer.slots["v"])}
    del slots["v"]["encoder.embedding"]
    broken = TrainingState(3, 7, 16, OptimizerState(training.optimizer.settings, 17, slots))
    path = tmp_path / "model.safetensors"
    message = refusal(lambda: save_checkpoint(path, weights, config, src, tgt, training=broken))
    assert ("optimizer slot 'v': weights do not have this config's canonical names; 1 missing: "
            "encoder.embedding") in message, message
    assert not path.exists()
