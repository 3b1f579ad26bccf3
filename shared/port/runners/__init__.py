"""Each framework running one ported layer, for ``--check``; each imports its framework
only inside its functions (as port's readers and writers do, to read and write that
framework's files).

May import: shared.core, shared.layout, shared.port; NumPy, and inside functions the
framework it runs (onnx too, for ONNX Runtime).
"""
