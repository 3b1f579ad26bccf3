"""The files a port writes (DST), and what both writers, the check and ``load_ported`` share.

    --to torch   DST.safetensors or DST.pt (``torch.save`` of a plain dict of tensors)
                 keyed "{layer}.{param}" with PyTorch's parameter names
    --to keras   DST.safetensors keyed "{layer}.{weight}" with Keras's weight names,
                 "{layer}.forward.{weight}" / "{layer}.backward.{weight}" for a
                 Bidirectional layer

A .safetensors DST also says in its metadata which target it was written for
(``{"format": "seq2seq-rosetta/port", "target": "torch" | "keras"}``), so that a
file written for one framework is not loaded into the other; what a ``--partial``
port skipped (``"skipped"``: a JSON list of {name, what, parameters, why}); and,
for Keras, each recurrent layer's activations (``"activations"``: JSON {layer:
{"activation": ..., "recurrent_activation": ...}}), which ``load_ported`` holds
the model's layers to: weights right and an activation wrong would be wrong
numbers with no error.  Writing is atomic
(``shared.files.atomic``: a temporary file + ``os.replace``): DST is the new file or
the old one, never half of one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from shared.files.atomic import write_atomically
from shared.files.limits import MAX_FILE_BYTES, MAX_JSON_BYTES
from shared.files.safe import FileRefusedError, loads, open_regular
from shared.port.layers import PortError, keras_name
from shared.port.rules import Skipped

FORMAT = "seq2seq-rosetta/port"
EXTENSIONS = {"torch": (".safetensors", ".pt", ".pth", ".bin"), "keras": (".safetensors",)}


@dataclass
class TargetLayer:
    """One layer as the target framework builds it.

    Attributes:
        name: its name in DST: a module path (torch) or the Keras name before "." -> "_".
        source: the source layer it comes from.
        kind: the target class: "LSTM", "GRU", "Embedding", "Linear" (torch), "Dense" (keras).
        args: the class's positional arguments, e.g. (71, 256) for nn.LSTM(71, 256).
        kwargs: its keyword arguments, e.g. {"batch_first": True}.
        tensors: {parameter or weight name: array} as DST stores them under "{name}.".
        line: the line the report prints to build it.
        bidirectional: a Keras layer wrapped in ``Bidirectional``.
        notes: lines for the report.
        index: which layer k of its source it is (a PyTorch module of L layers gives L
            Keras layers).
        activations: a Keras LSTM's/GRU's {"activation": name, "recurrent_activation":
            name} as DST's metadata records them for ``load_ported``; {} elsewhere.
    """

    name: str
    source: object
    kind: str
    args: tuple
    kwargs: dict
    tensors: dict[str, np.ndarray]
    line: str
    bidirectional: bool = False
    notes: list[str] = field(default_factory=list)
    index: int = 0
    activations: dict[str, str] = field(default_factory=dict)

    @property
    def activations_key(self) -> str:
        return keras_name(self.name)


@dataclass
class Written:
    """What a writer put in DST; ``skipped``: the layers a ``--partial`` port left out."""

    path: str
    target: str
    layers: list[TargetLayer]
    skipped: list[Skipped] = field(default_factory=list)
    replaced: bool = False  # DST existed before and was replaced

    @property
    def tensors(self) -> dict[str, np.ndarray]:
        return {key(layer.name, name): array
                for layer in self.layers for name, array in layer.tensors.items()}

    def metadata(self, source_path: str) -> dict[str, str]:
        """DST's safetensors metadata (strings only, as the format wants)."""
        metadata = {"format": FORMAT, "target": self.target,
                    "source": os.path.basename(source_path)}
        if self.skipped:
            metadata["skipped"] = json.dumps([asdict(s) for s in self.skipped])
        gates = {layer.activations_key: layer.activations for layer in self.layers
                 if layer.activations}
        if gates:
            metadata["activations"] = json.dumps(gates)
        return metadata


def written_or_refused(source_path: str, destination: str, target: str,
                       layers: list[TargetLayer], skipped: list[Skipped]) -> Written:
    """What a writer will write; PortError when that is nothing."""
    if not layers and skipped:
        raise PortError(f"{source_path}: --partial skips every layer with weights "
                        f"({', '.join(s.name for s in skipped)}): nothing left to write")
    if not layers:
        raise PortError(f"{source_path} has no layers with weights to port")
    return Written(destination, target, layers, skipped)


def key(layer: str, parameter: str) -> str:
    """"{layer}.{parameter}"; a bare module's (name "") parameters keep their own names."""
    return f"{layer}.{parameter}" if layer else parameter


