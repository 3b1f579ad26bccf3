"""Loading an ExecuTorch program on the runtime alone, and the checks it must pass.

The runtime is ExecuTorch's compiled extension, ``executorch.extension.pybindings._C``.
``executorch.runtime`` and ``executorch.extension.pybindings.portable_lib`` wrap the
same extension but import ``executorch.exir`` (the exporter: 160 modules, torchao and
sympy) for a warning class; the extension itself needs only ``torch``, whose tensors
it takes and gives.  Its functions are the ones ``portable_lib`` re-exports under
the same names; tests/test_on_device.py checks what each import loads.

``load_program`` verifies the program as it loads (``Verification.InternalConsistency``:
the flatbuffer's offsets and sizes) and checks ``forward``'s metadata against the
contract (``shared.ondevice.contract``): one method, ``forward``, whose inputs and
outputs have the contract's count, shapes and dtypes, in order.  A .pte keeps no
names: the order is the contract.  A kernel the runtime lacks fails the load.

Shapes: B_f fixed batch, S_f fixed source length.
"""

from __future__ import annotations

import torch
from executorch.extension.pybindings import _C

from shared.core.config import Seq2SeqConfig
from shared.ondevice.contract import Tensor, inputs, outputs
from shared.ondevice.folder import OnDeviceModelError

# ExecuTorch's ScalarType codes (runtime/core/portable_type/scalar_type.h) of our dtypes.
SCALAR_TYPES = {"int32": 3, "float32": 6, "bool": 11}
TORCH_DTYPES = {"int32": torch.int32, "float32": torch.float32, "bool": torch.bool}
_NAMES = {code: name for name, code in SCALAR_TYPES.items()}
# Whether a program has loaded in this process (and may hold XNNPACK's pool).
_LOADED = {"any": False}


def size_thread_pool(threads: int | None) -> int:
    """XNNPACK's pool resized to ``threads`` if no program has loaded yet; its size after.

    ``threads``: None keeps the pool as it is (the runtime's default, one thread per core).
    """
    if threads is not None and not _LOADED["any"] and \
            threads != _C._threadpool_get_thread_count():
        _C._unsafe_reset_threadpool(threads)  # safe here: no program holds the pool yet
    return _C._threadpool_get_thread_count()


def load_program(buffer: bytes, config: Seq2SeqConfig, part: str, batch_size: int,
                 max_source_length: int):
    """The runtime's module of one checked program (see the module docstring).

    Raises:
        OnDeviceModelError: a check failed; the message (without the file's name) says which.
    """
    _LOADED["any"] = True  # before the call: a load that fails may have taken the pool
    try:
        module = _C._load_for_executorch_from_buffer(
            buffer, program_verification=_C.Verification.InternalConsistency)
        names = list(module.method_names())
    except RuntimeError as error:
        raise OnDeviceModelError(f"does not load as an ExecuTorch program ({error})") from None
    if names != ["forward"]:
        raise OnDeviceModelError(f"has methods {sorted(names)}; the {config.cell} {part} has "
                                 "one, 'forward'")
    meta = module.method_meta("forward")
    for kind, count, info, expected in (
        ("inputs", meta.num_inputs(), meta.input_tensor_meta,
         inputs(config, part, batch_size, max_source_length)),
        ("outputs", meta.num_outputs(), meta.output_tensor_meta,
         outputs(config, part, batch_size, max_source_length)),
    ):
        got = [(tuple(info(i).sizes()), _NAMES.get(info(i).dtype(), f"type {info(i).dtype()}"))
               for i in range(count)]
        want = [(tensor.shape, tensor.dtype) for tensor in expected]
        if got != want:
            raise OnDeviceModelError(
                f"has {kind} {_shown(got)}; the {config.cell} {part} exported with batch_size "
                f"{batch_size} and max_source_length {max_source_length} has "
                f"{_shown(want)} ({', '.join(tensor.name for tensor in expected)})")
    return module


def as_tensors(arrays, expected: list[Tensor]) -> list[torch.Tensor]:
    """NumPy arrays as the runtime's torch tensors, in the contract's order and dtypes."""
    return [torch.from_numpy(array).to(TORCH_DTYPES[tensor.dtype])
            for array, tensor in zip(arrays, expected, strict=True)]


def _shown(tensors) -> str:
    return "[" + ", ".join(f"{dtype}{list(shape)}" for shape, dtype in tensors) + "]"
