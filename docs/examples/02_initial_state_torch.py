"""How do I set the initial (h, c) of a PyTorch nn.LSTM, and how is h_n laid out?

Answers the seed question's second part for PyTorch:

* ``lstm(x, (h0, c0))`` starts from (h0, c0); each is (L*D, B, H) and it
  returns ``output, (h_n, c_n)`` with the same layout.
* The first axis of h_n / c_n is layer-major, then direction: index
  ``k * D + d`` is layer k, direction d (0 forward, 1 backward), so
  ``h_n.view(L, D, B, H)`` splits it.
* ``batch_first=True`` changes x and output to (B, T, ...) but NOT h0, c0, h_n, c_n.
* With ``proj_size=P`` (an LSTM with projections) h, h0 and h_n shrink to
  (L*D, B, P) while c, c0 and c_n stay (L*D, B, H); output is (B, T, D*P).
* ``pack_padded_sequence`` ends each row at its last real step: h_n is the state
  there and the padded output is zeros.  Lengths live on the CPU, and a length of
  0 is refused, so our encoder packs an empty row as length 1 and zeroes its state.

Checked against the NumPy reference LSTM (``shared.reference``).

Run: python docs/examples/02_initial_state_torch.py

Shapes: B batch, T time steps, E input width, H hidden, L layers, D directions.
"""

import sys
import warnings
from pathlib import Path

# Run from a checkout without installing: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import torch_impl
from shared import PAD, Seq2SeqConfig, reference
from shared.core.compare import STATE_ATOL, assert_close
from shared.layout import random_weights

B, T, E, H, L, D = 3, 6, 4, 5, 2, 2


def params(lstm: nn.LSTM, k: int, d: int) -> list[np.ndarray]:
    """(weight_ih, weight_hh, bias_ih, bias_hh) of layer k, direction d, as NumPy."""
    suffix = f"l{k}" + ("_reverse" if d == 1 else "")
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return [getattr(lstm, f"{name}_{suffix}").detach().numpy() for name in names]


def initial_state_and_layout(x: torch.Tensor) -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(E, H, num_layers=L, bidirectional=True, batch_first=True)
    # Initial states are (L*D, B, H) even with batch_first=True.
    h0 = torch.rand(L * D, B, H) - 0.5                                     # (L*D, B, H)
    c0 = torch.rand(L * D, B, H) * 4 - 2                                   # (L*D, B, H)
    with torch.no_grad():
        output, (h_n, c_n) = lstm(x, (h0, c0))                 # (B, T, D*H), (L*D, B, H) x2
    print("nn.LSTM(batch_first=True) output", tuple(output.shape),
          "h_n", tuple(h_n.shape), "c_n", tuple(c_n.shape))
    assert output.shape == (B, T, D * H)
    assert h_n.shape == c_n.shape == (L * D, B, H), "batch_first does not apply to h_n / c_n"

    # Rebuild the stack with the reference: layer k, direction d starts from h0[k*D + d].
    lengths = np.full(B, T)
    inputs = x.numpy()                                                     # (B, T, E)
    for k in range(L):
        outs = []
        for d in range(D):
            out, (h, c) = reference.lstm_layer(
                inputs, lengths, h0[k * D + d].numpy(), c0[k * D + d].numpy(),
                *params(lstm, k, d), reverse=d == 1,
            )                                                              # (B, T, H), (B, H) x2
            where = f"[{k * D + d}] = layer {k} direction {d}"
            assert_close(f"h_n{where}", h_n[k * D + d], h, STATE_ATOL)
            assert_close(f"c_n{where}", c_n[k * D + d], c, STATE_ATOL)
            outs.append(out)
        inputs = np.concatenate(outs, axis=-1)                             # (B, T, D*H)
    assert_close("output of the last layer", output, inputs, STATE_ATOL)

    by_layer = h_n.view(L, D, B, H)                                        # (L, D, B, H)
    # Forward ends at the last step, backward at the first: both are in output too.
    assert_close("last layer forward h", by_layer[-1, 0], output[:, -1, :H], 1e-7)
    assert_close("last layer backward h", by_layer[-1, 1], output[:, 0, H:], 1e-7)
    print("h_n index k*D + d = layer k, direction d; view(L, D, B, H) splits it")


