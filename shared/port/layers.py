"""What a port holds between reading and writing: a model file's layers, by name, canonical.

Every reader (``shared.port.readers.keras``, ``read_torch``, ``read_tf1``,
``read_onnx``) turns a file into a ``Source``: a list of named layers, each in
one form whatever framework wrote it, and every writer reads only that form.
No reader talks to a writer directly (the one bridge of ``shared.layout``).

The layers:

    Recurrent    an LSTM or GRU: L stacked layers k (L = 1 except a PyTorch
                 ``num_layers`` module), one or two directions, its weights gate
                 by gate in canonical names "l{k}.{direction}.{gate}.{piece}"
                 (``shared.layout.split_gates``: W_ih (H, in), W_hh (H, H),
                 b_ih (H,), b_hh (H,); gates i, f, g, o or r, z, n)
    Embedding    a lookup table, weight (V, E)
    Dense        a linear layer, weight (out, in) and bias (out,) or none, as
                 ``nn.Linear`` keeps them; an activation the source applied after it
    Weightless   a layer with nothing to port (Dropout, Masking, InputLayer, ...)
    Unportable   a layer that cannot be ported to any target, why, and how many
                 numbers it holds (``--partial`` lists it with them)

Each layer keeps its source name (a Keras layer name, a PyTorch module path, a
TF1 scope or an ONNX node name, dotted) and the raw arrays exactly as the file
held them (``raw``), so that ``--check`` can run the source's own layer on them
rather than trust the conversion it is checking.

Shape legend: E embedding, H hidden, L layers, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shared.layout import join_gates

TARGETS = ("torch", "keras")
DIRECTIONS = ("forward", "backward")


MAX_MESSAGE = 2000  # characters: a refusal is one line a person reads
MAX_NAME = 1000  # characters of a layer's name: a deep PyTorch module path is a few hundred


class PortError(ValueError):
    """A file that cannot be read, or a port that cannot be done: one line, for people.

    A message longer than ``MAX_MESSAGE`` keeps its head (the file, what is wrong) and
    its tail (what to do) and says how much it left out: a file can make a name
    megabytes long, and a message that repeats it whole is not a line any more.
    """

    def __init__(self, message: object = "") -> None:
        text = str(message)
        if len(text) > MAX_MESSAGE:
            left_out = len(text) - (MAX_MESSAGE - 400) - 300
            text = (f"{text[: MAX_MESSAGE - 400]} ... ({left_out} characters not shown) ... "
                    f"{text[-300:]}")
        super().__init__(text)


@dataclass
class Recurrent:
    """An LSTM or GRU layer, canonical.

    Attributes:
        name: the source name, e.g. "encoder_lstm", "encoder.rnn", "lstm.LSTM".
        what: what it was in the source, e.g. "Keras LSTM", "nn.LSTM", "TF1 LSTMCell".
        origin: whose semantics it has, which decides what runs the source side of
            ``--check``: "keras" (Keras 3, and TF2's tf.keras where they agree),
            "keras2" (a file written by Keras <= 2.x: its own activations), "cudnn"
            (Keras 2's CuDNNLSTM/CuDNNGRU: cuDNN's weight layout), "torch", "tf1", "onnx".
        cell: "lstm" or "gru".
        inputs: in_0, the width layer k = 0 reads; layer k > 0 reads D*H.
        hidden: H per direction.
        num_layers: L.
        bidirectional: two directions (D = 2), concatenated [forward, backward].
        weights: canonical, "l{k}.{direction}.{gate}.{piece}" -> float32 array.
        reset_after: a GRU's reset acts after the recurrent product (PyTorch's GRU)
            or before it (False: TF1's GRUCell, Keras reset_after=False).
        raw: the source's own arrays, keyed as the source names them.
        settings: what the source needs besides ``raw`` to run this layer again.
        notes: lines for the report.
    """

    name: str
    what: str
    origin: str
    cell: str
    inputs: int
    hidden: int
    num_layers: int
    bidirectional: bool
    weights: dict[str, np.ndarray]
    reset_after: bool = True
    raw: dict[str, np.ndarray] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def directions(self) -> tuple[str, ...]:
        return DIRECTIONS[: 2 if self.bidirectional else 1]

    def stacked(self, k: int, direction: str) -> tuple[np.ndarray, ...]:
        """Layer k's (weight_ih (G*H, in), weight_hh (G*H, H), bias_ih, bias_hh), stacked."""
        return join_gates(self.weights, f"l{k}.{direction}", self.cell)

    def sizes(self) -> str:
        """E.g. "71 -> 256", "4 -> 3 x2 bidirectional"."""
        text = f"{self.inputs} -> {self.hidden}"
        if self.num_layers > 1:
            text += f" x{self.num_layers}"
        return text + (" bidirectional" if self.bidirectional else "")


@dataclass
class Embedding:
    """A lookup table: weight (V, E)."""

    name: str
    what: str
    origin: str
    weight: np.ndarray
    notes: list[str] = field(default_factory=list)

    def sizes(self) -> str:
        return f"{self.weight.shape[0]} x {self.weight.shape[1]}"


@dataclass
class Dense:
    """A linear layer y = x W^T + b, W (out, in) as ``nn.Linear`` keeps it.

    Attributes:
        raw: {"kernel": (in, out)} where the source multiplies x @ kernel, or
            {"weight": (out, in)} where it multiplies W @ x; and "bias" when it has one.
        activation: what the source applied after the linear part ("softmax"), or None.
    """

    name: str
    what: str
    origin: str
    weight: np.ndarray
    bias: np.ndarray | None
    raw: dict[str, np.ndarray]
    activation: str | None = None
    notes: list[str] = field(default_factory=list)

    def sizes(self) -> str:
        return f"{self.weight.shape[1]} -> {self.weight.shape[0]}"


@dataclass
class Weightless:
    """A layer with no weights: nothing to port (Dropout, Masking, InputLayer, ...)."""

    name: str
    what: str


@dataclass
class Unportable:
    """A layer that no target can express, and why (the rule texts are in ``shared.port.rules``).

    ``parameters`` is how many numbers it holds: what a ``--partial`` port leaves behind.
    """

    name: str
    what: str
    why: str
    parameters: int = 0


@dataclass
class Source:
    """A model file, read.

    Attributes:
        path: the file (or TF1 checkpoint prefix) as given.
        kind: "keras", "keras-h5", "torch", "safetensors", "tf1" or "onnx".
        description: the kind in words, for the report.
        layers: every layer found, in the file's order.
        tensors: how many tensors were read from the file.
        parameters: how many numbers they hold.
        ignored: tensors read and deliberately not ported, with why (optimizer slots).
        notes: lines for the report that belong to no one layer.
        about: how the file was read, where the report must say it (layers identified
            by their saved structure, a prefix dropped), printed under the first line.
        submodels: {name prefix: description} when the file holds several models (a
            dict of state_dicts): the report lists each one's layers under its own heading.
    """

    path: str
    kind: str
    description: str
    layers: list
    tensors: int
    parameters: int
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    about: list[str] = field(default_factory=list)
    submodels: dict[str, str] = field(default_factory=dict)

    def ported(self) -> list:
        """The layers with weights to port: Recurrent, Embedding and Dense."""
        return [layer for layer in self.layers if isinstance(layer, Recurrent | Embedding | Dense)]


def parameters(layer) -> int:
    """How many numbers a layer of a ``Source`` holds, as its source stored them."""
    if isinstance(layer, Unportable):
        return layer.parameters
    if isinstance(layer, Recurrent):
        return sum(int(np.size(a)) for a in (layer.raw or layer.weights).values())
    if isinstance(layer, Embedding):
        return int(layer.weight.size)
    if isinstance(layer, Dense):
        return int(layer.weight.size) + (0 if layer.bias is None else int(layer.bias.size))
    return 0


def dotted(name: str) -> str:
    """A source name as a module path: "/lstm/LSTM" -> "lstm.LSTM", "rnn/cell_0" -> "rnn.cell_0"."""
    return ".".join(part for part in name.replace("/", ".").split(".") if part)


def keras_name(name: str) -> str:
    """The Keras layer name a ported name is looked up by: its "." and "/" read as "_"."""
    return name.replace(".", "_").replace("/", "_")


def float32(name: str, array) -> np.ndarray:
    """``array`` as float32, or PortError naming it when it holds no real numbers or NaN/inf."""
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise PortError(f"{name} must hold real numbers; got dtype {array.dtype}")
    array = np.array(array, dtype=np.float32, order="C")
    if not np.all(np.isfinite(array)):
        raise PortError(f"{name} holds NaN or inf; a weight must be finite")
    return array
