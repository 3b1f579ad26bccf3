"""``seq2seq-rosetta port`` on files that are not what they claim, and the command's contract.

Every bad SRC (truncated in each format, empty, garbage, missing, a directory,
a FIFO) is one line on stderr, exit 2, nothing on stdout and nothing written.
SRC is recognised by its content, not its name.  ``--check`` exits 1 when a
layer is over tolerance, and checks against ``shared.reference`` where asked.
Importing ``shared.port``, and porting the formats that need no framework,
loads no framework.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from shared import port
from tests.port_support import run_port

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One small real file of each single-file kind, and an LSTM state_dict."""
    folder = tmp_path_factory.mktemp("files")
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, keras.layers.LSTM(2, name="lstm")(inputs))
    model.save(folder / "model.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras calls .h5 legacy; the TorchScript exporter old
        model.save(folder / "model.h5")
        module = nn.Module()
        module.rnn = nn.LSTM(3, 2, batch_first=True)
        torch.onnx.export(module.rnn, (torch.zeros(1, 4, 3),), folder / "model.onnx",
                          dynamo=False)
    torch.save(module.state_dict(), folder / "model.pt")
    from safetensors.torch import save_file

    save_file(module.state_dict(), folder / "model.safetensors")
    return folder


def truncated(files, tmp_path, name):
    data = (files / name).read_bytes()
    return written(tmp_path / name, data[: len(data) // 2])


def written(path, data: bytes):
    path.write_bytes(data)
    return path


def fifo(path):
    os.mkfifo(path)
    return path


def deep_pickle(path):
    nested: list = []
    for _ in range(100):
        nested = [nested]
    torch.save({"model": nested}, path)
    return path


def deep_h5(path):
    import h5py

    with h5py.File(path, "w") as file:
        group = file
        for depth in range(60):
            group = group.create_group(f"g{depth}")
        group.create_dataset("vars/0", data=[1.0, 2.0])
    return path


BAD = {
    "truncated .keras": (lambda f, t: truncated(f, t, "model.keras"),
                         "is a damaged or truncated zip archive"),
    "truncated .h5": (lambda f, t: truncated(f, t, "model.h5"),
                      "is a damaged or truncated HDF5 file"),
    "truncated .pt": (lambda f, t: truncated(f, t, "model.pt"),
                      "is a damaged or truncated zip archive"),
    "truncated .safetensors": (lambda f, t: truncated(f, t, "model.safetensors"),
                               "is not a readable safetensors file"),
    "truncated .onnx": (lambda f, t: truncated(f, t, "model.onnx"),
                        "is not an ONNX model"),
    "empty": (lambda f, t: written(t / "empty.pt", b""), "is empty"),
    "garbage": (lambda f, t: written(t / "g.bin", b"not a model at all"),
                "is not a model file port reads"),
    "missing": (lambda f, t: t / "missing.keras", "no such file"),
    "directory": (lambda f, t: t, "is a directory with no TF1 checkpoint in it"),
    "FIFO": (lambda f, t: fifo(t / "pipe"),
             "is a FIFO (named pipe), not a regular file"),
    "containers nested 100 deep": (lambda f, t: deep_pickle(t / "deep.pt"),
                                   "nests containers deeper than 32 levels"),
    "groups nested 60 deep": (lambda f, t: deep_h5(t / "deep.weights.h5"),
                              "its weights nest deeper than 32 groups"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_source_is_one_line_exit_2_and_nothing_written(files, tmp_path, case, capsys):
    make, expected = BAD[case]
    src = make(files, tmp_path)
    dst = tmp_path / "out.safetensors"
    code, out, err = run_port(capsys, src, "--to", "torch", "--out", dst)
    assert code == 2 and out == "", (case, out, err)
    assert len(err.splitlines()) == 1 and err.startswith("seq2seq-rosetta: error: "), err
    assert expected in err, f"{case}: {err}"
    assert not dst.exists()


def test_the_content_decides_not_the_name(files, tmp_path, capsys):
    disguised = tmp_path / "model.pt"
    disguised.write_bytes((files / "model.keras").read_bytes())
    code, report, err = run_port(capsys, disguised, "--to", "torch", "--out",
                                 tmp_path / "o.safetensors")
    assert (code, err) == (0, "") and "(Keras 3 .keras file)" in report, report + err


def test_a_bad_destination_is_refused_before_anything_is_written(files, tmp_path, capsys):
    for dst, expected in ((tmp_path / "x.h5", "--to keras writes .safetensors"),
                          (files / "model.safetensors", "is SRC itself"),
                          (tmp_path / "no" / "x.safetensors", "no such directory")):
        src = files / ("model.safetensors" if "SRC" in expected else "model.pt")
        code, out, err = run_port(capsys, src, "--to", "keras", "--out", dst)
        assert code == 2 and out == "" and expected in err, err


def test_check_exits_1_over_tolerance_and_names_the_layer(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("shared.port.checking.STATE_ATOL", 0.0)  # float32 rounding is now too much
    code, report, err = run_port(capsys, files / "model.pt", "--to", "keras", "--out",
                                 tmp_path / "o.safetensors", "--check")
    assert code == 1, report + err
    assert "FAIL" in report and "1 of 1 layers over 0: rnn" in report
    assert (tmp_path / "o.safetensors").exists()  # written: the table says where it differs


def test_check_against_the_numpy_reference(files, tmp_path):
    for src, target in (("model.pt", "keras"), ("model.onnx", "keras"), ("model.h5", "torch")):
        report = port.port(files / src, target, tmp_path / f"{src}.safetensors", check=True,
                           engine="reference")
        assert [row.source for row in report.rows] == ["reference"], report.text()
        assert report.ok, report.text()


def test_the_python_api_refuses_with_port_error(files, tmp_path):
    source = port.read(files / "model.onnx")
    assert [type(layer).__name__ for layer in source.layers] == ["Recurrent"]
    assert port.refusals(source, "torch") == []
    with pytest.raises(port.PortError, match="target must be one of torch, keras"):
        port.write(source, "jax", tmp_path / "x.safetensors")
    with pytest.raises(port.PortError, match="--linear names layers read by their structure"):
        port.read(files / "model.onnx", linear=("rnn",))


def test_shared_port_loads_no_framework_for_formats_that_need_none(files, tmp_path):
    code = f"""
    import sys
    import shared.app.cli, shared.port, shared.app.commands.port
    from shared import port
    for src, dst in (("model.keras", "a.safetensors"), ("model.safetensors", "b.safetensors")):
        port.write(port.read({str(files)!r} + "/" + src), "torch", {str(tmp_path)!r} + "/" + dst)
    print(",".join(m for m in ("torch", "tensorflow", "keras", "jax", "onnx") if m in sys.modules))
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"loaded {done.stdout.strip()}"
    assert (tmp_path / "b.safetensors").exists()
    assert port.read(tmp_path / "a.safetensors").tensors == 4  # lstm.weight_ih_l0, ...
