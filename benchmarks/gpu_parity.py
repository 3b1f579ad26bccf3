"""GPU parity check for torch_impl: the tolerance policy holds only with TF32 off.

Run on a machine with a CUDA GPU (``python benchmarks/gpu_parity.py --json``).
For two configurations, torch_impl runs on the GPU, once with TF32 off and
once with it on, and is compared with the float64 NumPy reference: hand-off
(h, c) of every layer, teacher-forced logits at real positions, greedy tokens.
Then one batch's loss and gradients, and 20 SGD steps, GPU against CPU.

TF32 is switched with PyTorch's ``fp32_precision`` API only (torch >= 2.9):
``torch.backends.cuda.matmul.fp32_precision`` for cuBLAS matrix products and
``torch.backends.cudnn.rnn.fp32_precision`` for cuDNN's RNN kernels, which
``nn.LSTM`` runs on (its default is "tf32").  The legacy ``allow_tf32`` flags
are not touched: reading one after the new API has set a value it cannot
express raises RuntimeError ("mix of the legacy and new APIs").

TensorFlow is not installed on the lent GPU machines here, so keras_impl is
not checked on a GPU by this script.  TensorFlow's switch is
``tf.config.experimental.enable_tensor_float_32_execution(False)``; its
docstring (tensorflow/python/framework/config.py) says TF32 is enabled by
default for "certain float32 ops, such as matrix multiplications and
convolutions".

Shapes: B batch, S source length, T target length, V vocabulary.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

import torch_impl
from shared import BOS, EOS, PAD, Seq2SeqConfig, reference
from shared.core.compare import LOGITS_ATOL, STATE_ATOL, max_abs_diff
from shared.layout import random_weights
from shared.text.data import Batch, random_ids

CONFIGS = [
    Seq2SeqConfig(40, 30, 64, 64, num_layers=2, bidirectional=True),
    Seq2SeqConfig(40, 30, 48, 128, num_layers=3),
]


def tf32_settings() -> dict:
    """PyTorch's TF32 settings for the two kinds of kernel nn.LSTM and nn.Linear use."""
    return {"cuda.matmul": torch.backends.cuda.matmul.fp32_precision,
            "cudnn.rnn": torch.backends.cudnn.rnn.fp32_precision}


def set_tf32(on: bool) -> None:
    """TF32 on or off for cuBLAS matrix products and cuDNN RNNs, with the new API only."""
    precision = "tf32" if on else "ieee"
    torch.backends.cuda.matmul.fp32_precision = precision
    torch.backends.cudnn.rnn.fp32_precision = precision


def ragged(rng, B, S, V, first=None):
    """int64 (B, S) rows of real ids, post-padded, lengths 0..S; row 0 empty, row 1 one token.

    With ``first``, every row that has a token starts with it (BOS for a decoder
    input); an empty row stays all PAD.
    """
    lengths = rng.integers(0, S + 1, size=B)                                # (B,)
    lengths[:2] = (0, 1)  # an empty row and a length-1 row
    return random_ids(rng, lengths, V, first=first, width=S)                # (B, S)


def teacher_forcing(answers):
    """(tgt_in, tgt_out) = (BOS + answer, answer + EOS), each (B, T + 1), from answers (B, T)."""
    B, T = answers.shape
    lengths = (answers != PAD).sum(axis=1)                                  # (B,)
    tgt_in = np.full((B, T + 1), PAD, np.int64)
    tgt_in[:, 0] = BOS
    tgt_in[:, 1:] = answers
    tgt_out = np.full((B, T + 1), PAD, np.int64)
    tgt_out[:, :T] = answers
    tgt_out[np.arange(B), lengths] = EOS  # the target is ahead of the input by one step
    return tgt_in, tgt_out


def check_config(config, device):
    rng = np.random.default_rng(0)
    weights = random_weights(config, seed=1, scale=0.3)
    src = ragged(rng, 64, 20, config.src_vocab_size)
    tgt_in = ragged(rng, 64, 16, config.tgt_vocab_size, first=BOS)
    h_ref, c_ref = reference.encode(weights, config, src)
    logits_ref, _ = reference.decode(weights, config, tgt_in, (h_ref, c_ref))
    greedy_ref = reference.greedy_decode(weights, config, src, 12)
    model = torch_impl.build_model(config)
    torch_impl.import_weights(model, weights)
    model.to(device)
    result = {}
    for tf32 in (False, True):
        set_tf32(tf32)
        h, c = torch_impl.encode(model, src)
        logits = torch_impl.forward(model, src, tgt_in)
        greedy = torch_impl.greedy_decode(model, src, 12)
        handoff = max(max_abs_diff(h, h_ref)[0], max_abs_diff(c, c_ref)[0])
        logit = max_abs_diff(logits, logits_ref, tgt_in != PAD)[0]
        result["tf32_on" if tf32 else "tf32_off"] = {
            "handoff_max_abs_diff": handoff,
            "logits_max_abs_diff": logit,
            "greedy_identical": bool((greedy == greedy_ref).all()),
            "within_tolerance": handoff <= STATE_ATOL and logit <= LOGITS_ATOL,
        }
    set_tf32(False)
    return result


def check_training(device):
    config = CONFIGS[0]
    rng = np.random.default_rng(2)
    weights = random_weights(config, seed=3)
    src = ragged(rng, 32, 12, config.src_vocab_size)
    # Answers of 0..9 tokens (an empty one among them): the decoder reads BOS at least.
    batch = Batch(src, *teacher_forcing(ragged(rng, 32, 9, config.tgt_vocab_size)))
    out = {}
    models = {}
    for where in ("cpu", device):
        model = torch_impl.build_model(config)
        torch_impl.import_weights(model, weights)
        model.to(where)
        models[where] = model
    (loss_cpu, g_cpu), (loss_gpu, g_gpu) = (
        torch_impl.loss_and_gradients(models[w], *batch) for w in ("cpu", device)
    )
    out["loss_rel_diff"] = abs(loss_cpu - loss_gpu) / abs(loss_cpu)
    out["grad_max_rel_diff"] = max(
        max_abs_diff(g_gpu[k], g_cpu[k])[0] / max(float(np.abs(g_cpu[k]).max()), 1e-6)
        for k in g_cpu
    )
    for model in models.values():
        torch_impl.train(model, [batch] * 20, epochs=1, optimizer="sgd", lr=0.5, verbose=False)
    w_cpu, w_gpu = (torch_impl.export_weights(models[w]) for w in ("cpu", device))
    out["sgd20_weights_max_abs_diff"] = max(max_abs_diff(w_gpu[k], w_cpu[k])[0] for k in w_cpu)
    return out


def time_greedy(device):
    config = Seq2SeqConfig(1000, 1000, 128, 256)
    model = torch_impl.build_model(config).to(device)
    src = np.random.default_rng(0).integers(4, 1000, size=(256, 20))
    torch_impl.greedy_decode(model, src, 20)
    tic = time.perf_counter()
    for _ in range(3):
        torch_impl.greedy_decode(model, src, 20)
    return 3 * 256 / (time.perf_counter() - tic)


def main() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    report = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "tf32_defaults": tf32_settings(),  # read before set_tf32 changes them
        "configs": {},
    }
    for config in CONFIGS:
        kind = "bi" if config.bidirectional else "uni"
        name = f"L{config.num_layers}-{kind}-H{config.hidden_size}"
        report["configs"][name] = check_config(config, device)
    report["training_gpu_vs_cpu"] = check_training(device)
    report["greedy_sent_per_s_B256_H256_len20"] = time_greedy(device)
    print(json.dumps(report, indent=2))
    if "--json" in sys.argv:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