def projections(x: torch.Tensor) -> None:
    P = 3                                                                  # proj_size < H
    lstm = nn.LSTM(E, H, num_layers=L, bidirectional=True, batch_first=True, proj_size=P)
    h0, c0 = torch.zeros(L * D, B, P), torch.zeros(L * D, B, H)            # h: P wide, c: H
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "LSTM with projections is not supported with oneDNN"
        output, (h_n, c_n) = lstm(x, (h0, c0))
    assert h_n.shape == (L * D, B, P) and c_n.shape == (L * D, B, H), (h_n.shape, c_n.shape)
    assert output.shape == (B, T, D * P)
    assert lstm.weight_hr_l0.shape == (P, H), "the projection h = W_hr (o * tanh(c))"
    print(f"nn.LSTM(proj_size={P}): h_n", tuple(h_n.shape), "but c_n", tuple(c_n.shape))


def packing(x: torch.Tensor) -> None:
    torch.manual_seed(1)
    lstm = nn.LSTM(E, H, batch_first=True)
    lengths = torch.tensor([6, 2, 4])                                      # (B,) on the CPU
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        packed_out, (h_n, c_n) = lstm(packed)                              # (1, B, H) each
    output, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=T)  # (B, T, H)

    zeros = np.zeros((B, H), "float32")
    out_ref, (h_ref, c_ref) = reference.lstm_layer(
        x.numpy(), lengths.numpy(), zeros, zeros, *params(lstm, 0, 0)
    )
    assert_close("packed h_n: the state at each row's last real step", h_n[0], h_ref, STATE_ATOL)
    assert_close("packed c_n", c_n[0], c_ref, STATE_ATOL)
    assert_close("packed output (zeros at padding)", output, out_ref, STATE_ATOL)
    assert not output[1, 2:].any(), "packed PyTorch gives zeros at padded steps"
    print("packed: h_n is the state at each row's last real step; padded output is zeros")

    # Length 0 is refused; torch_impl packs an empty row as length 1 and zeroes its state.
    try:
        pack_padded_sequence(x, torch.tensor([6, 0, 4]), batch_first=True, enforce_sorted=False)
    except RuntimeError as err:
        print("pack_padded_sequence with a length 0:", str(err).split(",")[0])
    else:
        raise AssertionError("pack_padded_sequence accepted a length of 0")


def empty_row_in_our_encoder() -> None:
    config = Seq2SeqConfig(11, 9, embedding_dim=E, hidden_size=H, num_layers=L, bidirectional=True)
    weights = random_weights(config, seed=2)
    model = torch_impl.build_model(config)
    torch_impl.import_weights(model, weights)
    src = np.array([[4, 5, 6, 7], [PAD, PAD, PAD, PAD], [8, 9, PAD, PAD]])  # (B, S), row 1 empty
    h, c = torch_impl.encode(model, src)                                   # (L, B, D*H) each
    h_ref, c_ref = reference.encode(weights, config, src)
    assert_close("torch_impl hand-off h", h, h_ref, STATE_ATOL)
    assert_close("torch_impl hand-off c", c, c_ref, STATE_ATOL)
    assert not h[:, 1].any() and not c[:, 1].any(), "an all-PAD row hands off zeros"
    print("torch_impl.encode: an all-PAD row hands off zeros; hand-off", tuple(h.shape))


def main() -> None:
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((B, T, E)).astype("float32"))
    initial_state_and_layout(x)                                            # x: (B, T, E)
    projections(x)
    packing(x)
    empty_row_in_our_encoder()


if __name__ == "__main__":
    main()
