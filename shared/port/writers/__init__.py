"""One writer per target framework: canonical layers to that framework's named arrays.

A writer imports its framework only to write that framework's own file format (a
``.pt`` file is ``torch.save``'s), inside the function that does it.

May import: shared.core, shared.files, shared.layout, shared.port; NumPy, the standard
library, and inside functions the framework whose file it writes.
"""
