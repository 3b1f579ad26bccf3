"""The exported ONNX files: what they hold, how they read lengths, and what loading refuses.

The numbers are checked in test_ladder_3_model.py; here: the two files pass
``onnx.checker`` and carry our metadata; every recurrent node reads
``sequence_lens``, counted in the graph, and B, S and T stay free; a folder and
the checkpoint it came from load as the same model; and a folder that is not
exactly what we wrote is refused before ONNX Runtime sees it.  Each forged file
below keeps a valid checksum, so that each check is seen to act on its own.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from shared import CheckpointError, Tokenizer, reference, save_checkpoint
from shared.layout import random_weights
from shared.text.data import random_ids
from tests.support import CELLS, grid_config

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import onnx_impl  # noqa: E402  (after the skip: it imports onnxruntime)
from shared.onnx.export import (  # noqa: E402
    OnnxModelError,
    export_checkpoint,
    export_onnx,
    graph_sha256,
    read_models,
    stored_checksum,
)
from shared.onnx.graph import OPERATORS  # noqa: E402

CONFIG = grid_config("lstm", 2, True, 5, 7)


def _tokenizers(config):
    tokens = [chr(ord("a") + i) for i in range(config.src_vocab_size - 4)]
    src_tok = Tokenizer(("<pad>", "<bos>", "<eos>", "<unk>", *tokens), "char")
    return src_tok, Tokenizer(src_tok.tokens[: config.tgt_vocab_size], "char")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(checkpoint path, export folder, weights) of one random LSTM model."""
    root = tmp_path_factory.mktemp("onnx")
    weights = random_weights(CONFIG, seed=4)
    checkpoint = root / "model.safetensors"
    save_checkpoint(checkpoint, weights, CONFIG, *_tokenizers(CONFIG))
    export_checkpoint(checkpoint, root / "export")
    return checkpoint, root / "export", weights


def _metadata(model) -> dict:
    return {entry.key: entry.value for entry in model.metadata_props}


def test_two_models_pass_the_checker_and_say_where_they_came_from(exported):
    checkpoint, folder, _ = exported
    assert sorted(path.name for path in folder.iterdir()) == ["decoder.onnx", "encoder.onnx"]
    for part in ("encoder", "decoder"):
        model = onnx.load(folder / f"{part}.onnx")
        onnx.checker.check_model(model, full_check=True)  # with shape inference
        metadata = _metadata(model)
        assert metadata["format"] == "seq2seq-rosetta/onnx" and metadata["part"] == part
        assert metadata["version"] == "0.1.0" == model.producer_version
        assert json.loads(metadata["config"]) == CONFIG.to_dict()
        assert metadata["checkpoint_sha256"] == stored_checksum(checkpoint)
        assert metadata["graph_sha256"] == graph_sha256(model)
        assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
        assert model.ir_version == 8 and not model.functions


@pytest.mark.parametrize("cell", CELLS)
def test_every_recurrent_node_reads_the_lengths_and_b_s_t_stay_free(tmp_path, cell):
    config = grid_config(cell, 3, True, 7, 5)
    weights = random_weights(config, seed=1)
    paths = export_onnx(weights, config, tmp_path)
    for part, path in paths.items():
        graph = onnx.load(path).graph
        assert {node.op_type for node in graph.node} <= OPERATORS
        rnns = [node for node in graph.node if node.op_type == cell.upper()]
        assert len(rnns) == config.num_layers, f"{part}: one node per layer, both directions"
        for node in rnns:
            assert node.input[4] == f"{part}.lengths", f"{node.name} reads sequence_lens"
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if cell == "gru":  # PyTorch's GRU: reset after the recurrent product
                assert attributes["linear_before_reset"] == 1, node.name
        ids = graph.input[0].type.tensor_type.shape.dim
        assert [d.dim_param for d in ids] == ["B", "S" if part == "encoder" else "T"]
    model = onnx_impl.load_model(tmp_path)
    rng = np.random.default_rng(8)
    for lengths in ([1], [10, 3, 0, 7, 1, 9, 2]):  # shapes never seen at export
        src = random_ids(rng, lengths, config.src_vocab_size)
        for part, value, expected in zip(config.state_names, onnx_impl.encode(model, src),
                                         reference.encode(weights, config, src), strict=True):
            np.testing.assert_allclose(value, expected, atol=1e-5, err_msg=f"{cell} {part}")


