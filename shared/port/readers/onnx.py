"""ONNX models, read node by node with ``onnx.load``; nothing in the file is run.

    node                               with constant inputs           what it is
    LSTM                               W (D, 4H, in), R (D, 4H, H),   an LSTM (gates i, o, f, c)
                                       B (D, 8H) = [Wb, Rb]
    GRU                                W (D, 3H, in), R, B (D, 6H)    a GRU (z, r, h);
                                                                      linear_before_reset=1 is
                                                                      PyTorch's, 0 resets before
    Gather                             data (V, E)                    an embedding
    Gemm                               B, C                           a dense layer (transB: B is
                                                                      (out, in), else (in, out))
    MatMul (+ Add)                     B (in, out) (+ bias (out,))    a dense layer, as
                                                                      torch.onnx.export writes one
    MatMul -> Reshape -> Add                                          the same, as tf2onnx writes a
                                                                      Dense on sequences
    ... -> Softmax (Relu, Tanh, ...)                                  the activation the source
                                                                      applies after it, reported
    any other node reading float weights                              refused: port does not know it
      (a float constant of several values, not all equal: fills such as a zero initial state
      are not weights)

Names: each layer is named after the module or layer that exported it
(``readers.onnx_names``: "/encoder/embedding/Gather" -> "encoder.embedding"), and
the LSTM or GRU nodes of one module (torch.onnx.export writes "/lstm/LSTM",
"/lstm/LSTM_1" for ``nn.LSTM(num_layers=2)``) are read as one stacked module, so
that the user's own module loads the port.  tf2onnx folds away an all-zero bias
(no Add follows the MatMul): such a dense layer is ported bias-free, and the
report says so and names the activation that follows it.
Refused LSTM/GRU options: peepholes (input P), ``clip``, ``input_forget=1``,
``direction="reverse"`` and activations other than Sigmoid, Tanh, Tanh.

The file is read by ``shared.onnx.load.load_onnx``: every tensor of the model
(initializers, ``Constant`` nodes, every attribute, every subgraph) checked
against its declared dims before anything converts it.  External data: a large
model keeps its tensors in files beside the .onnx, named inside it.  Port reads
them only from SRC's own folder, for every tensor: a location that is absolute
or leads out of that folder (``../``, a symlink) is refused before anything is
read, and each range is checked against its file's size.  Only operators of the
default ONNX domain are read: a node of another domain (``com.example``) is
code its runtime brings, whatever its op_type says.

Shape legend: D directions, E embedding, H hidden, V vocabulary.
"""

from __future__ import annotations

import numpy as np

from shared.files.safe import brief
from shared.layout import onnx_gru_to_keras, onnx_lstm_to_keras
from shared.port import rules
from shared.port.canonical import from_keras
from shared.port.layers import (
    Dense,
    Embedding,
    PortError,
    Recurrent,
    Source,
    Unportable,
    float32,
)
from shared.port.readers.onnx_names import full_name, layer_name

DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}
GATES = {"LSTM": 4, "GRU": 3}


DEFAULT_DOMAINS = ("", "ai.onnx")


def read_onnx(path: str) -> Source:
    """An ONNX model's layers."""
    try:
        from onnx import AttributeProto, numpy_helper

        from shared.onnx.load import load_onnx
    except ImportError:
        raise PortError("reading an ONNX model needs onnx (pip install onnx)") from None
    model = load_onnx(path, "ONNX model", external=True)
    if not model.graph.node:
        raise PortError(f"{path} is not an ONNX model with a graph (no nodes)")
    for node in model.graph.node:
        if node.domain not in DEFAULT_DOMAINS:
            raise PortError(f"{path}: node {brief(node.name)} (op {brief(node.op_type)}) is of the "
                            f"operator domain {brief(node.domain)}; port reads only the default "
                            "ONNX domain's operators (another domain's are code its runtime "
                            "brings, whatever their name)")
    constants = {tensor.name: tensor for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.output) == 1:
            for attribute in node.attribute:
                if attribute.name == "value" and attribute.type == AttributeProto.TENSOR:
                    constants[node.output[0]] = attribute.t
    floats = {}
    for name, tensor in constants.items():
        value = numpy_helper.to_array(tensor)  # load_onnx checked its size against its dims
        if np.issubdtype(value.dtype, np.floating):
            floats[name] = value
    layers = _layers(path, model.graph.node, floats, model.producer_name)
    parameters = sum(int(value.size) for value in floats.values())
    return Source(path, "onnx", "ONNX model", layers, len(floats), parameters)


