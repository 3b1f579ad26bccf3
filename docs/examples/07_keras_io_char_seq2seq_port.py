"""Port the Keras documentation's character-level seq2seq model to PyTorch, and back.

The model is the one in keras-io ``examples/nlp/lstm_seq2seq.py``: one-hot
characters in (no embedding), ``encoder = LSTM(latent_dim, return_state=True)``
whose [h, c] becomes the decoder LSTM's ``initial_state``, a softmax Dense on
top, and separate inference models ``encoder_model`` / ``decoder_model`` for
the character-by-character sampling loop.  Small sizes and random weights: a
port is about arrays, not training.

The PyTorch version is a plain nn.Module (two nn.LSTM and one nn.Linear).  The
port (``shared.layout.keras_lstm_to_torch`` per LSTM, a transpose for Dense) is
checked three ways: the encoder's (h, c), the teacher-forced probabilities and
a greedy decode of a few steps.  Then the weights go back into a fresh Keras
model (``torch_lstm_to_keras``) and give the same outputs again.

Run: python docs/examples/07_keras_io_char_seq2seq_port.py

Shapes: B batch, S source length, T target length, H latent_dim,
V_enc / V_dec the input / target character counts.
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
import torch
from torch import nn

from shared.core.compare import LOGITS_ATOL, STATE_ATOL, assert_close
from shared.layout import keras_lstm_to_torch, torch_lstm_to_keras

num_encoder_tokens, num_decoder_tokens, latent_dim = 7, 9, 8
LSTM_PARAMS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
# keras-io sorts the target characters, so "\t" (start) and "\n" (end) get ids 0 and 1.
START, END = 0, 1
B, S, T, STEPS = 3, 6, 5, 6


def build_keras():
    """The keras-io training model and its two inference models, sharing layers."""
    encoder_inputs = keras.Input(shape=(None, num_encoder_tokens))          # (B, S, V_enc)
    encoder = keras.layers.LSTM(latent_dim, return_state=True)
    _, state_h, state_c = encoder(encoder_inputs)                           # (B, H) x2
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input(shape=(None, num_decoder_tokens))          # (B, T, V_dec)
    decoder_lstm = keras.layers.LSTM(latent_dim, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = keras.layers.Dense(num_decoder_tokens, activation="softmax")
    model = keras.Model([encoder_inputs, decoder_inputs], decoder_dense(decoder_outputs))

    # Inference: keras-io finds these layers with model.layers[i]; we keep the objects.
    encoder_model = keras.Model(encoder_inputs, encoder_states)
    decoder_state_input_h = keras.Input(shape=(latent_dim,))                # (B, H)
    decoder_state_input_c = keras.Input(shape=(latent_dim,))                # (B, H)
    decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
    outputs, state_h_dec, state_c_dec = decoder_lstm(
        decoder_inputs, initial_state=decoder_states_inputs
    )                                                                       # (B, T, H), (B, H) x2
    decoder_model = keras.Model(
        [decoder_inputs, *decoder_states_inputs],
        [decoder_dense(outputs), state_h_dec, state_c_dec],
    )
    layers = {"encoder": encoder, "decoder_lstm": decoder_lstm, "decoder_dense": decoder_dense}
    return model, encoder_model, decoder_model, layers


class CharSeq2Seq(nn.Module):
    """The same model in PyTorch.  Its states are (1, B, H): nn.LSTM adds a layers axis."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.LSTM(num_encoder_tokens, latent_dim, batch_first=True)
        self.decoder_lstm = nn.LSTM(num_decoder_tokens, latent_dim, batch_first=True)
        self.decoder_dense = nn.Linear(latent_dim, num_decoder_tokens)

    def encode(self, encoder_input):
        """(B, S, V_enc) one-hot -> the hand-off (h, c), each (1, B, H)."""
        _, (h, c) = self.encoder(encoder_input)
        return h, c

    def decode(self, decoder_input, state):
        """(B, T, V_dec) one-hot and (h, c) -> probabilities (B, T, V_dec) and the new (h, c)."""
        outputs, state = self.decoder_lstm(decoder_input, state)           # (B, T, H)
        return torch.softmax(self.decoder_dense(outputs), dim=-1), state

    def forward(self, encoder_input, decoder_input):
        return self.decode(decoder_input, self.encode(encoder_input))[0]   # (B, T, V_dec)


def keras_to_torch(layers, torch_model: CharSeq2Seq) -> None:
    with torch.no_grad():
        for name in ("encoder", "decoder_lstm"):
            arrays = keras_lstm_to_torch(*layers[name].get_weights())       # transposed, 2 biases
            lstm = getattr(torch_model, name)
            for param, array in zip(LSTM_PARAMS, arrays, strict=True):
                getattr(lstm, param).copy_(torch.from_numpy(array))
        kernel, bias = layers["decoder_dense"].get_weights()                # (H, V_dec), (V_dec,)
        torch_model.decoder_dense.weight.copy_(torch.from_numpy(kernel.T))  # Linear: (V_dec, H)
        torch_model.decoder_dense.bias.copy_(torch.from_numpy(bias))


