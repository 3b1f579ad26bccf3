"""The two ONNX graphs of the model, built node by node from the canonical weights.

An exported model is two ONNX models: the encoder (question -> hand-off) and
the decoder (tokens + state -> logits + state), so that a runtime can run the
encoder once and then the decoder one step at a time, carrying the state, as
``shared.decoding.search`` does.  This module builds their graphs; ``shared.onnx.export``
adds the metadata, checks and writes them.  It needs the ``onnx`` package (the
file format's protobuf classes, no runtime and no framework) and NumPy.

    encoder.onnx   src int64 (B, S)                        -> h, c   each (L, B, H_dec)
    decoder.onnx   tgt_in int64 (B, T), h, c (L, B, H_dec)  -> logits (B, T, V_tgt), h_out, c_out

A GRU has no c: its encoder outputs h alone and its decoder takes h and gives
h_out.  B, S and T are dynamic (S, T >= 1); L, H_dec and V are fixed by the config.

With attention (``config.attention`` "luong" or "bahdanau", ``shared.layout.attention``
has the equations) the memory travels between the two graphs as two more
tensors, and the decoder also returns the weights it attended with:

    encoder.onnx   ... -> h, c, memory_outputs float32 (B, S, H_dec), memory_mask bool (B, S)
    decoder.onnx   tgt_in, h, c, memory_outputs, memory_mask
                       -> logits, h_out, c_out, attention float32 (B, T, S)

A model without attention has exactly the graphs it had before attention existed.

Each recurrent layer is one ONNX ``LSTM`` or ``GRU`` node, both directions of a
bidirectional encoder layer in one node (``direction="bidirectional"``).  ONNX
keeps a layer's weights per direction, gates stacked in its own order:

    LSTM   W (D, 4H, in), R (D, 4H, H), gates i o f c;  B (D, 8H) = [Wb, Rb]
    GRU    W (D, 3H, in), R (D, 3H, H), gates z r h;    B (D, 6H) = [Wb, Rb]
           linear_before_reset=1: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
           PyTorch's GRU (ONNX's default, 0, resets before the product)
    inputs X (S, B, in), sequence_lens int32 (B,), initial_h, initial_c (D, B, H)
    outputs Y (S, D, B, H), Y_h and Y_c (D, B, H)

The weights reach that layout through the converters of ``shared.layout``:
canonical -> PyTorch stacks (``join_gates``) -> Keras (``torch_*_to_keras``) ->
ONNX (``keras_*_to_onnx``).  An LSTM's two biases arrive summed in Wb with Rb
zero (only the sum acts); a GRU's stay apart (b_hn acts inside r * (...)).

Why ``sequence_lens`` and not a mask: ONNX's recurrent operators take no mask,
but each row's length, as PyTorch's packing does; a row stops at its last real
token, its Y_h is the state there, its Y is zeros after it, and a backward
direction starts at that token.  The lengths are counted in the graph from the
PAD id (0), so a caller gives token ids only.  Two choices of ONNX Runtime
fix the rest: it supports only ``layout=0`` (time-major X and Y), hence the
transposes around every node, and a row of length 0 gets Y_h = Y_c = 0, not
its initial state: the encoder's zero hand-off for an all-PAD question is then
right as it is, and the decoder puts the given state back for an all-PAD row
(``Where``), as ``torch_impl`` and ``keras_impl`` keep it.

Shape legend: B batch, S source length, T target length, E embedding, H hidden
(per encoder direction), H_dec = D*H, L layers, D directions, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from shared.core.config import Seq2SeqConfig
from shared.core.tokens import PAD
from shared.layout import (
    join_gates,
    keras_gru_to_onnx,
    keras_lstm_to_onnx,
    recurrent_layers,
    torch_gru_to_keras,
    torch_lstm_to_keras,
)

# The opset and IR version written: opset 17 (ONNX 1.12, ONNX Runtime >= 1.12) has every
# operator used here in its current form; IR 8 is the IR version that goes with it.
OPSET = 17
IR_VERSION = 8

# The only operators the graphs use: a loader refuses any other (shared.onnx.export).
OPERATORS = frozenset({
    "Cast", "Concat", "Equal", "Gather", "GRU", "LSTM", "MatMul", "Add", "Not", "ReduceSum",
    "Reshape", "Squeeze", "Transpose", "Unsqueeze", "Where",
    "Or", "Softmax", "Tanh",  # attention's
})

# The memory's two tensors, encoder output -> decoder input, and the weights the decoder returns.
MEMORY_NAMES = ("memory_outputs", "memory_mask")
ATTENTION_OUTPUT = "attention"
# The encoder that continues from a given state (``encoder_graph(..., streaming=True)``): built
# in memory when a source is read chunk by chunk, never written to an exported folder.
STREAMING = "streaming encoder"

# canonical (PyTorch) stacks -> Keras arrays -> ONNX arrays, per cell (shared.onnx.weights
# reads them back).
_TO_ONNX = {
    "lstm": (torch_lstm_to_keras, keras_lstm_to_onnx),
    "gru": (torch_gru_to_keras, keras_gru_to_onnx),
}


def _memory(config: Seq2SeqConfig) -> list[str]:
    return list(MEMORY_NAMES) if config.has_attention else []


def input_names(config: Seq2SeqConfig, part: str) -> list[str]:
    """The graph inputs of ``part`` ("encoder", "decoder" or ``STREAMING``), in order."""
    if part == "encoder":
        return ["src"]
    if part == STREAMING:
        return ["src", *config.state_names]
    return ["tgt_in", *config.state_names, *_memory(config)]


def output_names(config: Seq2SeqConfig, part: str) -> list[str]:
    """The graph outputs of ``part``, in order.

    The encoder: the state parts (then the memory, with attention); the streaming
    encoder: the new state parts; the decoder: logits and the new state (then the
    attention weights).
    """
    if part == "encoder":
        return [*config.state_names, *_memory(config)]
    if part == STREAMING:
        return [*(f"{name}_out" for name in config.state_names), *_memory(config)]
    weights = [ATTENTION_OUTPUT] if config.has_attention else []
    return ["logits", *(f"{name}_out" for name in config.state_names), *weights]


class _Graph:
    """Nodes and initializers collected in order; names are prefixed by the graph's side."""

    def __init__(self, side: str):
        self.side = side
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, name: str, value: np.ndarray) -> str:
        """Add ``value`` as an initializer called ``name`` (given in full); return the name."""
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, outputs: int = 1, **attrs) -> list[str]:
        """Add one node named ``{side}.{name}``; return its output names (name, or name.i)."""
        full = f"{self.side}.{name}"
        names = [full] if outputs == 1 else [f"{full}.{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=full, **attrs))
        return names

    def ints(self, name: str, values: list[int]) -> str:
        """An int64 1-D constant (axes, shapes, indices) called ``{side}.{name}``."""
        return self.constant(f"{self.side}.{name}", np.array(values, np.int64))


def _lengths(graph: _Graph, ids: str) -> tuple[str, str]:
    """Each row's length, int32 (B,): its ids (B, T) that are not PAD; and that mask (B, T)."""
    pad = graph.constant(f"{graph.side}.pad_id", np.array(PAD, np.int64))
    (is_pad,) = graph.node("Equal", [ids, pad], "is_pad")                      # (B, T) bool
    (is_real,) = graph.node("Not", [is_pad], "is_real")                        # (B, T) bool
    (ones,) = graph.node("Cast", [is_real], "is_real_int", to=TensorProto.INT32)
    (lengths,) = graph.node("ReduceSum", [ones, graph.ints("time_axis", [1])], "lengths",
                            keepdims=0)                                        # (B,) int32
    return lengths, is_real


def _empty_rows(graph: _Graph, lengths: str) -> str:
    """bool (1, B, 1): the rows of length 0, shaped to select over a state (L, B, H_dec)."""
    zero = graph.constant(f"{graph.side}.zero_length", np.array(0, np.int32))
    (is_empty,) = graph.node("Equal", [lengths, zero], "is_empty")             # (B,) bool
    (empty,) = graph.node("Unsqueeze", [is_empty, graph.ints("empty_axes", [0, 2])],
                          "empty")                                             # (1, B, 1)
    return empty


def _embedded(graph: _Graph, weights: Mapping[str, np.ndarray], ids: str) -> str:
    """Token ids (B, T) -> time-major embeddings (T, B, E), as ONNX Runtime's RNNs need."""
    table = graph.constant(f"{graph.side}.embedding", weights[f"{graph.side}.embedding"])
    (x,) = graph.node("Gather", [table, ids], "embedded")                      # (B, T, E)
    (x,) = graph.node("Transpose", [x], "time_major", perm=[1, 0, 2])          # (T, B, E)
    return x


def _layer_arrays(weights, config: Seq2SeqConfig, side: str, k: int):
    """Layer k's ONNX (W, R, B), directions stacked [forward, backward] on a new first axis."""
    to_keras, to_onnx = _TO_ONNX[config.cell]
    per_direction = []
    for layer in recurrent_layers(config, side):
        if layer.index == k:
            stacks = join_gates(weights, layer.prefix, config.cell)  # PyTorch (G*H, in), ...
            per_direction.append(to_onnx(*to_keras(*stacks)))        # (G*H, in), (G*H, H), (2GH,)
    return tuple(np.stack(arrays) for arrays in zip(*per_direction, strict=True))


def _recurrent(graph, weights, config, k, x, lengths, initial=()) -> tuple[str, list[str]]:
    """Layer k of ``graph.side``: one LSTM/GRU node over x (T, B, in).

    Returns the node's Y (T, D, B, H) and its final state parts [Y_h, Y_c], each (D, B, H).
    """
    W, R, B = _layer_arrays(weights, config, graph.side, k)
    prefix = f"{graph.side}.layers.{k}"
    inputs = [x, *(graph.constant(f"{prefix}.{name}", value)
                   for name, value in (("W", W), ("R", R), ("B", B))),
              lengths, *initial]
    directions = W.shape[0]
    attrs = {"hidden_size": R.shape[-1],
             "direction": "bidirectional" if directions == 2 else "forward"}
    if config.cell == "gru":
        attrs["linear_before_reset"] = 1  # reset after the recurrent product: PyTorch's GRU
    outputs = graph.node(config.cell.upper(), inputs, f"layers.{k}.{config.cell}",
                         outputs=1 + len(config.state_names), **attrs)
    return outputs[0], outputs[1:]


def _graph(graph: _Graph, part: str, inputs: list, outputs: list) -> onnx.GraphProto:
    return helper.make_graph(
        graph.nodes, f"seq2seq-rosetta {part}", inputs, outputs, graph.initializers,
    )


def _ids_input(name: str, length: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT64, ["B", length])


def _state_value(name: str, config: Seq2SeqConfig) -> onnx.ValueInfoProto:
    shape = [config.num_layers, "B", config.decoder_hidden_size]               # (L, B, H_dec)
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def encoder_graph(weights: Mapping[str, np.ndarray], config: Seq2SeqConfig,
                  streaming: bool = False) -> onnx.GraphProto:
    """The encoder: src int64 (B, S) -> the hand-off, h (and c), each (L, B, H_dec).

    Each layer reads the one below (both directions side by side, D*H wide) and
    hands off Y_h (D, B, H) rearranged to [forward, backward] (B, D*H): the
    concatenation ``torch_impl`` and ``keras_impl`` make, so the decoder, D*H wide,
    starts from it.  An all-PAD row hands off zeros (ONNX Runtime's Y_h at length 0).

    With ``streaming`` (a unidirectional encoder only), the graph of
    ``onnx_impl.encode(..., initial_state=)``: two more inputs h and c (L, B, H), where
    layer k starts (row k, as the decoder does), and outputs h_out and c_out.  A row
    with no real token keeps the state it was given: ONNX Runtime's Y_h would be 0
    there, so a ``Where`` puts it back, as in the decoder.

    Args:
        weights: a checked canonical dict (``shared.layout.check_weights``).
        config: the model's sizes and cell.
        streaming: build the streaming encoder.
    """
    assert not (streaming and config.bidirectional), "a bidirectional encoder cannot stream"
    graph = _Graph("encoder")
    lengths, is_real = _lengths(graph, "src")                                  # (B,), (B, S)
    x = _embedded(graph, weights, "src")                                       # (S, B, E)
    width = graph.ints("width", [0, 0, config.decoder_hidden_size])
    handoff_width = graph.ints("handoff_width", [0, config.decoder_hidden_size])
    layer_axis = graph.ints("layer_axis", [0])
    finals: list[list[str]] = []  # [layer][part], each (1, B, H_dec)
    for k in range(config.num_layers):
        initial = []
        if streaming:
            row = graph.ints(f"layers.{k}.index", [k])
            initial = [graph.node("Gather", [name, row], f"layers.{k}.initial_{name}", axis=0)[0]
                       for name in config.state_names]                         # each (1, B, H)
        y, state = _recurrent(graph, weights, config, k, x, lengths, initial)  # Y (S, D, B, H)
        (y,) = graph.node("Transpose", [y], f"layers.{k}.batch_major", perm=[0, 2, 1, 3])
        (x,) = graph.node("Reshape", [y, width], f"layers.{k}.outputs")        # (S, B, D*H)
        parts = []
        for name, value in zip(config.state_names, state, strict=True):       # (D, B, H)
            (value,) = graph.node("Transpose", [value], f"layers.{k}.{name}.by_row",
                                  perm=[1, 0, 2])                              # (B, D, H)
            (value,) = graph.node("Reshape", [value, handoff_width],
                                  f"layers.{k}.{name}.joined")                 # (B, D*H)
            (value,) = graph.node("Unsqueeze", [value, layer_axis],
                                  f"layers.{k}.{name}.handoff")                # (1, B, H_dec)
            parts.append(value)
        finals.append(parts)
    part = STREAMING if streaming else "encoder"
    names = output_names(config, part)[: len(config.state_names)]
    empty = _empty_rows(graph, lengths) if streaming else None                # (1, B, 1)
    for j, (name, output) in enumerate(zip(config.state_names, names, strict=True)):
        joined = output if not streaming else f"encoder.new_{name}"
        graph.nodes.append(helper.make_node(
            "Concat", [parts[j] for parts in finals], [joined], name=f"encoder.{joined}", axis=0,
        ))                                                                     # (L, B, H_dec)
        if streaming:  # ONNX Runtime gives zeros for a row of length 0: give its state back
            graph.nodes.append(helper.make_node("Where", [empty, name, joined], [output],
                                                name=f"encoder.{output}"))     # (L, B, H_dec)
    outputs = [_state_value(name, config) for name in names]
    if config.has_attention:
        _memory_outputs(graph, x, is_real)
        outputs += _memory_values(config)
    inputs = [_ids_input("src", "S")]
    if streaming:
        inputs += [_state_value(name, config) for name in config.state_names]
    return _graph(graph, part, inputs, outputs)


def _memory_outputs(graph: _Graph, x: str, is_real: str) -> None:
    """The memory: the top layer's outputs x (S, B, H_dec), batch-major, zeros at PAD; the mask.

    ONNX Runtime already writes zeros past a row's length; the ``Where`` makes the
    rule of ``shared.layout.attention`` (zeros at PAD) the graph's own, not a runtime's habit.
    """
    (y,) = graph.node("Transpose", [x], "memory.batch_major", perm=[1, 0, 2])  # (B, S, H_dec)
    (real,) = graph.node("Unsqueeze", [is_real, graph.ints("memory.feature_axis", [2])],
                         "memory.real")                                        # (B, S, 1)
    zero = graph.constant("encoder.memory.zero", np.array(0.0, np.float32))
    graph.nodes.append(helper.make_node("Where", [real, y, zero], [MEMORY_NAMES[0]],
                                        name=f"encoder.{MEMORY_NAMES[0]}"))     # (B, S, H_dec)
    # The mask is is_real itself, given the output's name: a Cast to its own type does that.
    graph.nodes.append(helper.make_node("Cast", [is_real], [MEMORY_NAMES[1]],
                                        name=f"encoder.{MEMORY_NAMES[1]}",
                                        to=TensorProto.BOOL))                  # (B, S) bool


def _memory_values(config: Seq2SeqConfig) -> list[onnx.ValueInfoProto]:
    return [
        helper.make_tensor_value_info(MEMORY_NAMES[0], TensorProto.FLOAT,
                                      ["B", "S", config.decoder_hidden_size]),
        helper.make_tensor_value_info(MEMORY_NAMES[1], TensorProto.BOOL, ["B", "S"]),
    ]


def decoder_graph(weights: Mapping[str, np.ndarray], config: Seq2SeqConfig) -> onnx.GraphProto:
    """The decoder: tgt_in int64 (B, T) and a state -> logits (B, T, V_tgt) and the new state.

    Layer k starts from row k of each state part.  The new state is each row's
    state at its last real token; a row of only PAD takes no step and keeps the
    state it was given.  Logits at PAD positions are the output bias (Y is zeros
    there): unspecified, as in the other backends.

    Args:
        weights: a checked canonical dict (``shared.layout.check_weights``).
        config: the model's sizes and cell.
    """
    graph = _Graph("decoder")
    lengths, _ = _lengths(graph, "tgt_in")
    empty = _empty_rows(graph, lengths)                                        # (1, B, 1)
    y = _embedded(graph, weights, "tgt_in")                                    # (T, B, E)
    direction_axis = graph.ints("direction_axis", [1])
    finals: list[list[str]] = []  # [layer][part], each (1, B, H_dec)
    for k in range(config.num_layers):
        row = graph.ints(f"layers.{k}.index", [k])
        initial = [graph.node("Gather", [name, row], f"layers.{k}.initial_{name}", axis=0)[0]
                   for name in config.state_names]                             # each (1, B, H_dec)
        y, state = _recurrent(graph, weights, config, k, y, lengths, initial)  # Y (T, 1, B, H_dec)
        (y,) = graph.node("Squeeze", [y, direction_axis], f"layers.{k}.outputs")  # (T, B, H_dec)
        finals.append(state)
    for j, name in enumerate(config.state_names):
        (new,) = graph.node("Concat", [state[j] for state in finals], f"new_{name}",
                            axis=0)                                            # (L, B, H_dec)
        # ONNX Runtime gives zeros for a row of length 0; the other backends keep its state.
        graph.nodes.append(helper.make_node(
            "Where", [empty, name, new], [f"{name}_out"], name=f"decoder.{name}_out",
        ))                                                                     # (L, B, H_dec)
    (y,) = graph.node("Transpose", [y], "batch_major", perm=[1, 0, 2])         # (B, T, H_dec)
    if config.has_attention:
        y = _attention(graph, weights, config.attention, y)                    # (B, T, H_dec)
    W_T = graph.constant("decoder.output.W_T", weights["decoder.output.W"].T)  # (H_dec, V_tgt)
    b = graph.constant("decoder.output.b", weights["decoder.output.b"])        # (V_tgt,)
    (scores,) = graph.node("MatMul", [y, W_T], "output.matmul")                # (B, T, V_tgt)
    graph.nodes.append(helper.make_node("Add", [scores, b], ["logits"], name="decoder.logits"))
    inputs = [_ids_input("tgt_in", "T")] + [_state_value(n, config) for n in config.state_names]
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                           ["B", "T", config.tgt_vocab_size])
    outputs = [logits] + [_state_value(f"{n}_out", config) for n in config.state_names]
    if config.has_attention:
        inputs += _memory_values(config)
        outputs.append(helper.make_tensor_value_info(ATTENTION_OUTPUT, TensorProto.FLOAT,
                                                     ["B", "T", "S"]))
    return _graph(graph, "decoder", inputs, outputs)


