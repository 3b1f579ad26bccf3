"""The on-device engines beyond the ladder: the fixed shape, the traps, the files, the runtimes.

litert_impl and executorch_impl climb the parity ladder beside the other engines
(test_ladder_3_model.py, test_ladder_4_crossing.py, on ``support.ON_DEVICE_GRID``),
refuse bad input in the same words (test_bad_inputs.py) and stream (test_streaming.py).
Here, what is theirs alone:

- the fixed shape: a source longer than the programs' (a bidirectional encoder), or a
  memory longer than the decoder attends over, refused naming ``max_source_length``;
- the traps, as mutations the ladder must catch: the masking dropped (an LSTM run over
  the padding, as an unpacked ``nn.LSTM`` would), h and c swapped (same shape, same dtype:
  silent), LiteRT's inputs fed in the order its signature lists them (loud);
- the files: ``load_model`` refuses a folder that is not ours, or changed; LiteRT files
  hold builtin operators only (listed from every subgraph), and a conversion that
  would need a Flex op fails loudly;
- what each runtime imports: LiteRT no TensorFlow or Keras, ExecuTorch no exporter;
- the whole grid, exported and climbed, when asked:
  ``pytest -m on_device_grid tests/test_on_device.py``.

Shapes: B batch, S source length, L layers, H_dec decoder hidden.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from shared import Seq2SeqConfig, reference
from shared.app.backends import load_exported
from shared.ladder import climb
from shared.layout import random_weights
from shared.ondevice.contract import input_names, output_names
from shared.ondevice.fixed import FixedShapeModel
from tests import on_device
from tests.refusal import refusal, same_refusal
from tests.support import (
    GRID,
    ON_DEVICE,
    ON_DEVICE_GRID,
    V_SRC,
    V_TGT,
    assert_rungs,
    grid_case,
    grid_model,
    installed,
)

LSTM, GRU_BI = list(ON_DEVICE_GRID)  # an LSTM whose encoder streams; a bidirectional GRU
SMALL = Seq2SeqConfig(V_SRC, V_TGT, 4, 3, num_layers=2, bidirectional=True)  # test_bad_inputs'


@pytest.mark.parametrize("engine", list(on_device.RUNTIMES))
def test_an_on_device_engine_is_a_row_of_the_engine_grid_where_installed(engine):
    if not installed(engine):
        missing = [name for name in on_device.NEEDS[engine] if not installed_module(name)]
        pytest.skip(f"{engine} is not a row of the engine grid here: {', '.join(missing)} "
                    "not installed (pip install 'seq2seq-rosetta[all]')")
    assert engine in ON_DEVICE


def installed_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def on_device_model(engine: str, params: tuple):
    """(module, model) of an on-device engine on a grid model, or a skip naming what is missing."""
    on_device.importorskip(engine)
    return grid_model(engine, params)


def models_of(params: tuple) -> dict:
    return {name: grid_model(name, params) for name in ON_DEVICE}


# ---- the fixed shape ----

def test_a_longer_source_than_a_bidirectional_program_reads_is_refused_alike():
    src = np.full((2, 9), 5)
    message = same_refusal(models_of(GRU_BI), lambda module, model: module.encode(model, src),
                           holds="max_source_length=7")
    assert message.startswith("src has 9 positions") and "--max-source-length 9" in message


def test_a_longer_memory_than_the_decoder_attends_over_is_refused_alike():
    """The encoder streams a long source; the decoder's attention has S_f positions."""
    src = np.full((2, 9), 5)

    def decode(module, model):
        state, memory = module.encode(model, src, return_memory=True)
        assert memory.outputs.shape[1] == 9, "the encoder read the whole source in pieces"
        return module.decode(model, np.array([[1], [1]]), state, memory)

    message = same_refusal(models_of(LSTM), decode, holds="max_source_length=7")
    assert message.startswith("memory has 9 source positions"), message


# ---- the traps, as mutations the ladder catches ----

class EagerPrograms(FixedShapeModel):
    """torch_impl's program modules, run eagerly behind the engines' padding and stepping:
    what executorch_impl runs, before it is lowered."""

    def __init__(self, model, batch_size: int, max_source_length: int):
        super().__init__(model.config, batch_size, max_source_length)
        from torch_impl.programs import PROGRAMS

        self.modules = {part: PROGRAMS[part](model).eval() for part in PROGRAMS}

    def _run(self, part, feeds):
        import torch

        with torch.no_grad():
            results = self.modules[part](*(torch.from_numpy(feeds[name])
                                           for name in input_names(self.config, part)))
        return {name: value.numpy() for name, value in
                zip(output_names(self.config, part), results, strict=True)}


