"""``seq2seq-rosetta export``: write a checkpoint as the files an inference engine runs.

    seq2seq-rosetta export runs/dates/model.safetensors --format onnx --out runs/dates/onnx
"""

from __future__ import annotations

import argparse

from shared.app import flags


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``export`` command to ``subparsers`` (``shared.app.cli``'s)."""
    export = subparsers.add_parser(
        "export", help="write a checkpoint as encoder.onnx and decoder.onnx")
    export.add_argument("checkpoint")
    export.add_argument("--format", choices=("onnx",), default="onnx",
                        help="the file format (one so far: onnx; see docs/onnx.md)")
    export.add_argument("--out", required=True, help="folder for encoder.onnx and decoder.onnx")
    export.set_defaults(func=run)
    return export


def run(args) -> int:
    out = flags.output_dir(args.out)
    try:
        from shared.onnx.export import export_checkpoint
    except ImportError as err:
        raise flags.UsageError(
            f"export --format onnx needs the onnx package ({err}); "
            "pip install 'seq2seq-rosetta[onnx]'"
        ) from err
    used = [name for name in ("encoder.onnx", "decoder.onnx") if (out / name).exists()]
    paths = export_checkpoint(args.checkpoint, out)
    replaced = f" (replacing the {' and '.join(used)} that were there)" if used else ""
    print(f"wrote {paths['encoder']} and {paths['decoder']}{replaced}")
    return 0


