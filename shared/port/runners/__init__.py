"""Each framework running one ported layer, for ``--check``: the only modules of port that
import a framework, and only inside their functions.

May import: shared.core, shared.layout, shared.port; NumPy, and inside functions the
framework it runs (onnx too, for ONNX Runtime).
"""
