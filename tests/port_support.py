"""Helpers for the port tests: run the command, and build the layers its report prints.

The report prints one line per ported layer, e.g.

    encoder.rnn = nn.LSTM(4, 5, num_layers=2, batch_first=True)
    encoder_rnn_l0 = keras.layers.LSTM(5, name="encoder_rnn_l0")

and the tests build exactly those layers (parsed with ``ast``, never evaluated),
so that a wrong printed line fails a test as surely as a wrong weight.  A value
printed as a name of ours (``recurrent_activation=keras_impl.keras2_hard_sigmoid``)
is looked up in that package.
"""

from __future__ import annotations

import ast

import numpy as np

from shared.app.cli import main

LENGTHS = np.array([6, 1, 4])  # a batch of mixed lengths, with a length-1 row; S = 6


def run_port(capture, *args) -> tuple[int, str, str]:
    """``seq2seq-rosetta port *args`` in-process: (exit code, stdout, stderr).

    ``capture`` is pytest's capsys, or capfd to see what C++ code writes to fd 2 too.
    """
    code = main(["port", *map(str, args)])
    captured = capture.readouterr()
    return code, captured.out, captured.err


def ported(capture, *args, lines=()) -> str:
    """The report of ``port *args``, which must succeed (exit 0, nothing on stderr) and
    print each of ``lines``."""
    code, report, err = run_port(capture, *args)
    assert (code, err) == (0, ""), report + err
    for line in lines:
        assert line in report, f"{line!r} not in the report:\n{report}"
    return report


def refused_port(capture, *args) -> str:
    """The one line of ``port *args``, which must refuse: exit 2, nothing on stdout."""
    code, out, err = run_port(capture, *args)
    assert code == 2 and out == "" and len(err.splitlines()) == 1, (code, out, err)
    return err


def padded_ids(rng, vocabulary: int, lengths=LENGTHS) -> np.ndarray:
    """(B, S) ids 1..V-1 at each row's real steps, 0 (padding) after them."""
    batch = rng.integers(1, vocabulary, (len(lengths), max(lengths)))
    return np.where(np.arange(max(lengths)) < np.asarray(lengths)[:, None], batch, 0)


def randomised(module, seed: int):
    """A PyTorch module with every parameter random and different, in eval mode."""
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.uniform_(-0.5, 0.5)
    return module.eval()


def printed_layers(report: str, framework: str) -> list[tuple[str, ast.Call]]:
    """(name, call) for each "name = nn.X(...)" / "name = keras.layers.X(...)" line."""
    marker = " = nn." if framework == "torch" else " = keras.layers."
    found = []
    for line in report.splitlines():
        if marker in line and not line.strip().startswith("note:"):
            statement = ast.parse(line.strip()).body[0]
            found.append((ast.unparse(statement.targets[0]), statement.value))
    return found


def _value(node: ast.expr):
    """A printed argument: a literal, or ``keras_impl.X`` / ``torch_impl.X``."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
            and node.value.id in ("keras_impl", "torch_impl"):
        import importlib

        return getattr(importlib.import_module(node.value.id), node.attr)
    return ast.literal_eval(node)


def _arguments(call: ast.Call) -> tuple[list, dict]:
    return ([_value(a) for a in call.args], {k.arg: _value(k.value) for k in call.keywords})


def torch_tree(report: str):
    """An nn.Module whose nested attributes are the printed modules (``a.b = nn.X(...)``)."""
    from torch import nn

    root = nn.Module()
    for name, call in printed_layers(report, "torch"):
        args, kwargs = _arguments(call)
        parent = root
        *path, last = name.split(".")
        for part in path:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        parent.add_module(last, getattr(nn, call.func.attr)(*args, **kwargs))
    return root


def keras_layers(report: str, **recurrent) -> dict:
    """{name: Keras layer} as printed; ``recurrent`` adds options to each LSTM/GRU
    (return_sequences=True, ...), which change what a layer returns, not its weights."""
    import keras

    def build(call: ast.Call):
        kind = call.func.attr
        if kind == "Bidirectional":
            keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            return keras.layers.Bidirectional(build(call.args[0]), **keywords)
        args, kwargs = _arguments(call)
        if kind in ("LSTM", "GRU"):
            kwargs.update(recurrent)
        return getattr(keras.layers, kind)(*args, **kwargs)

    return {name: build(call) for name, call in printed_layers(report, "keras")}
