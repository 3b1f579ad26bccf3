"""TF1 checkpoints (``tf.compat.v1.train.Saver``), read by variable name, never importing a graph.

The variables of a checkpoint prefix (``model.ckpt``: ``model.ckpt.index`` +
``model.ckpt.data-*``) are read without TensorFlow, by ``shared.files.bundle``:
TensorFlow's own C++ reader trusts the index (a FIFO as a shard hangs it, index
shapes that disagree with the data are not its concern), while the bundle
reader checks every size against the files before it reads a byte.  The
``.meta`` graph is never imported.  A folder's ``checkpoint`` state file may
name the prefix, but only one inside that folder.  The cells are told by their
variables, under the variable scope TF1 gave each cell:

    variables under scope S                         what it is
    S/kernel (in + H, 4H), S/bias (4H,),            LSTMCell / BasicLSTMCell (S ends in
      S named *lstm*                                  lstm_cell or basic_lstm_cell)
      + S/w_f_diag, w_i_diag, w_o_diag              ... with peepholes: refused
      + S/projection/kernel                         ... with num_proj: refused
    S/gates/kernel (in + H, 2H), S/gates/bias,      GRUCell (resets before the product)
      S/candidate/kernel (in + H, H), S/candidate/bias
    S/kernel (in, out), S/bias (out,), other S      a dense layer, x @ kernel + bias
    a 2-D variable named *embedding*                an embedding table
    */Adam, */Adam_1, beta1_power, global_step ...  training state: read, not ported

TF 1.0-1.2 named the same variables ``weights`` and ``biases``; both spellings
are read.  A ``MultiRNNCell`` gives one scope per cell
(``rnn/multi_rnn_cell/cell_0/lstm_cell``), and so one ported layer per cell; a
``bidirectional_dynamic_rnn`` gives ``fw`` and ``bw`` scopes, each its own
one-directional layer (TF1 runs the bw cell on each row's real steps reversed).

The LSTM's ``forget_bias`` (1.0 unless the cell was built with another) is
added at run time and is not in the checkpoint: ``forget_bias`` here is folded
into the ported forget-gate bias (``shared.layout.lstm.tf1_lstm_to_keras``).
Cell clipping (``cell_clip``) is not in the checkpoint either.

Shape legend: H hidden.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from shared.files.bundle import read_bundle
from shared.files.external import inside
from shared.files.safe import FileRefusedError, brief, read_regular
from shared.layout import tf1_gru_to_keras, tf1_lstm_to_keras
from shared.port import rules
from shared.port.canonical import from_keras
from shared.port.detect import tf1_prefix
from shared.port.layers import (
    Dense,
    Embedding,
    PortError,
    Recurrent,
    Source,
    Unportable,
    dotted,
    float32,
)
from shared.port.readers.tf2 import OBJECT_BASED, read_tf2

KERNEL, BIAS = ("kernel", "weights"), ("bias", "biases")
# Optimizer slots, named "{variable}/{slot}": training state, not weights.
SLOT = re.compile(r"^(Adam|Adagrad|Adadelta|Ftrl|Momentum|RMSProp|ExponentialMovingAverage)"
                  r"(_\d+)?$")
TRAINING = {"global_step", "beta1_power", "beta2_power", "learning_rate"}
# A forget_bias port folds into the weights: TF1's default is 1.0, papers use up to 5.
FORGET_BIAS_RANGE = (-100.0, 100.0)
MAX_STATE_BYTES = 1 << 20  # the 'checkpoint' state file: a few lines of text


def checkpoint_prefix(path: str) -> str:
    """The prefix of the TF1 checkpoint ``path`` names: itself, or the one in its folder."""
    if os.path.isdir(path):
        state = Path(path) / "checkpoint"
        if state.is_file():
            text = read_regular(state, "TF checkpoint state file", MAX_STATE_BYTES)
            found = re.search(rb'^model_checkpoint_path:\s*"(.*)"', text, re.M)
            if found:
                named = found.group(1).decode("utf-8", "replace")
                what = "the checkpoint it names (model_checkpoint_path)"
                index = inside(path, f"{named}.index", state, what, absolute=True)
                return str(index)[: -len(".index")]
        indexes = sorted(Path(path).glob("*.index"))
        if len(indexes) != 1:
            raise PortError(f"{path} holds {len(indexes)} TF1 checkpoints (*.index) and no "
                            "'checkpoint' file naming one; give the prefix")
        return str(indexes[0])[: -len(".index")]
    prefix = tf1_prefix(path)
    if prefix is None:
        raise PortError(f"{path} is not a TF1 checkpoint prefix (no {path}.index)")
    return prefix


def check_forget_bias(forget_bias) -> float:
    """``forget_bias`` as a float, or PortError: a finite number in ``FORGET_BIAS_RANGE``.

    It is added to every forget-gate bias of the written file: NaN, inf or 1e39 (which
    is inf in float32) would write weights no loader accepts.
    """
    low, high = FORGET_BIAS_RANGE
    if isinstance(forget_bias, bool) or not isinstance(forget_bias, int | float) or not (
            low <= forget_bias <= high):
        raise PortError(f"--tf1-forget-bias must be a finite number in [{low:g}, {high:g}] "
                        f"(TF1's default is 1.0); got {brief(forget_bias)}")
    return float(forget_bias)


def load_variables(path: str) -> dict[str, np.ndarray]:
    """Every variable of the checkpoint ``path`` names, by name, read by
    ``shared.files.bundle`` (no TensorFlow, no graph, every size and checksum checked);
    a string variable (``_CHECKPOINTABLE_OBJECT_GRAPH``) as an array of ``bytes``."""
    prefix = checkpoint_prefix(path)
    try:
        bundle = read_bundle(prefix)
        return {name: bundle.read(name) for name in bundle.entries}
    except FileRefusedError as refused:
        raise PortError(f"{path}: not a readable TF checkpoint ({refused})") from None


def read_tf1(path: str, forget_bias: float = 1.0, linear: tuple[str, ...] = ()) -> Source:
    """A TF checkpoint's layers: a TF1 one's by variable scope (``forget_bias``: the LSTM
    cells', TF1's default 1.0), a TF2 object-based one's by its objects (``readers.tf2``)."""
    forget_bias = check_forget_bias(forget_bias)
    variables = load_variables(path)
    names = list(variables)
    if any(OBJECT_BASED in name for name in names):
        return read_tf2(path, variables, linear)
    if linear:
        raise PortError(f"--linear names layers read by their structure; {path} is a TF1 "
                        "checkpoint, whose variable scopes say what each layer is")
    ignored = [name for name in names
               if name in TRAINING or SLOT.match(name.rsplit("/", 1)[-1])
               or name == "_CHECKPOINTABLE_OBJECT_GRAPH"]
    weights = {name: variables[name] for name in names if name not in ignored}
    layers = _layers(path, weights, forget_bias)
    parameters = sum(int(np.size(value)) for value in variables.values())
    notes = [f"{len(ignored)} training-state variables read and not ported (optimizer slots, "
             "global_step)"] if ignored else []
    return Source(path, "tf1", "TF1 checkpoint", layers, len(names), parameters, [], notes)


