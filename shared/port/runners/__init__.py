"""Each framework running one ported layer, for ``--check``; each imports its framework
only inside its functions (as port's readers and writers do, to read and write that
framework's files).  Two sources have no framework here and run in NumPy with their
own semantics: Keras 2 layers (``keras2``) and Keras 2's cuDNN layers (``cudnn``).

May import: shared.core, shared.layout, shared.port, shared.reference (the NumPy cells
the NumPy runners step with); NumPy, and inside functions the framework it runs (onnx
too, for ONNX Runtime).
"""