def _attributes(path: str, node) -> dict:
    from onnx import helper

    try:
        values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    except Exception as error:  # an attribute of no known type
        raise PortError(f"{path}: node {brief(node.name)} has an attribute that cannot be read "
                        f"({type(error).__name__})") from None
    text = lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v  # noqa: E731
    return {k: [text(x) for x in v] if isinstance(v, list) else text(v)
            for k, v in values.items()}


def _layers(path: str, nodes, floats: dict, producer: str) -> list:
    consumers: dict[str, list] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    layers, done, bases = [], set(), {}  # done: ids of nodes read as part of a layer
    for index, node in enumerate(nodes):
        name = full_name(node.name) or f"{node.op_type}_{index}"
        inputs = list(node.input)
        if node.op_type in GATES:
            layer = _recurrent(path, name, node, inputs, floats)
        elif (node.op_type == "Gather" and len(inputs) == 2 and inputs[0] in floats
              and floats[inputs[0]].ndim == 2):
            layer = Embedding(name, "ONNX Gather", "onnx",
                              float32(f"{path}: {inputs[0]}", floats[inputs[0]]))
        elif node.op_type == "Gemm" and len(inputs) > 1 and inputs[1] in floats \
                and floats[inputs[1]].ndim == 2:
            layer = _gemm(path, name, node, inputs, floats)
        elif (node.op_type == "MatMul" and len(inputs) == 2 and len(node.output) == 1
              and inputs[1] in floats and floats[inputs[1]].ndim == 2
              and inputs[0] not in floats):
            layer = _matmul(path, name, node, floats, consumers, done)
        elif id(node) not in done and node.op_type != "Constant" and any(
            i in floats and _learned(floats[i]) for i in inputs
        ):
            learned = sum(int(floats[i].size) for i in set(inputs) if i in floats)
            layer = Unportable(name, f"ONNX {node.op_type} node", rules.UNKNOWN, learned)
        else:
            continue
        layers.append(layer)
        # A node whose name holds no layer ("LSTM__31") gets its operator's: never stacked.
        bases[id(layer)] = layer_name(node.name, node.op_type, producer) \
            or (node.op_type.lower(), "made up")
    return _named(_stacked(layers, bases), bases)


def _stacked(layers: list, bases: dict) -> list:
    """The LSTM/GRU nodes of one module, one after another, read as one stacked module."""
    groups: dict[str, list] = {}
    for layer in layers:
        if isinstance(layer, Recurrent):
            groups.setdefault(bases[id(layer)], []).append(layer)
    merged = {}
    for base, group in groups.items():
        first, D = group[0], len(group[0].directions)
        if len(group) > 1 and isinstance(base, str) and all(
            (layer.cell, layer.hidden, layer.bidirectional, layer.reset_after)
            == (first.cell, first.hidden, first.bidirectional, first.reset_after)
            and (k == 0 or layer.inputs == D * first.hidden) for k, layer in enumerate(group)
        ):
            stack = _stack(group)
            bases[id(stack)] = base
            merged.update({id(layer): stack if k == 0 else None for k, layer in enumerate(group)})
    kept = [merged.get(id(layer), layer) for layer in layers]
    return [layer for layer in kept if layer is not None]


def _stack(group: list) -> Recurrent:
    first = group[0]
    weights, raw, notes = {}, {}, []
    for k, layer in enumerate(group):
        weights.update({f"l{k}.{name.split('.', 1)[1]}": v for name, v in layer.weights.items()})
        raw.update({f"l{k}.{key.split('.', 1)[1]}": v for key, v in layer.raw.items()})
        notes.extend(note for note in layer.notes if note not in notes)
    names = ", ".join(layer.name for layer in group)
    notes.append(f"{len(group)} ONNX nodes ({names}), each layer's input the one before's "
                 "output, read as one module of that many layers")
    return Recurrent(first.name, first.what, "onnx", first.cell, first.inputs, first.hidden,
                     len(group), first.bidirectional, weights, first.reset_after, raw,
                     first.settings, notes)