def test_the_masking_dropped_is_caught_by_the_hand_off_rung(monkeypatch):
    """Run over the padding as an unpacked nn.LSTM would (every step kept): rows shorter
    than the batch hand off the state after their PAD steps."""
    executorch_impl = on_device.importorskip("executorch_impl")
    from torch_impl import programs

    case = grid_case(LSTM)
    _, torch_model = grid_model("torch_impl", case.params)
    eager = EagerPrograms(torch_model, 4, case.src.shape[1])
    assert_rungs(climb(executorch_impl, eager, case.reference, ["hand-off", "logits"]), case.id)
    step = programs._step
    monkeypatch.setattr(programs, "_step", lambda cell, x, state, W, b, keep:
                        step(cell, x, state, W, b, keep | True))
    rows = climb(executorch_impl, EagerPrograms(torch_model, 4, case.src.shape[1]),
                 case.reference, ["hand-off"])
    assert rows and not all(row.ok for row in rows), f"the unmasked run went unnoticed: {rows}"


@pytest.mark.parametrize("engine", ON_DEVICE)
def test_h_and_c_swapped_run_silently_and_the_logits_rung_catches_it(engine, monkeypatch):
    case = grid_case(LSTM)
    module, model = grid_model(engine, LSTM)
    run = model._run

    def swapped(part, feeds):
        return run(part, {**feeds, "h": feeds["c"], "c": feeds["h"]} if part == "decoder"
                   else feeds)

    monkeypatch.setattr(model, "_run", swapped)
    rows = climb(module, model, case.reference, ["logits"])
    assert rows and not all(row.ok for row in rows), f"{engine}: h/c swapped went unnoticed"


def test_litert_inputs_fed_in_the_order_the_signature_lists_them_fail_loudly():
    """The runner lists inputs alphabetically (c, h, src); fed by position in the contract's
    order (src, h, c), the ids reach c: LiteRT refuses the shape, or the dtype, aloud (and
    its runner stays broken: a model of its own here).  By name, as litert_impl feeds
    them, they arrive where they belong."""
    litert_impl = on_device.importorskip("litert_impl")
    case = grid_case(LSTM)
    model = litert_impl.load_model(on_device.export_folder(
        "litert_impl", case.config, case.weights, 4, case.src.shape[1], ON_DEVICE_GRID[LSTM]))
    runners = model._runners

    def by_position(part, feeds):
        listed = model.interpreters[part].get_signature_list()[model_entry(part)]["inputs"]
        assert listed == sorted(listed) != input_names(model.config, part)
        ordered = [feeds[name] for name in input_names(model.config, part)]
        return runners[part](**dict(zip(listed, ordered, strict=True)))

    model._run = by_position
    with pytest.raises((ValueError, RuntimeError), match=r"RESHAPE|Cannot set tensor"):
        litert_impl.encode(model, case.src)


def model_entry(part: str) -> str:
    from shared.ondevice.contract import ENTRY

    return ENTRY[part]


# ---- the files ----

@pytest.fixture(params=ON_DEVICE)
def folder(request, tmp_path):
    """A copy of an exported folder (test_bad_inputs' LSTM), to be edited: (engine, path)."""
    source = on_device.export_folder(request.param, SMALL, random_weights(SMALL, seed=2),
                                     batch_size=4, max_source_length=4, delegate="portable")
    copy = tmp_path / "export"
    shutil.copytree(source, copy)
    return request.param, copy


def forge(path, part: str, data: bytes) -> None:
    """Write ``data`` as ``part``'s program and its checksum into metadata.json: a forger."""
    metadata = json.loads((path / "metadata.json").read_text())
    name = metadata["files"][part]["name"]
    (path / name).write_bytes(data)
    metadata["files"][part]["sha256"] = hashlib.sha256(data).hexdigest()
    (path / "metadata.json").write_text(json.dumps(metadata))


def edit_metadata(path, **changes) -> None:
    metadata = json.loads((path / "metadata.json").read_text())
    (path / "metadata.json").write_text(json.dumps({**metadata, **changes}))


def program(path, part: str) -> bytes:
    return next(path.glob(f"{part}.*")).read_bytes()


