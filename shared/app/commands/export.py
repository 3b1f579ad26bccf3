"""``seq2seq-rosetta export``: write a checkpoint as the files an inference engine runs.

    seq2seq-rosetta export runs/dates/model.safetensors --format onnx --out runs/dates/onnx
    seq2seq-rosetta export runs/dates/model.safetensors --format litert --out runs/dates/litert
    seq2seq-rosetta export runs/dates/model.safetensors --format executorch --out runs/dates/et \\
        --batch-size 1 --max-source-length 32

The on-device formats (docs/on-device.md) are programs of a fixed shape: the batch and
the longest source the encoder reads at once are chosen here and stored in the folder's
metadata (the engines pad and split any batch to them).  LiteRT files are converted from
``keras_impl``'s model (Keras on TensorFlow; in a process of its own when this one runs
Keras on another backend), ExecuTorch programs lowered from ``torch_impl``'s.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path

from shared.app import flags
from shared.app.backends import BackendError, load_exported
from shared.ondevice.contract import DEFAULT_BATCH_SIZE, DEFAULT_MAX_SOURCE_LENGTH
from shared.ondevice.folder import MAX_BATCH_SIZE, MAX_SOURCE_LENGTH

FORMATS = ("onnx", "litert", "executorch")
DELEGATES = ("xnnpack", "portable")  # torch_impl.on_device.DELEGATES, without importing torch


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``export`` command to ``subparsers`` (``shared.app.cli``'s)."""
    export = subparsers.add_parser(
        "export", help="write a checkpoint as ONNX, LiteRT or ExecuTorch files")
    export.add_argument("checkpoint")
    export.add_argument("--format", choices=FORMATS, default="onnx",
                        help="onnx (docs/onnx.md), litert or executorch (docs/on-device.md)")
    export.add_argument("--out", required=True, help="folder for the encoder and decoder files")
    export.add_argument("--batch-size", type=flags.count(1, MAX_BATCH_SIZE),
                        default=DEFAULT_BATCH_SIZE,
                        help=f"litert, executorch: the programs' fixed batch "
                             f"(default {DEFAULT_BATCH_SIZE})")
    export.add_argument("--max-source-length", type=flags.count(1, MAX_SOURCE_LENGTH),
                        default=DEFAULT_MAX_SOURCE_LENGTH,
                        help=f"litert, executorch: the longest source read at once, and the "
                             f"memory attention reads (default {DEFAULT_MAX_SOURCE_LENGTH})")
    export.add_argument("--delegate", choices=DELEGATES, default="xnnpack",
                        help="executorch: XNNPACK's kernels (default) or the portable ones only")
    export.set_defaults(func=run)
    return export


def run(args) -> int:
    out = flags.output_dir(args.out)
    there = {path.name for path in out.iterdir()} if out.is_dir() else set()
    if args.format == "onnx":
        paths = _onnx(args, out)
    else:
        shape = {"batch_size": args.batch_size, "max_source_length": args.max_source_length}
        paths = _litert(args, out, shape) if args.format == "litert" else \
            _executorch(args, out, {**shape, "delegate": args.delegate})
        print(f"fixed shape: batch_size {args.batch_size}, max_source_length "
              f"{args.max_source_length} (in {paths['metadata']})")
    # A second export into a used --out says which of its files it replaced.
    used = [Path(paths[part]).name for part in ("encoder", "decoder")
            if Path(paths[part]).name in there]
    replaced = f" (replacing the {' and '.join(used)} that were there)" if used else ""
    print(f"wrote {paths['encoder']} and {paths['decoder']}{replaced}")
    if args.format != "onnx":
        print(_checked(args.format, out))
    return 0


def _checked(runtime: str, out) -> str:
    """Load the folder as the engine would (every check of load_model), where it is installed."""
    try:
        model = load_exported(runtime, out)
    except BackendError as err:
        return f"not loaded here ({err})"
    counts = {part: sum(ops.values()) for part, ops in model.operators.items()}
    return (f"checked: {runtime}_impl loads it ({counts['encoder']} and {counts['decoder']} "
            "operator calls; docs/on-device.md lists them)")


def _onnx(args, out):
    try:
        from shared.onnx.export import export_checkpoint
    except ImportError as err:
        raise flags.UsageError(
            f"export --format onnx needs the onnx package ({err}); "
            "pip install 'seq2seq-rosetta[onnx]'"
        ) from err
    return export_checkpoint(args.checkpoint, out)


def _litert(args, out, shape: dict) -> dict:
    """Keras's model converted to LiteRT, here on TensorFlow, or in a process that is."""
    keras = sys.modules.get("keras")
    backend = keras.backend.backend() if keras is not None else \
        os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend != "tensorflow":
        from shared.app.elsewhere import ElsewhereError, run_elsewhere

        try:
            return run_elsewhere("keras_impl.on_device:export_checkpoint",
                                 {"path": str(args.checkpoint), "out": str(out), **shape},
                                 keras_backend="tensorflow")
        except ElsewhereError as err:
            raise flags.UsageError(str(err)) from err
    try:
        from keras_impl.on_device import LiteRTExportError, export_checkpoint
    except ImportError as err:
        raise flags.UsageError(f"export --format litert needs Keras on TensorFlow ({err}); "
                               "pip install 'seq2seq-rosetta[keras,litert]'") from err
    try:
        return export_checkpoint(args.checkpoint, out, **shape)
    except LiteRTExportError as err:
        raise flags.UsageError(str(err)) from err


def _executorch(args, out, options: dict) -> dict:
    missing = [name for name in ("torch", "executorch") if importlib.util.find_spec(name) is None]
    if missing:
        raise flags.UsageError(f"export --format executorch needs {' and '.join(missing)}; "
                               "pip install 'seq2seq-rosetta[executorch]'")
    from torch_impl.on_device import export_checkpoint

    return export_checkpoint(args.checkpoint, out, **options)
