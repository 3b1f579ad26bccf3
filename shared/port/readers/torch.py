"""PyTorch ``state_dict`` files, ``torch.save`` (.pt/.pth/.bin) or ``.safetensors``, read as layers.

A ``.pt`` is a pickle, and a pickle can call any function while it loads: it is
read only with ``torch.load(path, weights_only=True)``, which builds tensors and
plain containers and refuses anything else.  A whole pickled model
(``torch.save(model)``) is refused with what to save instead; its class is named
from the pickle's opcodes, read with ``pickletools`` and never run.  A
``.safetensors`` file holds nothing that runs and needs no PyTorch
(``safetensors.numpy``).

Before ``torch.load`` sees a file, ``load_torch_file`` checks it: a regular
file of at most ``MAX_FILE_BYTES``; a zip (``torch.save``'s format) whose
members are all stored, uncompressed, as PyTorch writes them, and within the
file (``shared.files.archive``); and the load runs under a memory limit
(``shared.files.confined.memory_limited``).  After it, every tensor is checked
before anything converts it: dense (no sparse, CSR or quantized tensor), on
the CPU with data (no ``meta`` tensor), of a type of plain numbers, and no
larger than the storage behind it (a 30000 x 30000 view of one number, stride
0, would become 3.6 GB in a conversion).

A ``.pt`` may hold more than one state_dict: a training checkpoint
(``{"epoch", "model_state_dict", "optimizer_state_dict", ...}``) or a dict of
state_dicts (``{"encoder": ..., "decoder": ...}``); ``readers.torch_checkpoints``
finds the models in it and sets the rest aside, and drops DDP's ``module.``.

A state_dict says nothing about its modules' types: each is told from its
parameters, grouped by module path (the key up to the parameter's name):

    parameters                                        what it is
    weight_ih_l{k}, weight_hh_l{k} (G*H, H),          nn.LSTM (G = 4) or nn.GRU (G = 3);
      bias_ih_l{k}, bias_hh_l{k}; _reverse             bidirectional; weight_hr_l{k}: proj_size
    weight (V, E) alone                               nn.Embedding, unless --linear names it:
                                                      then a bias-free nn.Linear
    weight (out, in), bias (out,)                     nn.Linear
    anything else                                     refused: a layer type port does not know

Shape legend: E embedding, G gates, H hidden, V vocabulary.
"""

from __future__ import annotations

import re
import zipfile

import numpy as np

from shared.files.archive import STORED, check_members
from shared.files.confined import memory_limited
from shared.files.limits import MAX_FILE_BYTES, MAX_PARTS, declared_bytes
from shared.files.safe import FileRefusedError, brief, open_regular, read_exactly, shown
from shared.port import rules
from shared.port.canonical import from_torch
from shared.port.layers import (
    DIRECTIONS,
    Dense,
    Embedding,
    PortError,
    Recurrent,
    Source,
    Unportable,
    float32,
)
from shared.port.readers.torch_checkpoints import models

RNN_PARAMETER = re.compile(r"^(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")
CELLS = {4: ("lstm", "nn.LSTM"), 3: ("gru", "nn.GRU")}
CHECKPOINT_FORMAT = "seq2seq-rosetta/checkpoint"
MAX_DEPTH = 32  # a training checkpoint nests 4 levels (optimizer state: state -> id -> slot)
NUMBER_TYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64",
                "uint8", "bool")


def read_torch(path: str, linear: tuple[str, ...] = ()) -> Source:
    """A ``torch.save`` file's layers (a state_dict, a training checkpoint or a dict of
    state_dicts); ``linear`` names bias-free nn.Linear modules."""
    found = models(path, _torch_load(path))
    source = _source(path, "torch", found.tensors, linear)
    source.about, source.submodels, source.ignored = found.about, found.submodels, found.ignored
    if found.kind:
        source.description = f"PyTorch {found.kind} (torch.save)"
    return source


def load_state_dict(path: str) -> dict[str, np.ndarray]:
    """A ``torch.save`` file's flat dict of tensors, read with ``weights_only=True``, as arrays.

    Floating tensors come back as float32; nothing in the file is ever run.

    Raises:
        PortError: PyTorch missing, a file ``torch.load`` refuses, or not a dict of tensors.
    """
    state = _torch_load(path)
    if not isinstance(state, dict) or not state:
        raise PortError(f"{path} holds a {type(state).__name__}, not a state_dict (a dict of "
                        "tensors); save model.state_dict()")
    for key, value in state.items():
        if not isinstance(value, np.ndarray):
            raise PortError(f"{path} is not a state_dict: entry {key!r} holds a "
                            f"{type(value).__name__}, not a tensor")
    return {str(key): value for key, value in state.items()}