def check_destination(source_path: str, destination: str, target: str) -> None:
    """PortError unless DST is a new or replaceable file of an extension ``target`` writes."""
    if not destination.endswith(EXTENSIONS[target]):
        raise PortError(f"--out {destination}: --to {target} writes "
                        f"{' or '.join(EXTENSIONS[target])}")
    if os.path.exists(source_path) and os.path.exists(destination) and os.path.samefile(
        source_path, destination
    ):
        raise PortError(f"--out {destination} is SRC itself; write the port to another file")
    if os.path.isdir(destination):
        raise PortError(f"--out {destination} is a directory; give a file name")
    folder = os.path.dirname(os.path.abspath(destination))
    if not os.path.isdir(folder):
        raise PortError(f"--out {destination}: no such directory {folder}")


def save(written: Written, source_path: str) -> None:
    """Write DST: safetensors (with metadata) or, for torch, ``torch.save`` of a dict.

    Every tensor is checked finite first (a value folded in, such as TF1's forget_bias,
    or a float64 source too large for float32, could make inf): a refused DST is not
    written at all.
    """
    if written.skipped and not written.path.endswith(".safetensors"):
        count = len(written.skipped)
        raise PortError(
            f"--out {written.path}: --partial skips {count} layer{'s' * (count > 1)} and lists "
            "them in DST's metadata, which a .pt file cannot hold; write DST as .safetensors"
        )
    tensors = {name: np.ascontiguousarray(array, dtype=np.float32)
               for name, array in written.tensors.items()}
    for name, array in tensors.items():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise PortError(f"{written.path} would hold {bad} NaN/inf values in {name} (of "
                            f"{array.size}); nothing written: check the source's weights and "
                            "the values folded into them (--tf1-forget-bias)")
    if written.path.endswith(".safetensors"):
        import safetensors.numpy

        data = safetensors.numpy.save(tensors, metadata=written.metadata(source_path))
    else:  # a .pt file: PyTorch writes it (imported there, only for this)
        from shared.port.writers.torch import torch_file_bytes

        data = torch_file_bytes(tensors)
    written.replaced = os.path.exists(written.path)
    write_atomically(written.path, data)


@dataclass
class Ported:
    """A ported file, read back: its tensors, and what its metadata says."""

    tensors: dict[str, np.ndarray]
    skipped: list[dict] = field(default_factory=list)
    activations: dict[str, dict] = field(default_factory=dict)


def load(path: str, target: str) -> dict[str, np.ndarray]:
    """The tensors of a ported file written for ``target``, as float32 arrays."""
    return load_ported_file(path, target).tensors


def load_ported_file(path: str, target: str) -> Ported:
    """A ported file written for ``target``: its tensors and its metadata's lists.

    Raises:
        PortError: no such file, not readable, written for the other framework, or
            metadata that is not the JSON the writers write.
    """
    if not os.path.isfile(path):
        raise PortError(f"{path}: no such file")
    try:
        with open_regular(path, "ported file") as (_, size):
            if size > MAX_FILE_BYTES:
                raise PortError(f"{path} is {size} bytes; a file of more than "
                                f"{MAX_FILE_BYTES} bytes is not read")
    except FileRefusedError as refused:
        raise PortError(str(refused)) from None
    if path.endswith(".safetensors"):
        import safetensors

        try:
            with safetensors.safe_open(path, framework="np") as file:
                metadata = file.metadata() or {}
                tensors = {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118
        except (safetensors.SafetensorError, OSError) as error:
            raise PortError(f"{path} is not a readable safetensors file ({error})") from None
        if metadata.get("format") != FORMAT:
            return Ported(tensors)
        if metadata.get("target") != target:
            raise PortError(
                f"{path} was written for {metadata.get('target')} (--to "
                f"{metadata.get('target')}); port the model again with --to {target}"
            )
        skipped, gates = (_json(path, metadata, name, kind)
                          for name, kind in (("skipped", list), ("activations", dict)))
        return Ported(tensors, skipped, gates)
    from shared.port.readers.torch import load_state_dict  # PyTorch reads its own files

    return Ported(load_state_dict(path))


def _json(path: str, metadata: dict, name: str, kind: type):
    """Metadata entry ``name`` parsed as the JSON ``kind`` the writers write; empty if absent."""
    if name not in metadata:
        return kind()
    try:
        value = loads(metadata[name], path, MAX_JSON_BYTES)  # strict: depth, numbers
    except FileRefusedError:
        value = None
    items = value.values() if isinstance(value, dict) else value
    if not isinstance(value, kind) or not all(isinstance(item, dict) for item in items):
        raise PortError(f"{path}: its metadata {name!r} is not the JSON port writes")
    return value
