"""The application layer: the command line, the demo, the experiment, the engines' loaders.

``cli`` (the ``seq2seq-rosetta`` command; one module per command in ``commands``),
``demo``, ``experiment``, ``backends`` (importing an engine on demand),
``elsewhere`` (running a function on another Keras backend), ``quiet``
(TensorFlow's start-up notices).  Nothing below this floor imports it; it imports
the engines (``keras_impl``, ``torch_impl``, ``onnx_impl``) only inside functions,
when a command needs one.

May import: every floor of shared, and the engine packages lazily; NumPy, the standard
library, and inside functions matplotlib (the plots) and, where a module loads an engine,
that engine's framework.
"""