def _named(layers: list, bases: dict) -> list:
    """Each layer named after its module where that name is its own, else its node's name."""
    counts: dict[str, int] = {}
    for layer in layers:
        counts[bases[id(layer)]] = counts.get(bases[id(layer)], 0) + 1
    for layer in layers:
        base = bases[id(layer)]
        if counts[base] == 1:
            layer.name = base if isinstance(base, str) else base[0]
    return layers


def _learned(value: np.ndarray) -> bool:
    """Whether a constant looks like weights: more than one value, and not all the same.

    Exporters also store fills (the zero initial state an LSTM is expanded from,
    a scale of 1.0); a trained weight is never one number repeated.
    """
    return value.size > 1 and not np.all(value == value.flat[0])


def _recurrent(path, name, node, inputs, floats):
    op = node.op_type
    attributes = _attributes(path, node)
    what = f"ONNX {op}"
    inputs = inputs + [""] * (8 - len(inputs))  # X W R B sequence_lens initial_h initial_c P
    whys = []
    if op == "LSTM" and inputs[7]:
        whys.append(rules.PEEPHOLES)
    if attributes.get("clip") is not None:
        whys.append(rules.CLIPPING.format(what=f"clip={brief(attributes['clip'])}"))
    if attributes.get("input_forget", 0):
        whys.append(rules.ONNX_OPTION.format(what="input_forget=1 (coupled input and forget "
                                                  "gates)"))
    direction = attributes.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise PortError(f"{path}: {what} {brief(name)} has direction={brief(direction)}; "
                        "ONNX defines forward, reverse and bidirectional")
    if direction == "reverse":
        whys.append(rules.ONNX_OPTION.format(what="direction='reverse' (one backward direction)"))
    directions = 2 if direction == "bidirectional" else 1
    activations = attributes.get("activations")
    if activations and activations != DEFAULT_ACTIVATIONS[op] * directions:
        whys.append(rules.ONNX_OPTION.format(what=f"activations={brief(activations)}"))
    missing = [role for role, i in (("W", 1), ("R", 2)) if inputs[i] not in floats]
    if inputs[3] and inputs[3] not in floats:
        missing.append("B")
    if missing:
        whys.append(f"computes its {', '.join(missing)} at run time instead of storing them")
    if whys:
        return Unportable(name, what, "; and ".join(whys))
    W = float32(f"{path}: {inputs[1]}", floats[inputs[1]])  # (D, G*H, in)
    R = float32(f"{path}: {inputs[2]}", floats[inputs[2]])  # (D, G*H, H)
    gates = GATES[op]
    hidden = R.shape[-1] if R.ndim == 3 else 0
    if (W.ndim != 3 or R.ndim != 3 or W.shape[0] != directions or R.shape[0] != directions
            or hidden < 1 or W.shape[1] != gates * hidden or R.shape[1] != gates * hidden):
        raise PortError(f"{path}: {what} {brief(name)} has W {W.shape}, R {R.shape}; expected "
                        f"({directions}, {gates}H, in) and ({directions}, {gates}H, H)")
    B = (float32(f"{path}: {inputs[3]}", floats[inputs[3]]) if inputs[3]
         else np.zeros((directions, 2 * gates * hidden), np.float32))  # (D, 2*G*H)
    if B.shape != (directions, 2 * gates * hidden):
        raise PortError(f"{path}: {what} {brief(name)} has B {B.shape}; expected "
                        f"({directions}, {2 * gates * hidden}) for H = {hidden}")
    lbr = attributes.get("linear_before_reset", 0)
    if lbr not in (0, 1):
        raise PortError(f"{path}: {what} {brief(name)} has linear_before_reset={brief(lbr)}; "
                        "expected 0 or 1")
    weights = {}
    for d, direction_name in enumerate(("forward", "backward")[:directions]):
        try:
            if op == "LSTM":
                arrays = onnx_lstm_to_keras(W[d], R[d], B[d])
            else:
                arrays = onnx_gru_to_keras(W[d], R[d], B[d], lbr)
            weights.update(from_keras(op.lower(), f"l0.{direction_name}", *arrays))
        except ValueError as error:
            raise PortError(f"{path}: {what} {name!r} ({direction_name}): {error}") from None
    settings = {"op": op, "direction": direction, "linear_before_reset": lbr,
                "reset": "linear_before_reset=0"}
    notes = [] if inputs[3] else ["no B in the source: zero biases written"]
    return Recurrent(name, what, "onnx", op.lower(), W.shape[2], hidden, 1, directions == 2,
                     weights, op == "LSTM" or bool(lbr), {"l0.W": W, "l0.R": R, "l0.B": B},
                     settings, notes)