EDITS = {  # what is done to the folder, and words the refusal must hold
    "no-metadata": (lambda p: (p / "metadata.json").unlink(), "no such file"),
    "not-ours": (lambda p: edit_metadata(p, format="seq2seq-rosetta/onnx"), "is not a seq2seq"),
    "newer": (lambda p: edit_metadata(p, format_version=2), "newer than this seq2seq-rosetta"),
    "bad-config": (lambda p: edit_metadata(p, config={"cell": "lstm"}), "does not describe"),
    "huge-batch": (lambda p: edit_metadata(p, batch_size=10**9), "batch_size must be"),
    "a-byte-flipped": (lambda p: flip(next(p.glob("decoder.*"))), "checksum mismatch"),
    "parts-swapped": (lambda p: forge(p, "encoder", program(p, "decoder")), "the lstm encoder "),
    "truncated": (lambda p: forge(p, "decoder", program(p, "decoder")[:200]), "decoder"),
}


def flip(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("edit", list(EDITS))
def test_load_model_refuses_a_folder_that_is_not_ours_or_was_changed(folder, edit):
    engine, path = folder
    module = on_device.importorskip(engine)
    change, words = EDITS[edit]
    runtime = on_device.RUNTIMES[engine]
    load_exported(runtime, path)  # as exported: loads (the engine's own load_model)
    change(path)
    message = refusal(lambda: load_exported(runtime, path), module.OnDeviceModelError,
                      holds=words)
    assert str(path) in message, f"the refusal names no file: {message}"


def test_a_litert_file_with_a_flex_op_is_refused_even_with_its_checksum(tmp_path):
    """A forger's decoder.tflite whose first operator became FlexTensorListReserve."""
    pytest.importorskip("ai_edge_litert")
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    import litert_impl

    source = on_device.export_folder("litert_impl", SMALL, random_weights(SMALL, seed=2), 4, 4)
    shutil.copytree(source, tmp_path / "export")
    path = tmp_path / "export"
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(program(path, "decoder"), 0))
    model.operatorCodes[0].builtinCode = schema.BuiltinOperator.CUSTOM
    model.operatorCodes[0].deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    model.operatorCodes[0].customCode = "FlexTensorListReserve"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    forge(path, "decoder", bytes(builder.Output()))
    message = refusal(lambda: litert_impl.load_model(path), litert_impl.OnDeviceModelError,
                      holds="calls FlexTensorListReserve")
    assert "decoder.tflite" in message and "builtins only" in message


def test_a_conversion_that_needs_a_flex_op_fails_loudly(monkeypatch, tmp_path):
    """A free batch size makes Keras's loop a TensorList, which LiteRT has no builtin for:
    the converter, held to builtins, refuses, and export says why."""
    pytest.importorskip("tensorflow")
    import keras_impl
    from keras_impl import on_device as exporter

    free = exporter.inputs
    monkeypatch.setattr(exporter, "inputs", lambda *args: [
        tensor._replace(shape=(None, *tensor.shape[1:])) for tensor in free(*args)])
    model = keras_impl.build_model(SMALL)
    message = refusal(lambda: exporter.export_litert(model, tmp_path, batch_size=2,
                                                     max_source_length=3),
                      exporter.LiteRTExportError, holds="does not convert to LiteRT builtin")
    assert "TensorList" in message, message
    assert not (tmp_path / "encoder.tflite").exists(), "nothing is written"


def test_litert_operators_are_read_from_every_subgraph():
    """The encoder's recurrence is a WHILE loop whose body is a subgraph of its own: the
    interpreter's own listing (subgraph 0) misses the body's FULLY_CONNECTED."""
    _, model = on_device_model("litert_impl", LSTM)
    encoder = model.operators["encoder"]
    assert encoder["WHILE"] == 1 and encoder["FULLY_CONNECTED"] >= 1, encoder
    first = {op["op_name"] for op in model.interpreters["encoder"]._get_ops_details()}
    assert "WHILE" in first and "LOGISTIC" not in first, first
    assert "WHILE" not in model.operators["decoder"], "the decoder's one step is unrolled"


def test_executorch_metadata_lists_the_kernels_and_the_delegate():
    _, model = on_device_model("executorch_impl", LSTM)
    assert model.delegate == "xnnpack"
    for part, calls in model.operators.items():
        assert calls.get("delegate XnnpackBackend", 0) >= 1, (part, calls)
        assert any(name.startswith("XnnpackBackend: aten.linear") for name in calls), calls
        assert "aten::where.self_out" in calls, f"{part}: the PAD rule runs outside XNNPACK"


# ---- the bare runtimes, as docs/on-device.md runs them ----

BARE = {"litert_impl": "# LiteRT, bare", "executorch_impl": "# ExecuTorch, bare"}


