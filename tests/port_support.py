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

from shared.app.cli import main


def run_port(capture, *args) -> tuple[int, str, str]:
    """``seq2seq-rosetta port *args`` in-process: (exit code, stdout, stderr).

    ``capture`` is pytest's capsys, or capfd to see what C++ code writes to fd 2 too.
    """
    code = main(["port", *map(str, args)])
    captured = capture.readouterr()
    return code, captured.out, captured.err


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