def _get(weights: dict, scope: str, spellings: tuple[str, ...]):
    for spelling in spellings:
        if f"{scope}/{spelling}" in weights:
            return f"{scope}/{spelling}"
    return None


def _layers(path: str, weights: dict, forget_bias: float) -> list:
    used: set[str] = set()
    layers = []
    # Every scope that holds a variable, or a scope that does (a GRUCell's gates/, candidate/),
    # outer scopes first, so that a cell claims its inner scopes before they are looked at.
    scopes = sorted({name.rsplit("/", depth)[0] for name in weights
                     for depth in range(1, name.count("/") + 1)})
    for scope in scopes:
        gates = _get(weights, f"{scope}/gates", KERNEL)
        kernel, bias = _get(weights, scope, KERNEL), _get(weights, scope, BIAS)
        if (gates or kernel) in used:
            continue
        if gates is not None:
            layers.append(_gru(path, scope, weights, used))
        elif kernel is not None and bias is not None and "lstm" in scope.rsplit("/", 1)[-1].lower():
            layers.append(_lstm(path, scope, weights, used, forget_bias))
        elif kernel is not None and bias is not None and np.ndim(weights[kernel]) == 2:
            used.update((kernel, bias))
            raw = {"kernel": float32(kernel, weights[kernel]), "bias": float32(bias, weights[bias])}
            layers.append(Dense(dotted(scope), "TF1 dense (x @ kernel + bias)", "tf1",
                                np.ascontiguousarray(raw["kernel"].T), raw["bias"], raw))
    for name, value in weights.items():
        if name not in used and np.ndim(value) == 2 and "embedding" in name.rsplit("/", 1)[-1]:
            used.add(name)
            layers.append(Embedding(dotted(name), "TF1 embedding", "tf1", float32(name, value)))
    left: dict[str, list[str]] = {}
    for name in weights:
        if name not in used:
            left.setdefault(name.rsplit("/", 1)[0] if "/" in name else name, []).append(name)
    for scope, names in left.items():
        shapes = ", ".join(f"{n.rsplit('/', 1)[-1]} {tuple(np.shape(weights[n]))}" for n in names)
        layers.append(Unportable(dotted(scope), f"TF1 variables {shapes}", rules.UNKNOWN))
    return layers