@pytest.mark.parametrize("engine", ON_DEVICE)
def test_the_bare_runtime_loop_of_the_docs_answers_as_the_reference(engine):
    """docs/on-device.md's greedy loop, run as printed on an exported folder: nothing of
    ours at run time, the reference's tokens."""
    page = (on_device.ROOT / "docs" / "on-device.md").read_text(encoding="utf-8")
    blocks = [block for block in re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)
              if block.startswith(BARE[engine])]
    assert len(blocks) == 1, f"docs/on-device.md shows no {BARE[engine]!r} loop"
    namespace: dict = {}
    exec(compile(blocks[0], "docs/on-device.md", "exec"), namespace)
    case = grid_case(LSTM)
    folder = on_device.export_folder(engine, case.config, case.weights, 4, case.src.shape[1],
                                     ON_DEVICE_GRID[LSTM])
    src = case.src[:4]                                                      # (B_f, S_f)
    tokens = namespace["greedy"](str(folder), src.astype(np.int32), 9)
    np.testing.assert_array_equal(tokens, reference.greedy_decode(case.weights, case.config,
                                                                  src, 9))


# ---- what each runtime imports ----

IMPORTS = """
import sys
import numpy as np
import {engine} as engine
model = engine.load_model({folder!r})
engine.greedy_decode(model, np.array([[5, 6, 7]]), 3)
print(" ".join(sorted(name for name in {watched!r} if name in sys.modules)))
"""
WATCHED = ["tensorflow", "keras", "torch", "jax", "executorch.exir", "torchao", "sympy",
           "torch_impl", "keras_impl"]


@pytest.mark.parametrize(("engine", "expected"),
                         [("litert_impl", ""), ("executorch_impl", "torch")])
def test_a_runtime_imports_neither_the_exporter_nor_another_framework(engine, expected):
    """LiteRT's interpreter needs no TensorFlow; ExecuTorch's binding takes torch tensors,
    but its compiled runtime alone, not ``executorch.runtime``, which imports the exporter
    (exir, torchao, sympy)."""
    on_device.importorskip(engine)
    case = grid_case(LSTM)  # ExecuTorch's for XNNPACK, as it ships
    folder = on_device.export_folder(engine, case.config, case.weights, 4, case.src.shape[1],
                                     ON_DEVICE_GRID[LSTM])
    code = IMPORTS.format(engine=engine, folder=str(folder), watched=WATCHED)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, cwd=on_device.ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines and lines[-1] == expected, f"{engine} imported {lines[-1:]}"


POOL = """
import numpy as np
import shared
import executorch_impl
shared.configure_threads(1)
first = executorch_impl.load_model({folder!r})
src = np.array([[5, 6, 7, 8], [4, 0, 0, 0], [9, 3, 0, 0]])
before = executorch_impl.greedy_decode(first, src, 6)
shared.configure_threads(2)
second = executorch_impl.load_model({folder!r})
same = all((executorch_impl.greedy_decode(first, src, 6) == before).all() for _ in range(20))
print(first.thread_pool_size, second.thread_pool_size, same)
"""


def test_a_later_executorch_model_leaves_the_thread_pool_the_first_ones_hold():
    """XNNPACK's pool is one per process and an XNNPACK program keeps a pointer to it
    from its load on: a second model asking for another size must not free the pool
    under the first (resizing it did: the first model's next call crashed, or hung).
    In a process of its own, so that a crash fails this test, not the session."""
    on_device.importorskip("executorch_impl")
    case = grid_case(LSTM)
    assert ON_DEVICE_GRID[LSTM] == "xnnpack", "the trap needs an XNNPACK program"
    folder = on_device.export_folder("executorch_impl", case.config, case.weights, 4,
                                     case.src.shape[1], ON_DEVICE_GRID[LSTM])
    done = subprocess.run([sys.executable, "-c", POOL.format(folder=str(folder))],
                          capture_output=True, text=True, timeout=120, cwd=on_device.ROOT)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split() == ["1", "1", "True"], done.stdout


# ---- the whole grid, when asked ----

@pytest.mark.on_device_grid
@pytest.mark.parametrize("engine", ON_DEVICE)
def test_every_grid_model_exports_and_climbs_every_rung(request, engine):
    """Minutes: every grid model exported (ExecuTorch for XNNPACK) and climbed."""
    if "on_device_grid" not in (request.config.option.markexpr or ""):
        pytest.skip("exports the whole grid (minutes): "
                    "pytest -m on_device_grid tests/test_on_device.py")
    for params in GRID:
        case = grid_case(params)
        module, model = on_device.exported_model(engine, case.config, case.weights,
                                                 max_source_length=case.src.shape[1],
                                                 delegate="xnnpack")
        assert_rungs(climb(module, model, case.reference), f"{engine} {case.id}")
