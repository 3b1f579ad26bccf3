"""On-device programs, the framework-free half: their contract, their fixed shapes, their folder.

An exported on-device model is two programs of fixed shapes, an encoder and a
one-step decoder, with the state as an explicit input and output:

``contract`` (each program's inputs and outputs, by name and in order, with shapes
and dtypes: the one list the exporters, the engines, the docs and the tests read),
``fixed`` (running programs of a fixed batch and source length on any batch:
padding, splitting, streaming a long source, the decoder's step loop), ``folder``
(an export folder's ``metadata.json`` and checksums, written, and read back checked).
``keras_impl.on_device`` (LiteRT) and ``torch_impl.on_device`` (ExecuTorch) write the
programs; ``litert_impl`` and ``executorch_impl`` run them.  docs/on-device.md
describes the files for people who run them without this project.

May import: shared.core, shared.files, shared.decoding; NumPy and the standard library.
"""
