"""Is it safe to open a model file someone sent me?

Only with a loader that cannot run code.  A pickle (``torch.save``'s format) is
a small program, and unpickling it may call any importable function; a Keras
``Lambda`` layer stores Python bytecode.  This example shows, with a harmless
payload that would create a directory, that:

1. ``torch.load(path, weights_only=True)`` refuses the pickle without running it;
2. ``keras.saving.load_model(path, safe_mode=True)`` refuses a Python lambda;
3. our ``shared.checkpoint.load_checkpoint`` reads safetensors only: it refuses
   a pickle, garbage and a file whose tensor data no longer matches its checksum.

Everything happens in a temporary directory that is removed at the end.

Run: python docs/examples/08_safe_loading.py
"""

import os
import pickle
import sys
import tempfile
from pathlib import Path

os.environ["KERAS_BACKEND"] = "tensorflow"
# As in the test suite: fewer TensorFlow log lines, and oneDNN off for repeatable numbers.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# Run from a checkout without installing: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import keras
import numpy as np
import torch

from shared import Seq2SeqConfig, Tokenizer
from shared.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from shared.layout import random_weights


class Payload:
    """Unpickling this calls os.mkdir(marker): a stand-in for any code an attacker picks."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def refused(load, path: Path, error: type[Exception]) -> str:
    """The message of the error ``load(path)`` raises; AssertionError if it loads."""
    try:
        load(path)
    except error as err:
        return str(err).strip()
    raise AssertionError(f"{path.name} was loaded; it should have been refused")


def torch_weights_only(folder: Path) -> None:
    marker = folder / "torch-payload-ran"
    path = folder / "model.pt"
    torch.save({"weight": torch.zeros(2), "extra": Payload(str(marker))}, path)
    message = refused(lambda p: torch.load(p, weights_only=True), path, pickle.UnpicklingError)
    assert not marker.exists(), "weights_only=True must not run the payload"
    assert "mkdir" in message, message
    why = next(line for line in message.splitlines() if "mkdir" in line)
    print("torch.load(weights_only=True) refuses:", why)


def keras_safe_mode(folder: Path) -> None:
    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    path = folder / "model.keras"
    model.save(path)
    message = refused(lambda p: keras.saving.load_model(p, safe_mode=True), path, ValueError)
    assert "Lambda" in message or "lambda" in message, message
    print("keras.saving.load_model(safe_mode=True) refuses:", message.split(". ")[0])


def our_loader(folder: Path) -> None:
    config = Seq2SeqConfig(src_vocab_size=7, tgt_vocab_size=6, embedding_dim=3, hidden_size=4)
    src_tokenizer = Tokenizer.build(["abc"])                               # 4 specials + 3 chars
    tgt_tokenizer = Tokenizer.build(["xy"])                                # 4 specials + 2 chars
    weights = random_weights(config, seed=0)
    path = folder / "model.safetensors"
    save_checkpoint(path, weights, config, src_tokenizer, tgt_tokenizer)
    loaded = load_checkpoint(path)
    assert all(np.array_equal(loaded.weights[name], weights[name]) for name in weights)
    print("load_checkpoint: a safetensors checkpoint loads;", len(loaded.weights), "tensors")

    marker = folder / "checkpoint-payload-ran"
    pickled = folder / "model-pickle.safetensors"
    pickled.write_bytes(pickle.dumps({"weights": Payload(str(marker))}))
    garbage = folder / "garbage.safetensors"
    garbage.write_bytes(np.random.default_rng(0).bytes(1024))
    corrupted = folder / "corrupted.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x10                                                        # one bit of one weight
    corrupted.write_bytes(bytes(raw))
    for bad, expected in ((pickled, "never unpickles"), (garbage, "not a safetensors"),
                          (corrupted, "checksum mismatch")):
        message = refused(load_checkpoint, bad, CheckpointError)
        assert expected in message, message
        print(f"load_checkpoint refuses {bad.name}:", message.split(": ", 1)[1])
    assert not marker.exists(), "load_checkpoint must never unpickle"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        torch_weights_only(Path(folder))
        keras_safe_mode(Path(folder))
        our_loader(Path(folder))


if __name__ == "__main__":
    main()
