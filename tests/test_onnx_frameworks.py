"""Our ONNX export against PyTorch's own: ``torch.onnx.export`` of torch_impl's model.

torch_impl packs its sequences (``pack_padded_sequence``).  PyTorch's legacy
TorchScript exporter (``dynamo=False``) turns a packed ``nn.LSTM``/``nn.GRU`` into
ONNX's operator with ``sequence_lens``, as our exporter writes it; the default
exporter (``dynamo=True``, through ``torch.export``) refuses the model
(docs/onnx.md has what each exporter and Keras's ``model.export`` do).  Here both
graphs run on ONNX Runtime from one set of weights and must agree: hand-off and
decoder logits and state, on the parity batch with its empty and length-1 rows.
"""

from __future__ import annotations

import io
import warnings

import pytest

from shared.core.compare import LOGITS_ATOL, STATE_ATOL, assert_close
from shared.layout import random_weights
from tests.support import CELLS, grid_config, model_with, sample_batch

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


class _Encode(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src):
        return self.model.encode(src)


class _Decode(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tgt_in, *state):
        logits, final = self.model.decode(tgt_in, state)
        return logits, *final


def _torch_export(module, example: tuple, input_names: list[str], output_names: list[str]):
    """An ONNX Runtime session over ``torch.onnx.export(module, ..., dynamo=False)``.

    The graph must hold the cell's ONNX operator fed with ``sequence_lens`` (input 4):
    packing exported as lengths.
    """
    batch = {name: {1: "B"} for name in input_names[1:] + output_names if name != "logits"}
    dynamic = {input_names[0]: {0: "B", 1: "T"}, "logits": {0: "B", 1: "T"}, **batch}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter warns that it is legacy and that its trace fixes the branch
        # run_packed takes: with the padded example, the packed path, right for any batch.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, tuple(torch.from_numpy(a) for a in example), buffer,
                          dynamo=False, opset_version=17, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic)
    graph = onnx.load_from_string(buffer.getvalue()).graph
    rnns = [node for node in graph.node if node.op_type in ("LSTM", "GRU")]
    assert rnns and all(len(node.input) > 4 and node.input[4] for node in rnns), \
        "the exporter dropped sequence_lens: padded steps would change the state"
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("cell", CELLS)
def test_torch_legacy_export_of_torch_impl_equals_our_export(cell):
    config = grid_config(cell, 2, True, 5, 7)
    weights = random_weights(config, seed=11)
    onnx_impl, ours = model_with("onnx_impl", config, weights)
    _, torch_model = model_with("torch_impl", config, weights)
    src, tgt_in = sample_batch(seed=6)
    names = list(config.state_names)
    encoder = _torch_export(_Encode(torch_model), (src,), ["src"], names)
    handoff = encoder.run(None, {"src": src})                               # each (L, B, H_dec)
    for part, theirs, value in zip(names, handoff, onnx_impl.encode(ours, src), strict=True):
        assert_close(f"torch.onnx.export {cell} hand-off {part}", theirs, value, STATE_ATOL)
    decoder = _torch_export(_Decode(torch_model), (tgt_in, *handoff), ["tgt_in", *names],
                            ["logits", *(f"{name}_out" for name in names)])
    logits, *final = decoder.run(None, {"tgt_in": tgt_in, **dict(zip(names, handoff,
                                                                       strict=True))})
    our_logits, our_final = onnx_impl.decode(ours, tgt_in, tuple(handoff))
    assert_close(f"torch.onnx.export {cell} logits", logits, our_logits, LOGITS_ATOL,
                 mask=tgt_in != 0)
    for part, theirs, value in zip(names, final, our_final, strict=True):
        assert_close(f"torch.onnx.export {cell} decoder final {part}", theirs, value, STATE_ATOL)
