"""The steps of a port, each one function, and the whole port with its report.

    source = read("s2s_model.keras")                      # named layers, canonical
    written = write(source, "torch", "s2s.safetensors")   # refuses first, then writes DST
    rows = check(written)                                 # every layer, run both ways
    report = port("s2s_model.keras", "torch", "s2s.safetensors", check=True)
    print(report.text()); report.ok

``read`` imports a framework only to read that framework's files (PyTorch for
a ``.pt``, onnx for ``.onnx``; a ``.keras``, an ``.h5`` and a ``.safetensors``
need only h5py or safetensors, a TF1 checkpoint nothing: ``shared.files.bundle``
reads it), every file through ``shared.files``; ``write`` only for a ``.pt``
DST, ``check`` the target's framework and the source's where installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from shared.files.safe import FileRefusedError, brief
from shared.port.checking import LENGTHS, CheckRow, table
from shared.port.checking import check as check_written
from shared.port.detect import KINDS, detect
from shared.port.files import Written
from shared.port.layers import MAX_NAME, TARGETS, PortError, Source, Weightless
from shared.port.readers.keras import read_keras, read_keras_h5
from shared.port.readers.onnx import read_onnx
from shared.port.readers.tf1 import read_tf1
from shared.port.readers.torch import read_safetensors, read_torch
from shared.port.writers.keras import write_keras
from shared.port.writers.torch import write_torch

HOW_TO_LOAD = {
    "torch": "load it into a module tree with these attributes: "
             "torch_impl.load_ported(module, DST), or module.load_state_dict(..., strict=True)",
    "keras": "load it into a Keras model whose layers have these names: "
             "keras_impl.load_ported(model, DST); add return_sequences/return_state as your "
             "model uses them (they change what a layer returns, not its weights)",
}


def read(src: str, *, tf1_forget_bias: float = 1.0, linear: tuple[str, ...] = ()) -> Source:
    """SRC's layers in canonical form, whatever kind of file it is (``shared.port.detect``).

    Args:
        src: a .keras / .h5 model, a PyTorch state_dict (.pt/.pth/.bin/.safetensors), a TF1
            checkpoint prefix or its folder, or an .onnx model.
        tf1_forget_bias: the TF1 LSTM cells' forget_bias, folded into the forget-gate bias.
        linear: layers read by their structure (PyTorch module paths, a subclassed Keras
            model's or a TF2 checkpoint's attribute paths) whose lone 2-D weight is a
            bias-free linear layer, not an embedding.

    Raises:
        PortError: the file cannot be read; the message says why, in one line.
    """
    src = str(src)
    kind = detect(src)
    if linear and kind == "onnx":
        raise PortError(f"--linear names layers read by their structure; {src} is a {KINDS[kind]}, "
                        "whose nodes say what each layer is")
    readers = {"keras": partial(read_keras, linear=tuple(linear)),
               "keras-h5": partial(read_keras_h5, linear=tuple(linear)), "onnx": read_onnx,
               "torch": partial(read_torch, linear=tuple(linear)),
               "safetensors": partial(read_safetensors, linear=tuple(linear)),
               "tf1": partial(read_tf1, forget_bias=tf1_forget_bias, linear=tuple(linear))}
    try:
        source = readers[kind](src)
    except FileRefusedError as refused:  # the safe-reading layer's words, as a PortError
        raise PortError(str(refused)) from None
    # A name becomes DST's tensor names and the report's lines: a file may make one endless.
    long = next((layer.name for layer in source.layers if len(layer.name) > MAX_NAME), None)
    if long is not None:
        raise PortError(f"{src}: a layer is named {brief(long)} ({len(long)} characters); port "
                        f"reads layers named in at most {MAX_NAME}, as DST's tensor names")
    return source


def write(source: Source, target: str, dst: str, *, partial: bool = False) -> Written:
    """Write ``source``'s layers for ``target`` to DST, or PortError (and nothing written).

    With ``partial``, layers the target cannot express are skipped and listed (in
    ``Written.skipped`` and DST's metadata) instead of refusing the port.
    """
    if target not in TARGETS:
        raise PortError(f"target must be one of {', '.join(TARGETS)}; got {target!r}")
    return (write_torch if target == "torch" else write_keras)(source, str(dst), partial)


@dataclass
class Report:
    """What a port did: the source, what was written and, with --check, one row per layer."""

    source: Source
    written: Written
    rows: list[CheckRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def text(self) -> str:
        source, written = self.source, self.written
        tensors = written.tensors
        numbers = sum(int(a.size) for a in tensors.values())
        ported = [layer for layer in source.ported()
                  if any(t.source is layer for t in written.layers)]
        lines = [
            f"port {source.path} ({source.description}) -> {written.target}",
            *source.about,
            f"read {source.tensors} tensors ({source.parameters:,} numbers); wrote "
            f"{written.path}{' (replacing the file that was there)' if written.replaced else ''}"
            f": {len(tensors)} tensors ({numbers:,} numbers) for {len(ported)} layers",
            f"{HOW_TO_LOAD[written.target]}:",
        ]
        width = max(len(layer.name) for layer in ported)
        heading = None
        for layer in ported:
            submodel = next((p for p in source.submodels
                             if layer.name == p or layer.name.startswith(f"{p}.")), None)
            if submodel is not None and submodel != heading:
                heading = submodel
                lines.append(f" {source.submodels[submodel]}:")
            targets = [t for t in written.layers if t.source is layer]
            lines.append(f"  {layer.name.ljust(width)}  {layer.what}, {layer.sizes()}")
            lines.extend(f"    {t.line}" for t in targets)
            lines.extend(f"      note: {note}" for t in targets for note in t.notes)
        weightless = [f"{layer.name} ({layer.what})" for layer in source.layers
                      if isinstance(layer, Weightless)]
        if weightless:
            lines.append("no weights, nothing to port: " + ", ".join(weightless))
        lines.extend(f"skipped (--partial): {skipped.line}" for skipped in written.skipped)
        lines.extend(f"not ported: {line}" for line in [*source.ignored, *source.notes])
        if self.rows:
            atol, n = self.rows[0].atol, len(self.rows)
            lengths = ", ".join(map(str, LENGTHS))
            lines.append(f"check: each layer on random inputs, rows of lengths {lengths}, a "
                         f"random initial state; max |target - source|, tolerance {atol:g}")
            lines.append(table(self.rows))
            bad = [row.name for row in self.rows if not row.ok]
            lines.append(f"{n} of {n} layers within {atol:g}" if not bad
                         else f"{len(bad)} of {n} layers over {atol:g}: {', '.join(bad)}")
        return "\n".join(lines)


def port(src: str, to: str, out: str, *, check: bool = False,
         tf1_forget_bias: float = 1.0, linear: tuple[str, ...] = (),
         engine: str = "auto", partial: bool = False) -> Report:
    """Read SRC, write DST for ``to`` and, with ``check``, prove it layer by layer.

    ``engine="reference"`` checks against ``shared.reference`` even where the source's
    framework is installed; ``partial`` ports what the target can express and lists the
    rest (``write``).
    """
    source = read(src, tf1_forget_bias=tf1_forget_bias, linear=linear)
    written = write(source, to, out, partial=partial)
    rows = check_written(written, engine=engine) if check else []
    return Report(source, written, rows)
