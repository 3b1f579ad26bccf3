"""What a .tflite file holds, read from its flatbuffer, and the checks a program must pass.

``operators(blob)`` counts the operators of every subgraph (a ``WHILE`` loop's body
is a subgraph of its own; the interpreter's ``_get_ops_details`` shows subgraph 0
only), by their builtin names, read with the schema ``ai_edge_litert`` ships (no
TensorFlow).  ``check_program`` holds one program to what our exporter writes:

    operators    builtins among ``OPERATORS`` only: no Flex (select TensorFlow) op,
                 which a bare interpreter cannot run, no custom op (code the runtime
                 would have to bring), no resource-variable op (a conversion that left
                 the weights as variables reads them uninitialised: an error, or NaN)
    signature    exactly one, ``encode`` or ``decode``, with the contract's input and
                 output names, shapes and dtypes (``shared.ondevice.contract``)

Shapes: B_f fixed batch, S_f fixed source length.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from shared.core.config import Seq2SeqConfig
from shared.ondevice.contract import ENTRY, inputs, outputs
from shared.ondevice.folder import OnDeviceModelError

# The only operators our exporter writes (Keras 3 on TensorFlow's converter, every cell,
# attention and direction; tests/test_on_device.py lists a whole export grid's and holds
# them to this set).  LESS, ADD and SELECT before a GATHER are Keras's embedding wrapping
# negative ids; SELECT_V2 keeps the state at PAD steps.
OPERATORS = frozenset({
    "ADD", "BATCH_MATMUL", "CONCATENATION", "FULLY_CONNECTED", "GATHER", "LESS",
    "LOGICAL_AND", "LOGICAL_NOT", "LOGISTIC", "MUL", "NOT_EQUAL", "PACK", "REDUCE_ANY",
    "RESHAPE", "REVERSE_V2", "SELECT", "SELECT_V2", "SLICE", "SOFTMAX", "SPLIT",
    "STRIDED_SLICE", "SUB", "SUM", "TANH", "TRANSPOSE", "UNPACK", "WHILE",
})
_BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items()
                  if not name.startswith("_")}
_DTYPES = {"int32": np.int32, "float32": np.float32, "bool": np.bool_}


def operators(blob: bytes) -> dict[str, int]:
    """{operator name: count} over every subgraph of a .tflite flatbuffer, sorted by name.

    A custom operator is named by its custom code ("Flex..." for a select TensorFlow op).
    """
    try:
        model = schema.Model.GetRootAs(blob, 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            custom = code.CustomCode()
            # Codes past 127 live in BuiltinCode; DeprecatedBuiltinCode holds the old ones.
            number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            codes.append(custom.decode("utf-8", "replace") if custom
                         else _BUILTIN_NAMES.get(number, f"builtin {number}"))
        counts: Counter[str] = Counter()
        for g in range(model.SubgraphsLength()):
            subgraph = model.Subgraphs(g)
            for o in range(subgraph.OperatorsLength()):
                counts[codes[subgraph.Operators(o).OpcodeIndex()]] += 1
    except Exception as error:  # whatever a malformed flatbuffer makes the reader raise
        raise OnDeviceModelError(f"is not a LiteRT flatbuffer ({type(error).__name__}: "
                                 f"{error})") from None
    return dict(sorted(counts.items()))


def check_program(blob: bytes, config: Seq2SeqConfig, part: str, batch_size: int,
                  max_source_length: int, num_threads: int | None = None
                  ) -> tuple[Interpreter, dict[str, int]]:
    """(The interpreter, its operators) of one checked program (see the module docstring).

    ``num_threads``: the interpreter's threads (None: LiteRT's default).

    Raises:
        OnDeviceModelError: a check failed; the message (without the file's name) says which.
    """
    if blob[4:8] != b"TFL3":
        raise OnDeviceModelError("is not a LiteRT flatbuffer (no TFL3 identifier)")
    found = operators(blob)
    foreign = sorted(set(found) - OPERATORS)
    if foreign:
        raise OnDeviceModelError(
            f"calls {', '.join(foreign)}, operators seq2seq-rosetta's exporter never writes "
            "(builtins only: a Flex or custom op needs code a bare LiteRT interpreter lacks, "
            "a variable op reads weights that were never frozen)")
    interpreter = Interpreter(model_content=blob, num_threads=num_threads)
    signatures = interpreter.get_signature_list()
    if list(signatures) != [ENTRY[part]]:
        raise OnDeviceModelError(f"has signatures {sorted(signatures)}; the {config.cell} "
                                 f"{part} has one, {ENTRY[part]!r}")
    runner = interpreter.get_signature_runner(ENTRY[part])
    for kind, details, expected in (
        ("inputs", runner.get_input_details(), inputs(config, part, batch_size,
                                                      max_source_length)),
        ("outputs", runner.get_output_details(), outputs(config, part, batch_size,
                                                         max_source_length)),
    ):
        got = {name: (tuple(int(n) for n in d["shape"]), np.dtype(d["dtype"]).name)
               for name, d in details.items()}
        want = {t.name: (t.shape, np.dtype(_DTYPES[t.dtype]).name) for t in expected}
        if got != want:
            raise OnDeviceModelError(
                f"has {kind} {_shown(got)}; the {config.cell} {part} exported with batch_size "
                f"{batch_size} and max_source_length {max_source_length} has {_shown(want)}")
    return interpreter, found


def _shown(tensors: dict) -> str:
    return ", ".join(f"{name} {dtype}{list(shape)}" for name, (shape, dtype) in
                     sorted(tensors.items()))
