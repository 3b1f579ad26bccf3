"""One reader per source file format, each giving canonical layers (``shared.port.layers``).

Nothing in a file is ever executed: every reader parses bytes (JSON, HDF5, zip,
protobuf, safetensors, ``torch.load(weights_only=True)``).

May import: shared.core, shared.files, shared.layout, shared.onnx, shared.port; NumPy, the
standard library, and inside functions h5py, safetensors and the library of the format it
reads (torch, tensorflow, onnx).
"""