@pytest.mark.parametrize(("cell", "attention"), [("lstm", "luong"), ("gru", "bahdanau")])
def test_an_attending_model_passes_the_memory_between_its_graphs(tmp_path, cell, attention):
    """The encoder also gives memory_outputs and memory_mask, the decoder reads them and gives
    the attention weights; only the operators we list, S free; a folder runs as exported."""
    config = grid_config(cell, 2, True, 5, 4, attention)
    weights = random_weights(config, seed=2, scale=0.5)
    paths = export_onnx(weights, config, tmp_path)
    graphs = {part: onnx.load(path) for part, path in paths.items()}
    for model in graphs.values():
        onnx.checker.check_model(model, full_check=True)
        assert {node.op_type for node in model.graph.node} <= OPERATORS
    encoder, decoder = graphs["encoder"].graph, graphs["decoder"].graph
    state = list(config.state_names)
    assert [v.name for v in encoder.output] == [*state, "memory_outputs", "memory_mask"]
    assert [v.name for v in decoder.input] == ["tgt_in", *state, "memory_outputs", "memory_mask"]
    assert [v.name for v in decoder.output] == ["logits", *(f"{n}_out" for n in state),
                                                "attention"]
    attention_dims = decoder.output[-1].type.tensor_type.shape.dim
    assert [d.dim_param for d in attention_dims] == ["B", "T", "S"]
    model = onnx_impl.load_model(tmp_path)
    rng = np.random.default_rng(4)
    src = random_ids(rng, [6, 0, 2, 9], config.src_vocab_size)
    tgt_in = random_ids(rng, [3, 5, 1, 2], config.tgt_vocab_size, first=1)
    np.testing.assert_allclose(onnx_impl.forward(model, src, tgt_in)[tgt_in != 0],
                               reference.forward(weights, config, src, tgt_in)[tgt_in != 0],
                               atol=1e-5, err_msg=f"{cell} {attention} logits from a folder")


def test_a_model_without_attention_keeps_the_graphs_of_before_attention(exported):
    """No memory tensors, no attention operators: the files other runtimes already read."""
    _, folder, _ = exported
    for part in ("encoder", "decoder"):
        graph = onnx.load(folder / f"{part}.onnx").graph
        names = [v.name for v in (*graph.input, *graph.output)]
        assert not any(name.startswith("memory") or name == "attention" for name in names)
        assert not {"Softmax", "Tanh", "Or"} & {node.op_type for node in graph.node}


def test_a_folder_and_its_checkpoint_load_as_the_same_model(exported):
    checkpoint, folder, _ = exported
    from_folder = onnx_impl.load_model(folder)
    from_checkpoint = onnx_impl.load_model(checkpoint)
    assert from_folder.config == from_checkpoint.config == CONFIG
    assert from_folder.checkpoint_sha256 == from_checkpoint.checkpoint_sha256 != ""
    src = np.array([[5, 6, 7], [8, 0, 0], [0, 0, 0]])
    tgt_in = np.array([[1, 4, 5], [1, 6, 0], [1, 0, 0]])
    np.testing.assert_array_equal(onnx_impl.forward(from_folder, src, tgt_in),
                                  onnx_impl.forward(from_checkpoint, src, tgt_in))
    np.testing.assert_array_equal(onnx_impl.beam_decode(from_folder, src, 2, 6),
                                  onnx_impl.beam_decode(from_checkpoint, src, 2, 6))


@pytest.mark.parametrize("cell", CELLS)
def test_onnx_runtime_itself_ends_a_length_0_row_in_zeros(cell):
    """Why the decoder graph ends in Where: the bare operator forgets the given state."""
    G, H = (4, 3) if cell == "lstm" else (3, 3)
    rng = np.random.default_rng(0)
    arrays = {"W": rng.uniform(-1, 1, (1, G * H, 2)), "R": rng.uniform(-1, 1, (1, G * H, H)),
              "B": rng.uniform(-1, 1, (1, 2 * G * H))}
    states = ["h0", "c0"][: 2 if cell == "lstm" else 1]
    node = onnx.helper.make_node(cell.upper(), ["X", "W", "R", "B", "lens", *states],
                                 ["Y", "Y_h"], hidden_size=H)
    value = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [node], "one node",
        [value("X", onnx.TensorProto.FLOAT, [2, 2, 2]), value("lens", onnx.TensorProto.INT32, [2])]
        + [value(name, onnx.TensorProto.FLOAT, [1, 2, H]) for name in states],
        [value("Y_h", onnx.TensorProto.FLOAT, [1, 2, H])],
        [onnx.numpy_helper.from_array(a.astype(np.float32), name) for name, a in arrays.items()],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)],
                                   ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    given = {name: rng.uniform(-1, 1, (1, 2, H)).astype(np.float32) for name in states}
    (y_h,) = session.run(None, {"X": rng.standard_normal((2, 2, 2)).astype(np.float32),
                                "lens": np.array([2, 0], np.int32), **given})
    assert not y_h[0, 1].any() and given["h0"][0, 1].any(), "row 1 (length 0) ends in zeros"
    assert y_h[0, 0].any()


# ---- a folder that is not exactly ours is refused ----