def _gemm(path, name, node, inputs, floats):
    attributes = _attributes(path, node)
    defaults = {"alpha": 1.0, "beta": 1.0, "transA": 0}
    odd = {k: attributes[k] for k, v in defaults.items() if attributes.get(k, v) != v}
    if odd or (len(inputs) > 2 and inputs[2] and inputs[2] not in floats):
        what = ", ".join(f"{k}={v}" for k, v in odd.items()) or "a bias computed at run time"
        return Unportable(name, "ONNX Gemm", rules.ONNX_OPTION.format(what=what))
    B = float32(f"{path}: {inputs[1]}", floats[inputs[1]])
    raw = {"weight": B} if attributes.get("transB", 0) else {"kernel": B}
    weight = B if "weight" in raw else np.ascontiguousarray(B.T)  # (out, in)
    bias = None
    if len(inputs) > 2 and inputs[2]:
        bias = float32(f"{path}: {inputs[2]}", floats[inputs[2]])
        if bias.size not in (1, weight.shape[0]) or bias.ndim > 2:
            raise PortError(f"{path}: ONNX Gemm {brief(name)} has a bias of shape {bias.shape} "
                            f"for {weight.shape[0]} outputs")
        bias = np.broadcast_to(bias.reshape(-1), (weight.shape[0],)).copy()
        raw["bias"] = bias
    return Dense(name, "ONNX Gemm", "onnx", weight, bias, raw)


SHAPE_ONLY = ("Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten")
ACTIVATIONS = {"Softmax": "softmax", "LogSoftmax": "log_softmax", "Relu": "relu",
               "Tanh": "tanh", "Sigmoid": "sigmoid"}


def _next(output: str, consumers: dict) -> tuple[list, str]:
    """The shape-only nodes after ``output`` (tf2onnx's Reshape back to (B, T, out)), and the
    output after them."""
    passed = []
    while (len(consumers.get(output, [])) == 1 and consumers[output][0].op_type in SHAPE_ONLY
           and consumers[output][0].output):
        passed.append(consumers[output][0])
        output = consumers[output][0].output[0]
    return passed, output


def _matmul(path, name, node, floats, consumers, done):
    kernel = float32(f"{path}: {node.input[1]}", floats[node.input[1]])  # (in, out)
    raw, bias, what = {"kernel": kernel}, None, ["MatMul"]
    passed, output = _next(node.output[0], consumers)
    after = consumers.get(output, [])
    if len(after) == 1 and after[0].op_type == "Add":
        other = [i for i in after[0].input if i != output]
        if len(other) == 1 and other[0] in floats and floats[other[0]].size == kernel.shape[1] \
                and floats[other[0]].shape[-1] == kernel.shape[1]:
            bias = float32(f"{path}: {other[0]}", floats[other[0]]).reshape(-1)
            raw["bias"] = bias
            done.update(id(n) for n in (*passed, after[0]))
            what += [*(n.op_type for n in passed), "Add"]
            passed, output = _next(after[0].output[0], consumers) if after[0].output \
                else (passed, output)
            after = consumers.get(output, [])
    activation = ACTIVATIONS.get(after[0].op_type) if len(after) == 1 else None
    notes = []
    if bias is None and "Reshape" in [n.op_type for n in passed]:  # tf2onnx's Dense on sequences
        notes.append("no Add follows it, so it is written bias-free (tf2onnx drops a bias that "
                     "is all zeros: if the source layer had one, it was zeros)")
    return Dense(name, f"ONNX {' -> '.join(what)}", "onnx", np.ascontiguousarray(kernel.T), bias,
                 raw, activation, notes)