def _reversed_note(scope: str) -> list[str]:
    if "bw" in scope.split("/"):
        return ["a bw cell: TF1 runs it over each row's real steps reversed; so must you"]
    return []


def _lstm(path, scope, weights, used, forget_bias):
    kernel, bias = _get(weights, scope, KERNEL), _get(weights, scope, BIAS)
    name = dotted(scope)
    what = "TF1 BasicLSTMCell" if "basic" in scope.rsplit("/", 1)[-1].lower() else "TF1 LSTMCell"
    extras = [n for n in weights if n.startswith(f"{scope}/") and n not in (kernel, bias)]
    used.update((kernel, bias, *extras))
    whys = []
    if any(n.rsplit("/", 1)[-1] in ("w_f_diag", "w_i_diag", "w_o_diag") for n in extras):
        whys.append(rules.PEEPHOLES)
    projection = _get(weights, f"{scope}/projection", KERNEL)
    if projection is not None:
        whys.append(rules.PROJECTION.format(what=f"num_proj={np.shape(weights[projection])[1]}"))
    unknown = [n for n in extras if n != projection and not n.endswith("_diag")]
    if unknown:
        whys.append(f"also holds {', '.join(unknown)}, which port does not know")
    if whys:
        return Unportable(name, what, "; and ".join(whys))
    raw = {"kernel": float32(kernel, weights[kernel]), "bias": float32(bias, weights[bias])}
    try:
        keras_arrays = tf1_lstm_to_keras(raw["kernel"], raw["bias"], forget_bias)
        canonical = from_keras("lstm", "l0.forward", *keras_arrays)
    except ValueError as error:
        raise PortError(f"{path}: {what} {name!r}: {error}") from None
    hidden = keras_arrays[1].shape[0]
    notes = [f"TF1 forget_bias {forget_bias!r} folded into the forget-gate bias "
             "(--tf1-forget-bias)", *_reversed_note(scope)]
    settings = {"cell": what.split()[-1], "forget_bias": forget_bias}
    return Recurrent(name, what, "tf1", "lstm", keras_arrays[0].shape[0], hidden, 1, False,
                     canonical, True, raw, settings, notes)


def _gru(path, scope, weights, used):
    parts = {f"{sub}/{piece}": _get(weights, f"{scope}/{sub}", spellings)
             for sub in ("gates", "candidate") for piece, spellings in (("kernel", KERNEL),
                                                                        ("bias", BIAS))}
    name, what = dotted(scope), "TF1 GRUCell"
    missing = [part for part, found in parts.items() if found is None]
    if missing:
        raise PortError(f"{path}: GRUCell {name!r} lacks its {', '.join(missing)} variables")
    extras = [n for n in weights if n.startswith(f"{scope}/") and n not in parts.values()]
    used.update((*parts.values(), *extras))
    if extras:
        return Unportable(name, what, f"also holds {', '.join(extras)}, which port does not know")
    raw = {part: float32(found, weights[found]) for part, found in parts.items()}
    try:
        keras_arrays = tf1_gru_to_keras(raw["gates/kernel"], raw["gates/bias"],
                                        raw["candidate/kernel"], raw["candidate/bias"])
        canonical = from_keras("gru", "l0.forward", *keras_arrays)
    except ValueError as error:
        raise PortError(f"{path}: {what} {name!r}: {error}") from None
    settings = {"cell": "GRUCell", "reset": "every TF1 GRUCell does"}
    return Recurrent(name, what, "tf1", "gru", keras_arrays[0].shape[0], keras_arrays[1].shape[0],
                     1, False, canonical, False, raw, settings, _reversed_note(scope))