def _set(model, key: str, value: str) -> None:
    for entry in model.metadata_props:
        if entry.key == key:
            entry.value = value


def _node(model, op: str):
    return next(node for node in model.graph.node if node.op_type == op)


def _initializer(model, name: str):
    return next(tensor for tensor in model.graph.initializer if tensor.name == name)


def _external(model):
    tensor = _initializer(model, "encoder.embedding")
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="weights.bin")


def _function(model):
    model.functions.add(name="Steal", domain="com.example")


def _changed_weight(model):
    tensor = _initializer(model, "decoder.output.b")  # raw little-endian bytes, as written
    tensor.raw_data = tensor.raw_data[:-4] + np.float32(1.5).tobytes()


def _custom_opset(model):
    model.opset_import.add(domain="com.example", version=1)


FORGERIES = {
    # name: (file, edit of its ModelProto, re-sign the checksum, the message's reason)
    "not-ours": ("encoder", lambda m: setattr(m, "producer_name", "pytorch"), True,
                 "was not written by seq2seq-rosetta's exporter (producer 'pytorch'"),
    "newer-format": ("decoder", lambda m: _set(m, "format_version", "2"), True,
                     "format version 2 is newer than this seq2seq-rosetta reads (1); upgrade"),
    "external-data": ("encoder", _external, True,
                      "keeps tensor 'encoder.embedding' in an external data file "
                      "('weights.bin')"),
    "custom-opset": ("decoder", _custom_opset, True,
                     "imports the custom operator domain 'com.example'"),
    "custom-node": ("decoder", lambda m: setattr(_node(m, "MatMul"), "domain", "com.example"),
                    True, "node 'decoder.output.matmul' uses the custom operator domain "
                          "'com.example' (op MatMul)"),
    "local-function": ("encoder", _function, True, "defines 1 local function(s)"),
    "unknown-operator": ("decoder", lambda m: setattr(_node(m, "Add"), "op_type", "Mul"), True,
                         "node 'decoder.logits' is a Mul, an operator seq2seq-rosetta's "
                         "exporter never writes"),
    "changed-weight": ("decoder", lambda m: _changed_weight(m), False,
                       "checksum mismatch: the graph or its weights were changed after export"),
    "renamed-input": ("encoder", lambda m: setattr(m.graph.input[0], "name", "source"), True,
                      "has inputs ['source']; the lstm encoder has ['src']"),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_model_is_refused_before_it_runs(exported, tmp_path, forgery):
    _, folder, _ = exported
    part, edit, resign, reason = FORGERIES[forgery]
    shutil.copytree(folder, tmp_path / "forged")
    path = tmp_path / "forged" / f"{part}.onnx"
    model = onnx.load(path)
    edit(model)
    if resign:
        _set(model, "graph_sha256", graph_sha256(model))
    path.write_bytes(model.SerializeToString())
    with pytest.raises(OnnxModelError) as refused:
        onnx_impl.load_model(tmp_path / "forged")
    assert str(refused.value).startswith(f"onnx model {path}: {reason}"), str(refused.value)


def test_files_that_do_not_belong_together_are_refused(exported, tmp_path):
    _, folder, _ = exported
    shutil.copytree(folder, tmp_path / "mixed")
    export_onnx(random_weights(CONFIG, seed=5), CONFIG, tmp_path / "other")
    shutil.copy(tmp_path / "other" / "decoder.onnx", tmp_path / "mixed" / "decoder.onnx")
    with pytest.raises(OnnxModelError, match=r"come from different exports \(their "
                                             r"checkpoint_sha256 differs\)"):
        onnx_impl.load_model(tmp_path / "mixed")
    shutil.copy(folder / "decoder.onnx", tmp_path / "mixed" / "encoder.onnx")
    with pytest.raises(OnnxModelError, match="holds the 'decoder' model, expected the 'encoder'"):
        onnx_impl.load_model(tmp_path / "mixed")


def test_missing_and_garbage_files_are_refused(exported, tmp_path):
    _, folder, _ = exported
    with pytest.raises(OnnxModelError, match="nowhere: no such folder"):
        read_models(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="nowhere: no such file"):  # a file, then
        onnx_impl.load_model(tmp_path / "nowhere")
    shutil.copytree(folder, tmp_path / "broken")
    (tmp_path / "broken" / "decoder.onnx").unlink()
    with pytest.raises(OnnxModelError, match=r"decoder\.onnx: no such file"):
        onnx_impl.load_model(tmp_path / "broken")
    (tmp_path / "broken" / "decoder.onnx").write_bytes(b"\xff" * 16)
    with pytest.raises(OnnxModelError, match=r"decoder\.onnx: is not an ONNX model"):
        onnx_impl.load_model(tmp_path / "broken")
