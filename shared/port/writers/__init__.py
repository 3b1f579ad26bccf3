"""One writer per target framework: canonical layers to that framework's named arrays.

May import: shared.core, shared.files, shared.layout, shared.port; the standard library.
"""