def _linear(graph: _Graph, weights, piece: str, x: str, label: str) -> str:
    """W x for the canonical ``decoder.attention.{piece}`` W (out, in): ``MatMul(x, W^T)``."""
    W_T = graph.constant(f"decoder.attention.{piece}_T",
                         np.ascontiguousarray(weights[f"decoder.attention.{piece}"].T))
    return graph.node("MatMul", [x, W_T], f"attention.{label}")[0]


def _attention(graph: _Graph, weights, kind: str, h_t: str) -> str:
    """The attentional hidden states h~ (B, T, H_dec) of the top decoder outputs h_t (B, T, H_dec).

    Reads the graph inputs ``memory_outputs`` h_s (B, S, H_dec) and ``memory_mask``
    (B, S), and writes the graph output ``attention``, the weights a (B, T, S):

        luong      score = h_t^T W_a h_s              MatMul(h_t, Transpose(h_s W_a^T))
        bahdanau   score = v_a^T tanh(W_1 h_t + W_2 h_s)
                                                      broadcast Add over (B, T, S, H_dec), Tanh,
                                                      MatMul with v_a (H_dec, 1), Squeeze
        a  = Softmax over s of Where(real s, score, -inf)
        c  = a h_s;   h~ = tanh(W_c [c; h_t])         MatMul, Concat (context first), MatMul, Tanh

    The all-PAD rule of ``shared.layout.attention``: a source row with no real token would
    be all -inf, and Softmax would give NaN; such a row is left unmasked for the
    Softmax and its weights are then set to 0 (``Where``), so its context is 0.
    """
    h_s, mask = MEMORY_NAMES
    if kind == "luong":
        keys = _linear(graph, weights, "W_a", h_s, "keys")                     # (B, S, H_dec)
        (keys,) = graph.node("Transpose", [keys], "attention.keys_by_column",
                             perm=[0, 2, 1])                                   # (B, H_dec, S)
        (scores,) = graph.node("MatMul", [h_t, keys], "attention.scores")      # (B, T, S)
    else:
        query = _linear(graph, weights, "W_1", h_t, "query")                   # (B, T, H_dec)
        (query,) = graph.node("Unsqueeze", [query, graph.ints("attention.source_axis", [2])],
                              "attention.query_per_source")                    # (B, T, 1, H_dec)
        keys = _linear(graph, weights, "W_2", h_s, "keys")                     # (B, S, H_dec)
        (keys,) = graph.node("Unsqueeze", [keys, graph.ints("attention.step_axis", [1])],
                             "attention.keys_per_step")                        # (B, 1, S, H_dec)
        (both,) = graph.node("Add", [query, keys], "attention.sum")            # (B, T, S, H_dec)
        (both,) = graph.node("Tanh", [both], "attention.tanh")                 # (B, T, S, H_dec)
        v_a = graph.constant("decoder.attention.v_a_column",
                             np.asarray(weights["decoder.attention.v_a"])[:, None])  # (H_dec, 1)
        (scores,) = graph.node("MatMul", [both, v_a], "attention.scores_column")  # (B, T, S, 1)
        (scores,) = graph.node("Squeeze", [scores, graph.ints("attention.last_axis", [3])],
                               "attention.scores")                             # (B, T, S)
    # The mask: PAD positions -inf; a row with no real token at all, nothing masked (then 0).
    (real,) = graph.node("Unsqueeze", [mask, graph.ints("attention.mask_step_axis", [1])],
                         "attention.real")                                     # (B, 1, S)
    (count,) = graph.node("Cast", [real], "attention.real_float", to=TensorProto.FLOAT)
    (count,) = graph.node("ReduceSum", [count, graph.ints("attention.count_axis", [2])],
                          "attention.count", keepdims=1)                       # (B, 1, 1)
    zero = graph.constant("decoder.attention.zero", np.array(0.0, np.float32))
    (empty,) = graph.node("Equal", [count, zero], "attention.empty")           # (B, 1, 1) bool
    (kept,) = graph.node("Or", [real, empty], "attention.kept")                # (B, 1, S) bool
    minus_inf = graph.constant("decoder.attention.minus_inf", np.array(-np.inf, np.float32))
    (scores,) = graph.node("Where", [kept, scores, minus_inf], "attention.masked")  # (B, T, S)
    (a,) = graph.node("Softmax", [scores], "attention.softmax", axis=-1)       # (B, T, S)
    graph.nodes.append(helper.make_node("Where", [empty, zero, a], [ATTENTION_OUTPUT],
                                        name=f"decoder.{ATTENTION_OUTPUT}"))    # (B, T, S)
    (context,) = graph.node("MatMul", [ATTENTION_OUTPUT, h_s], "attention.context")  # (B, T, H)
    (joined,) = graph.node("Concat", [context, h_t], "attention.joined", axis=-1)  # (B, T, 2H)
    combined = _linear(graph, weights, "W_c", joined, "combined")              # (B, T, H_dec)
    return graph.node("Tanh", [combined], "attention.hidden")[0]               # (B, T, H_dec)
