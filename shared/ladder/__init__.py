"""The parity ladder: one engine's model climbed rung by rung against the reference.

May import: shared.core, shared.text, shared.layout, shared.decoding, shared.reference;
NumPy and the standard library.
"""
