"""Text to token ids and back: the tokenizer, question-answer pairs and batches, the tasks.

``tokenizer`` (characters or words to ids), ``data`` (TSV pairs, teacher-forcing
batches, post-padding), ``tasks`` (the built-in tasks, generated, never downloaded).

May import: shared.core, shared.files; NumPy and the standard library.
"""