def _torch_load(path: str):
    """What ``load_torch_file`` builds, every tensor made a NumPy array (floating ones
    float32), containers kept; nothing in the file is ever run."""
    import torch

    state = load_torch_file(path)

    def arrays(value):
        if isinstance(value, torch.Tensor):
            value = value.detach()
            return (value.float() if value.is_floating_point() else value).numpy()
        if isinstance(value, dict):
            return {key: arrays(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [arrays(item) for item in value]
        return value

    return arrays(state)  # load_torch_file bounded the depth: no RecursionError here


def load_torch_file(path: str):
    """What ``torch.save`` wrote to ``path``, loaded safely; every tensor in it checked.

    The checks of the module docstring: the file before ``torch.load`` sees it, the
    load under a memory limit, then every tensor, in containers nested at most
    ``MAX_DEPTH`` deep, before anything converts one.  A reader of another layout
    of ``torch.save`` files calls this instead of ``torch.load``.

    Returns:
        The loaded object (a dict, a list, a tensor, ...), its tensors on the CPU.

    Raises:
        PortError: PyTorch missing, a file refused, or a tensor that breaks a rule.
    """
    try:
        import torch
    except ImportError:
        raise PortError(
            f"{path} is a torch.save file; reading it needs PyTorch (pip install torch), or "
            "re-save the state_dict as .safetensors"
        ) from None
    where = shown(path)
    try:
        with open_regular(path, "torch.save file") as (file, size):
            if size > MAX_FILE_BYTES:
                raise FileRefusedError(where, f"is {size} bytes; a file of more than "
                                              f"{MAX_FILE_BYTES} bytes is not read")
            if read_exactly(file, min(size, 4), where) == b"PK\x03\x04":
                file.seek(0)
                try:
                    infos = zipfile.ZipFile(file).infolist()
                except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
                    raise FileRefusedError(where, f"is a damaged or truncated zip archive "
                                                  f"({error})") from None
                check_members(where, infos, size, methods=(STORED,))
            file.seek(0)
            with memory_limited(where, "torch.load"):
                try:
                    state = torch.load(file, map_location="cpu", weights_only=True)
                except Exception as error:  # whatever torch says (a payload, truncation)
                    if isinstance(error, RuntimeError) and "allocate" in str(error):
                        raise
                    _refuse(path, error, file)
    except FileRefusedError as refused:
        raise PortError(str(refused)) from None
    _check_tensors(where, state, torch)
    return state


def _refuse(path: str, error: Exception, file):
    """torch.load's refusal, as a PortError: a whole pickled model said so, by its class
    (read from ``file``, the file already checked, not from ``path`` opened again)."""
    cls = _pickled_module(file)
    if cls is not None:
        raise PortError(
            f"{path} holds a whole pickled model (torch.save(model), class {cls}), not a "
            "state_dict: loading it would run that class's code, which port never does; "
            "where the class is defined, save its weights with "
            "torch.save(model.state_dict(), 'model.pt') and port that file"
        ) from None
    raise PortError(f"{path}: torch.load(weights_only=True) refused it: {_why(error)}"
                    ) from None


def _check_tensors(where: str, state, torch) -> None:
    """Every tensor in ``state`` dense, with data, of plain numbers, within its storage."""
    stack, count, storages = [(state, "", 0)], 0, {}
    while stack:
        value, key, depth = stack.pop()
        count += 1
        if count > MAX_PARTS:
            raise PortError(f"{where} holds more than {MAX_PARTS} objects")
        if depth > MAX_DEPTH:
            raise PortError(f"{where} nests containers deeper than {MAX_DEPTH} levels; a "
                            "state_dict or a training checkpoint does not")
        if isinstance(value, dict):
            stack.extend((v, f"{key}.{k}" if key else str(k), depth + 1) for k, v in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((v, f"{key}[{i}]", depth + 1) for i, v in enumerate(value))
        elif isinstance(value, torch.Tensor):
            storage = _check_tensor(where, brief(key), value, torch)
            storages[storage.data_ptr()] = storage.nbytes()
    if sum(storages.values()) > MAX_FILE_BYTES:
        raise PortError(f"{where}: its tensors hold more than {MAX_FILE_BYTES} bytes; at most "
                        "that many are read")


def _check_tensor(where: str, key: str, tensor, torch):
    if tensor.layout != torch.strided or tensor.is_sparse:
        raise PortError(f"{where}: tensor {key} is a {str(tensor.layout).split('.')[-1]} tensor "
                        "(sparse); port reads dense tensors: save .to_dense()")
    if tensor.is_quantized:
        raise PortError(f"{where}: tensor {key} is quantized ({tensor.dtype}); port reads plain "
                        "numbers: save .dequantize()")
    if tensor.is_meta or tensor.device.type != "cpu":
        raise PortError(f"{where}: tensor {key} is a {tensor.device.type} tensor with no data "
                        "to read")
    if str(tensor.dtype).split(".")[-1] not in NUMBER_TYPES:
        raise PortError(f"{where}: tensor {key} holds {tensor.dtype} values; port reads "
                        f"{', '.join(NUMBER_TYPES)}")
    storage = tensor.untyped_storage()
    nbytes = declared_bytes(tensor.shape, tensor.element_size(), f"tensor {key}", where)
    if nbytes > storage.nbytes():
        raise PortError(f"{where}: tensor {key} has {tensor.numel()} values but its storage "
                        f"holds {storage.nbytes()} bytes (a view with stride 0?); port reads "
                        "tensors that own their values: save .clone()")
    return storage


def _pickled_module(file) -> str | None:
    """The class of a whole ``nn.Module`` pickled in a torch.save zip, else None.

    The pickle is read as opcodes (``pickletools.genops`` parses, it never runs
    anything): a pickled module's state holds the keys "_modules" and "_parameters",
    and its first GLOBAL is its class.
    """
    import pickletools

    try:  # the zip was checked by load_torch_file: every member stored, within the file
        file.seek(0)
        with zipfile.ZipFile(file) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            data = archive.read(names[0]) if names else b""
        strings, classes = [], []
        for opcode, argument, _ in pickletools.genops(data):
            if isinstance(argument, str) and "UNICODE" in opcode.name:
                strings.append(argument)
            elif opcode.name == "GLOBAL":
                classes.append(argument.replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                classes.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # not a zip, a damaged pickle: then torch's own reason stands
        return None
    if "_modules" in strings and "_parameters" in strings and classes:
        return classes[0]
    return None


def read_safetensors(path: str, linear: tuple[str, ...] = ()) -> Source:
    """A ``.safetensors`` state_dict's layers, read without PyTorch."""
    import safetensors

    try:
        with open_regular(path, "safetensors file") as (_, size):
            if size > MAX_FILE_BYTES:
                raise PortError(f"{path} is {size} bytes; a file of more than {MAX_FILE_BYTES} "
                                "bytes is not read")
        with safetensors.safe_open(path, framework="np") as file:
            metadata = file.metadata() or {}
            tensors = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118
    except FileRefusedError as refused:
        raise PortError(str(refused)) from None
    except (safetensors.SafetensorError, OSError, TypeError, ValueError) as error:
        if isinstance(error, PortError):
            raise
        detail = brief(str(error), 200, quote=False)
        raise PortError(f"{path} is not a readable safetensors file ({detail})") from None
    if metadata.get("format") == CHECKPOINT_FORMAT:
        raise PortError(
            f"{path} is a seq2seq-rosetta checkpoint, which both backends load as it is "
            "(shared.load_checkpoint, import_weights): there is nothing to port"
        )
    if not tensors:
        raise PortError(f"{path} holds no tensors")
    found = models(path, tensors)
    source = _source(path, "safetensors", found.tensors, linear)
    source.about = found.about
    return source


def _why(error: Exception) -> str:
    """torch.load's refusal in one line: the unsupported global when it names one."""
    text = str(error)
    found = re.search(r"[^\n]*[Uu]nsupported[^\n]*", text)  # "... unsupported GLOBAL os.mkdir ..."
    summary = found.group(0).strip() if found else (text.strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {summary}".rstrip(": ")


def _source(path: str, kind: str, tensors: dict, linear: tuple[str, ...]) -> Source:
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        module, _, parameter = key.rpartition(".")
        modules.setdefault(module, {})[parameter] = value
    unknown = sorted(set(linear) - set(modules))
    if unknown:
        raise PortError(f"--linear {unknown[0]!r} names no module of {path} "
                        f"(its modules: {', '.join(modules)})")
    layers = [_module(path, name, parameters, name in linear)
              for name, parameters in modules.items()]
    parameters = sum(int(np.size(value)) for value in tensors.values())
    description = "PyTorch state_dict (torch.save)" if kind == "torch" else "safetensors state_dict"
    return Source(path, kind, description, layers, len(tensors), parameters)


def _module(path: str, name: str, parameters: dict, linear: bool):
    shapes = ", ".join(f"{key} {tuple(np.shape(value))}" for key, value in parameters.items())
    if all(RNN_PARAMETER.match(key) for key in parameters):
        return _recurrent(path, name, parameters)
    weight, bias = parameters.get("weight"), parameters.get("bias")
    if set(parameters) == {"weight"} and np.ndim(weight) == 2 and not linear:
        return Embedding(name, "nn.Embedding", "torch", float32(f"{path}: {name}.weight", weight))
    fits = bias is None or (np.ndim(bias) == 1 and np.ndim(weight) == 2
                            and np.shape(bias)[0] == np.shape(weight)[0])
    if set(parameters) <= {"weight", "bias"} and np.ndim(weight) == 2 and fits:
        weight = float32(f"{path}: {name}.weight", weight)
        bias = None if bias is None else float32(f"{path}: {name}.bias", bias)
        raw = {"weight": weight, **({} if bias is None else {"bias": bias})}
        return Dense(name, "nn.Linear", "torch", weight, bias, raw)
    return Unportable(name, f"PyTorch module with {shapes}", rules.UNKNOWN)


def _recurrent(path: str, name: str, parameters: dict):
    found = {}
    for key, value in parameters.items():
        kind, part, k, reverse = RNN_PARAMETER.match(key).groups()
        array = float32(f"{path}: {name}.{key}", value)
        if array.ndim != (2 if kind == "weight" else 1):
            raise PortError(f"{path}: {name}.{key} has shape {array.shape}; an nn.LSTM or "
                            f"nn.GRU {kind} is {'2' if kind == 'weight' else '1'}-D")
        found[f"{kind}_{part}", int(k), bool(reverse)] = array
    num_layers = max(k for _, k, _ in found) + 1
    if num_layers > 64 or len(found) < num_layers:
        raise PortError(f"{path}: recurrent module {brief(name)} names layer {num_layers - 1} "
                        f"but holds {len(found)} tensors; the layers must count from 0")
    bidirectional = any(reverse for _, _, reverse in found)
    directions = DIRECTIONS[: 2 if bidirectional else 1]
    projection = [v for (kind, _, _), v in found.items() if kind == "weight_hr"]
    if projection:
        return Unportable(name, "nn.LSTM",
                          rules.PROJECTION.format(what=f"proj_size={projection[0].shape[0]}"))
    missing = [f"{kind}_l{k}{'_reverse' if d == 'backward' else ''}"
               for k in range(num_layers) for d in directions for kind in ("weight_ih", "weight_hh")
               if (kind, k, d == "backward") not in found]
    if missing:
        raise PortError(f"{path}: recurrent module {name!r} lacks {', '.join(missing)}")
    weight_hh = found["weight_hh", 0, False]
    rows, hidden = weight_hh.shape
    gates = rows // hidden if hidden and rows % hidden == 0 else 0
    if gates not in CELLS:
        what = "nn.RNN" if gates == 1 else f"recurrent module (weight_hh_l0 {weight_hh.shape})"
        return Unportable(name, what, rules.UNKNOWN)
    cell, what = CELLS[gates]
    has_bias = any(kind.startswith("bias") for kind, _, _ in found)
    weights, notes = {}, [] if has_bias else ["bias=False in the source: zero biases written"]
    for k in range(num_layers):
        for direction in directions:
            def get(kind, k=k, direction=direction):
                array = found.get((kind, k, direction == "backward"))
                return np.zeros(rows, np.float32) if array is None else array
            width = get("weight_ih").shape[1]
            if k > 0 and width != len(directions) * hidden:
                raise PortError(
                    f"{path}: {what} {name!r} layer {k} reads {width} features; expected D*H = "
                    f"{len(directions) * hidden}, the outputs of layer {k - 1}"
                )
            try:
                weights.update(from_torch(cell, f"l{k}.{direction}", get("weight_ih"),
                                          get("weight_hh"), get("bias_ih"), get("bias_hh")))
            except ValueError as error:
                raise PortError(f"{path}: {what} {name!r} layer {k} {direction}: {error}") from None
    raw = dict(parameters)
    inputs = found["weight_ih", 0, False].shape[1]
    return Recurrent(name, what, "torch", cell, inputs, hidden, num_layers, bidirectional,
                     weights, True, {key: float32(key, value) for key, value in raw.items()},
                     {"bias": has_bias}, notes)
