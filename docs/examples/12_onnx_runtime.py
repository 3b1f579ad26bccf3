"""How do I run the exported model from any ONNX runtime, without this library?

``seq2seq-rosetta export`` writes two ONNX models.  Any runtime that reads opset
17 runs them with token ids and float32 arrays alone; this example uses bare
``onnxruntime`` and NumPy, nothing of ours at run time, and writes out the
greedy loop: run the encoder once, then the decoder one token at a time,
feeding back its new state.  The answer equals the NumPy reference's, for an
LSTM (state h, c) and a GRU (state h), an empty question included.

What a caller must know, and the files do not say: ids are int64 and post-padded
with PAD = 0 (the graphs count lengths from it); BOS = 1 starts the answer and
EOS = 2 ends it; PAD and BOS are never generated (their logits are set to -inf,
as ``shared.decoding.search`` does); the vocabularies are in the checkpoint
(``Tokenizer.to_dict``).

Run: python docs/examples/12_onnx_runtime.py

Shapes: B batch, S source length, L layers, H_dec decoder hidden, V target vocabulary.
"""

import sys
import tempfile
from pathlib import Path

# Run from a checkout without installing: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import onnxruntime as ort

from shared import Seq2SeqConfig, reference
from shared.layout import random_weights
from shared.onnx.export import export_onnx

BOS, EOS, PAD, MAX_LEN = 1, 2, 0, 8


def greedy(folder: Path, src: np.ndarray) -> np.ndarray:
    """Greedy tokens (B, MAX_LEN) from the two files, with onnxruntime and NumPy only."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    encoder = ort.InferenceSession(str(folder / "encoder.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(folder / "decoder.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    state_names = [value.name for value in encoder.get_outputs()]      # ["h", "c"] or ["h"]
    state = encoder.run(None, {"src": src})                            # each (L, B, H_dec)
    tokens = np.full(len(src), BOS, np.int64)                          # (B,)
    output = np.full((len(src), MAX_LEN), PAD, np.int64)               # (B, MAX_LEN)
    done = np.zeros(len(src), bool)
    for t in range(MAX_LEN):
        feeds = {"tgt_in": tokens[:, None], **dict(zip(state_names, state, strict=True))}
        logits, *state = decoder.run(None, feeds)                      # (B, 1, V), new state
        logits = logits[:, 0]                                          # (B, V)
        logits[:, [PAD, BOS]] = -np.inf
        # A finished row is fed PAD: a length-0 row, whose state the decoder keeps.
        tokens = np.where(done, PAD, logits.argmax(axis=1))            # (B,)
        output[:, t] = tokens
        done |= tokens == EOS
    return output


src = np.array([[5, 6, 7, 8], [9, 4, 0, 0], [0, 0, 0, 0]])             # (B, S), an empty row
for cell in ("lstm", "gru"):
    config = Seq2SeqConfig(src_vocab_size=12, tgt_vocab_size=10, embedding_dim=6,
                           hidden_size=5, num_layers=2, bidirectional=True, cell=cell)
    weights = random_weights(config, seed=4, scale=1.0)  # scale 1: varied answers
    with tempfile.TemporaryDirectory() as folder:
        export_onnx(weights, config, folder)
        tokens = greedy(Path(folder), src)
    expected = reference.greedy_decode(weights, config, src, MAX_LEN)
    np.testing.assert_array_equal(tokens, expected, err_msg=f"{cell}: onnxruntime vs reference")
    print(f"{cell}: bare onnxruntime greedy tokens equal the reference's:\n{tokens}")
