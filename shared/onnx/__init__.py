"""The model as two ONNX graphs, built from the canonical weights, and their safe reading.

``graph`` builds the encoder and decoder graphs; ``weights`` reads the canonical
weights back from them; ``export`` writes and reads an export folder (metadata,
checksums); ``load`` reads an ONNX file safely (every tensor and subgraph checked).
The only floor that imports ``onnx``, and only when one of its modules is imported:
importing ``shared`` never loads it.

May import: shared.core, shared.files, shared.layout, shared.checkpoint; NumPy, onnx (and
its protobuf), safetensors and the standard library.
"""