def torch_to_keras(torch_model: CharSeq2Seq, layers) -> None:
    for name in ("encoder", "decoder_lstm"):
        lstm = getattr(torch_model, name)
        arrays = [getattr(lstm, param).detach().numpy() for param in LSTM_PARAMS]
        layers[name].set_weights(list(torch_lstm_to_keras(*arrays)))  # one bias: the sum
    weight = torch_model.decoder_dense.weight.detach().numpy()             # (V_dec, H)
    bias = torch_model.decoder_dense.bias.detach().numpy()                 # (V_dec,)
    layers["decoder_dense"].set_weights([weight.T, bias])


def one_hot(ids: np.ndarray, depth: int) -> np.ndarray:
    return np.eye(depth, dtype="float32")[ids]                             # (..., depth)


def greedy_keras(encoder_model, decoder_model, input_seq: np.ndarray):
    """keras-io's decode_sequence for a whole batch: argmax, feed back, carry [h, c]."""
    states_value = [np.asarray(s) for s in encoder_model(input_seq)]       # [h, c], (B, H) each
    token = np.full(len(input_seq), START)                                 # (B,)
    tokens, probs = [], []
    for _ in range(STEPS):
        output_tokens, h, c = decoder_model([one_hot(token[:, None], num_decoder_tokens),
                                             *states_value])               # (B, 1, V_dec)
        token = np.asarray(output_tokens)[:, -1].argmax(axis=-1)
        tokens.append(token)
        probs.append(np.asarray(output_tokens)[:, -1])
        states_value = [np.asarray(h), np.asarray(c)]
    return np.stack(tokens, axis=1), np.stack(probs, axis=1)  # (B, STEPS), (B, STEPS, V_dec)


def greedy_torch(model: CharSeq2Seq, input_seq: np.ndarray):
    """The same loop in PyTorch, carrying (h, c)."""
    with torch.no_grad():
        state = model.encode(torch.from_numpy(input_seq))                  # (1, B, H) each
        token = np.full(len(input_seq), START)                             # (B,)
        tokens, probs = [], []
        for _ in range(STEPS):
            step_input = torch.from_numpy(one_hot(token[:, None], num_decoder_tokens))
            output_tokens, state = model.decode(step_input, state)         # (B, 1, V_dec)
            token = output_tokens[:, -1].argmax(dim=-1).numpy()
            tokens.append(token)
            probs.append(output_tokens[:, -1].numpy())
    return np.stack(tokens, axis=1), np.stack(probs, axis=1)  # (B, STEPS), (B, STEPS, V_dec)


def main() -> None:
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    model, encoder_model, decoder_model, layers = build_keras()
    for layer in layers.values():  # random weights everywhere: a zero bias hides bias bugs
        layer.set_weights([rng.uniform(-1, 1, w.shape).astype("float32")
                           for w in layer.get_weights()])

    encoder_input_data = one_hot(rng.integers(0, num_encoder_tokens, (B, S)), num_encoder_tokens)
    # decoder_input_data starts with "\t"; the target would be the same text one step ahead.
    decoder_ids = np.concatenate([np.full((B, 1), START), rng.integers(2, num_decoder_tokens,
                                                                       (B, T - 1))], axis=1)
    decoder_input_data = one_hot(decoder_ids, num_decoder_tokens)           # (B, T, V_dec)

    torch.manual_seed(0)
    torch_model = CharSeq2Seq().eval()
    keras_to_torch(layers, torch_model)
    shapes = {name: tuple(p.shape) for name, p in torch_model.named_parameters()}
    print("ported parameters:", shapes)
    assert sum(p.numel() for p in torch_model.parameters()) == model.count_params() + 2 * (
        4 * latent_dim), "PyTorch has the same weights plus a second bias per LSTM"

    h, c = (np.asarray(s) for s in encoder_model(encoder_input_data))      # (B, H) each
    with torch.no_grad():
        h_t, c_t = torch_model.encode(torch.from_numpy(encoder_input_data))  # (1, B, H) each
    assert_close("encoder h", h_t[0], h, STATE_ATOL)
    assert_close("encoder c", c_t[0], c, STATE_ATOL)

    expected = np.asarray(model([encoder_input_data, decoder_input_data]))  # (B, T, V_dec)
    with torch.no_grad():
        probs = torch_model(torch.from_numpy(encoder_input_data),
                            torch.from_numpy(decoder_input_data)).numpy()
    assert_close("teacher-forced probabilities", probs, expected, LOGITS_ATOL)

    tokens_k, probs_k = greedy_keras(encoder_model, decoder_model, encoder_input_data)
    tokens_t, probs_t = greedy_torch(torch_model, encoder_input_data)
    np.testing.assert_array_equal(tokens_t, tokens_k, err_msg="greedy tokens")
    assert_close("greedy step probabilities", probs_t, probs_k, LOGITS_ATOL)
    print("Keras -> PyTorch: (h, c), probabilities", expected.shape, "and greedy tokens",
          tokens_k.tolist(), "match")

    # And back: a fresh Keras model from the PyTorch weights.
    keras.utils.set_random_seed(1)
    model_back, _, _, layers_back = build_keras()
    torch_to_keras(torch_model, layers_back)
    assert_close("PyTorch -> Keras probabilities",
                 model_back([encoder_input_data, decoder_input_data]), expected, LOGITS_ATOL)
    print("PyTorch -> Keras: the same probabilities again")


if __name__ == "__main__":
    main()
