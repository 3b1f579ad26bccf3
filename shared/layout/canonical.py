"""The canonical weight layout: every gate's piece of the model, named once.

Weights cross between Keras and PyTorch only through this layout.  Each backend
converts its own arrays to one layer's stacked PyTorch-layout arrays (the
framework converters live in ``shared.layout.lstm`` and ``shared.layout.gru``; the
package ``shared.layout`` re-exports them beside these), and ``split_gates`` /
``join_gates`` name them.

The canonical layout is a flat dict of float32 arrays, one entry per gate piece:

    encoder.embedding                                               (V_src, E)
    {encoder|decoder}.layers.{k}.{forward|backward}.{gate}.W_ih     (H, in_k)
    {encoder|decoder}.layers.{k}.{forward|backward}.{gate}.W_hh     (H, H)
    {encoder|decoder}.layers.{k}.{forward|backward}.{gate}.b_ih     (H,)
    {encoder|decoder}.layers.{k}.{forward|backward}.{gate}.b_hh     (H,)
    decoder.embedding                                               (V_tgt, E)
    decoder.attention.*     with attention only: W_a, W_c or W_1, W_2, v_a, W_c
                            (shared.layout.attention)
    decoder.output.W                                                (V_tgt, H_dec)
    decoder.output.b                                                (V_tgt,)

where {gate} is i, f, g, o for an LSTM and r, z, n for a GRU (``config.cell``),
with PyTorch's meaning (the equations are in ``shared.layout.gates``).  The encoder's H
is ``hidden_size`` with in_0 = E and in_k = D*H; the decoder is one-directional
(``forward`` only) with H_dec = D*H, in_0 = E and in_k = H_dec.

Shape legend: B batch, E embedding, H hidden, L layers, D directions, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from shared.core.checks import check_count
from shared.core.config import ATTENTIONS, Seq2SeqConfig
from shared.core.inputs import as_array
from shared.layout.attention import attention_shapes
from shared.layout.gates import (
    CELL_GATES,
    check_shape,
    hidden_size_of,
)

PIECES = ("W_ih", "W_hh", "b_ih", "b_hh")
SIDES = ("encoder", "decoder")
DIRECTIONS = ("forward", "backward")


def layer_prefix(side: str, layer: int, direction: str = "forward") -> str:
    """The canonical name prefix of one recurrent layer, e.g. "encoder.layers.0.forward".

    Args:
        side: "encoder" or "decoder".
        layer: the layer index k, from 0 at the bottom.
        direction: "forward" or "backward" ("backward" exists only in a bidirectional
            encoder; the decoder is one-directional).
    """
    if side not in SIDES:
        raise ValueError(f"side must be 'encoder' or 'decoder'; got {side!r}")
    check_count(layer, "layer", low=0)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'forward' or 'backward'; got {direction!r}")
    if side == "decoder" and direction == "backward":
        raise ValueError("the decoder is one-directional: it has no 'backward' layers")
    return f"{side}.layers.{int(layer)}.{direction}"


def _gates_of(cell: str) -> str:
    if cell not in CELL_GATES:
        raise ValueError(f"cell must be one of {', '.join(CELL_GATES)}; got {cell!r}")
    return CELL_GATES[cell]


def split_gates(
    prefix: str,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias_ih: np.ndarray,
    bias_hh: np.ndarray,
    cell: str = "lstm",
) -> dict[str, np.ndarray]:
    """One layer's stacked PyTorch-layout arrays to its canonical entries, gate by gate.

    Args:
        prefix: the layer's name prefix, from ``layer_prefix``.
        weight_ih: (G*H, in), gates stacked as PyTorch does: i, f, g, o for an LSTM
            (G = 4), r, z, n for a GRU (G = 3).
        weight_hh: (G*H, H).
        bias_ih: (G*H,).
        bias_hh: (G*H,).
        cell: "lstm" or "gru".

    Returns:
        {f"{prefix}.{gate}.{piece}": array} for each gate and piece in W_ih (H, in),
        W_hh (H, H), b_ih (H,), b_hh (H,), in that order; float32 copies.
    """
    gates = _gates_of(cell)
    G = len(gates)
    stacked = {
        "W_ih": np.asarray(weight_ih),  # (G*H, in)
        "W_hh": np.asarray(weight_hh),  # (G*H, H)
        "b_ih": np.asarray(bias_ih),  # (G*H,)
        "b_hh": np.asarray(bias_hh),  # (G*H,)
    }
    hidden = hidden_size_of("weight_ih", stacked["W_ih"], 0, f"({G}H, in)", gates=G)
    why = f"H = weight_ih.shape[0] // {G} = {hidden} ({cell})"
    check_shape("weight_hh", stacked["W_hh"], (G * hidden, hidden), f"({G}H, H)", why)
    check_shape("bias_ih", stacked["b_ih"], (G * hidden,), f"({G}H,)", why)
    check_shape("bias_hh", stacked["b_hh"], (G * hidden,), f"({G}H,)", why)
    weights = {}
    for index, gate in enumerate(gates):
        rows = slice(index * hidden, (index + 1) * hidden)  # this gate's block of H rows
        for piece in PIECES:
            weights[f"{prefix}.{gate}.{piece}"] = np.array(stacked[piece][rows], np.float32)
    return weights


def join_gates(
    weights: Mapping[str, np.ndarray], prefix: str, cell: str = "lstm"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One layer's canonical entries to stacked PyTorch-layout arrays (the inverse of split).

    Args:
        weights: a canonical dict holding at least the layer's entries.
        prefix: the layer's name prefix, from ``layer_prefix``.
        cell: "lstm" or "gru".

    Returns:
        (weight_ih (G*H, in), weight_hh (G*H, H), bias_ih (G*H,), bias_hh (G*H,)), float32,
        gates stacked i, f, g, o (LSTM) or r, z, n (GRU).
    """
    gates = _gates_of(cell)
    stacked = []
    for piece in PIECES:
        blocks = []
        for gate in gates:
            name = f"{prefix}.{gate}.{piece}"
            if name not in weights:
                raise ValueError(f"weights has no entry {name!r} (a {cell} layer)")
            blocks.append(np.asarray(weights[name], np.float32))
            if blocks[-1].shape != blocks[0].shape:
                raise ValueError(
                    f"{name} has shape {blocks[-1].shape}; expected {blocks[0].shape} "
                    f"like {prefix}.{gates[0]}.{piece}"
                )
        stacked.append(np.concatenate(blocks, axis=0))
    weight_ih, weight_hh, bias_ih, bias_hh = stacked
    return weight_ih, weight_hh, bias_ih, bias_hh


class RecurrentLayer(NamedTuple):
    """One recurrent layer of the model, one direction, as the canonical layout sees it.

    Attributes:
        prefix: its canonical name prefix, e.g. "encoder.layers.1.backward".
        side: "encoder" or "decoder".
        index: k, the layer's index from 0 at the bottom.
        direction: "forward" or "backward".
        hidden: H of this layer (H_dec = D*H in the decoder).
        inputs: in_k, the width of what it reads (E for k = 0, D*H above).
    """

    prefix: str
    side: str
    index: int
    direction: str
    hidden: int
    inputs: int


def recurrent_layers(config: Seq2SeqConfig, side: str | None = None) -> list[RecurrentLayer]:
    """Every recurrent layer of ``config``'s model in canonical order, the one order all use.

    The order: encoder layers k = 0, 1, ... (forward, then backward in a
    bidirectional encoder), then decoder layers k = 0, 1, ... .

    Args:
        config: the model's sizes.
        side: "encoder" or "decoder" for one side only; None for both.
    """
    if side is not None and side not in SIDES:
        raise ValueError(f"side must be 'encoder', 'decoder' or None; got {side!r}")
    width = config.decoder_hidden_size  # D*H: what a layer above the first reads
    layers = []
    for this_side in SIDES if side is None else (side,):
        hidden = config.hidden_size if this_side == "encoder" else width
        # Only the encoder may read both ways; the decoder writes forwards.
        both = config.num_directions if this_side == "encoder" else 1
        directions = DIRECTIONS[:both]
        for k in range(config.num_layers):
            inputs = config.embedding_dim if k == 0 else width  # layer k reads layer k-1's outputs
            for direction in directions:
                prefix = layer_prefix(this_side, k, direction)
                layers.append(RecurrentLayer(prefix, this_side, k, direction, hidden, inputs))
    return layers


def canonical_shapes(config: Seq2SeqConfig) -> dict[str, tuple[int, ...]]:
    """Every canonical name of ``config``'s model with its shape, in canonical order.

    The order: encoder.embedding; encoder layers k = 0.. (forward, then backward),
    each gate (i, f, g, o or r, z, n) with W_ih, W_hh, b_ih, b_hh; decoder.embedding;
    decoder layers likewise (forward only); with attention, decoder.attention.*
    (``shared.layout.attention.attention_shapes``); decoder.output.W; decoder.output.b.

    Args:
        config: the model's sizes.

    Returns:
        {name: shape}.
    """
    shapes = {}
    vocab_sizes = {"encoder": config.src_vocab_size, "decoder": config.tgt_vocab_size}
    for side, vocab_size in vocab_sizes.items():
        shapes[f"{side}.embedding"] = (vocab_size, config.embedding_dim)
        for layer in recurrent_layers(config, side):
            H, inputs = layer.hidden, layer.inputs
            piece_shapes = ((H, inputs), (H, H), (H,), (H,))
            for gate in CELL_GATES[config.cell]:
                for piece, shape in zip(PIECES, piece_shapes, strict=True):
                    shapes[f"{layer.prefix}.{gate}.{piece}"] = shape
    shapes.update(attention_shapes(config))  # between the decoder's layers and its output
    shapes["decoder.output.W"] = (config.tgt_vocab_size, config.decoder_hidden_size)
    shapes["decoder.output.b"] = (config.tgt_vocab_size,)
    return shapes


def _some(names: list[str], limit: int = 5) -> str:
    """The first ``limit`` names, and how many more there are."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _other_config_hint(weights: Mapping[str, np.ndarray], config: Seq2SeqConfig) -> str:
    """A hint when ``weights`` has exactly the names of the same model with the other cell,
    or with another attention."""
    for cell in CELL_GATES:
        if cell != config.cell:
            other = Seq2SeqConfig(**{**config.to_dict(), "cell": cell})
            if set(weights) == set(canonical_shapes(other)):
                return (f"; these are the names of the same model with cell={cell!r} "
                        f"(gates {', '.join(CELL_GATES[cell])}), but config.cell is "
                        f"{config.cell!r}")
    for attention in ATTENTIONS:
        if attention != config.attention:
            other = Seq2SeqConfig(**{**config.to_dict(), "attention": attention})
            if set(weights) == set(canonical_shapes(other)):
                return (f"; these are the names of the same model with attention={attention!r}, "
                        f"but config.attention is {config.attention!r}")
    return ""


def check_weights(weights: Mapping[str, np.ndarray], config: Seq2SeqConfig) -> dict:
    """Validate a canonical dict against ``config``, all of it before anything is used.

    Args:
        weights: {canonical name: array-like}; exactly the names of ``canonical_shapes``.
        config: the model's sizes.

    Returns:
        A new dict of float32, C-contiguous copies in canonical order.

    Raises:
        TypeError: ``weights`` is not a mapping.
        ValueError: names missing or unexpected, a non-numeric dtype, a wrong shape, or
            a value that is NaN, inf or too big for float32; the message names the entry.
    """
    if not isinstance(weights, Mapping):
        raise TypeError(
            f"weights must be a mapping of canonical names to arrays; got {type(weights).__name__}"
        )
    shapes = canonical_shapes(config)
    missing = [name for name in shapes if name not in weights]
    unexpected = sorted(repr(name) for name in weights if name not in shapes)
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {_some(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: {_some(unexpected)}")
    if problems:
        raise ValueError(
            "weights do not have this config's canonical names; " + "; ".join(problems)
            + _other_config_hint(weights, config)
        )
    checked = {}
    for name, shape in shapes.items():
        value = as_array(weights[name], name)
        if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
            raise ValueError(f"{name} must hold real numbers; got dtype {value.dtype}")
        if value.shape != shape:
            raise ValueError(f"{name} has shape {value.shape}; expected {shape} for this config")
        bad = int(value.size - np.count_nonzero(np.isfinite(value)))
        if bad:
            raise ValueError(f"{name} holds NaN/inf ({bad} of {value.size} values)")
        if value.size and np.max(np.abs(value)) > np.finfo(np.float32).max:
            raise ValueError(f"{name} holds values beyond float32's range (|x| > 3.4e38)")
        checked[name] = np.array(value, dtype=np.float32, order="C")  # a copy, even of float32
    return checked


def random_weights(config: Seq2SeqConfig, seed: int = 0, scale: float = 0.3) -> dict:
    """Random canonical weights: one shared starting point for both frameworks.

    Every entry is drawn independently, so each gate, and each of b_ih and b_hh,
    holds different nonzero values: a swapped gate or a dropped bias changes the
    outputs and a parity test sees it (constant initialisers would hide it).
    Embeddings are N(0, 1), as ``torch.nn.Embedding`` initialises them; the rest is
    uniform in [-scale, scale].  The PAD row is random too: masking makes it irrelevant.
    The gates follow ``config.cell``.  With attention, the score weights (W_a, or W_1,
    W_2 and v_a) are drawn three times wider: a score is a product of two outputs
    inside (-1, 1), and drawn like the rest it stays near 0, the attention near
    uniform, and a transposed W_a would move the logits by less than the rounding.

    Args:
        config: the model's sizes.
        seed: seed of ``numpy.random.default_rng``.
        scale: half-width of the uniform range of recurrent and output weights and biases.

    Returns:
        {name: float32 array} in canonical order.
    """
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in canonical_shapes(config).items():
        if name.endswith(".embedding"):
            value = rng.standard_normal(shape)
        else:
            value = rng.uniform(-scale, scale, shape)
        if name.startswith("decoder.attention.") and not name.endswith(".W_c"):
            value = 3 * value  # the score weights: see above
        weights[name] = value.astype(np.float32)
    return weights


def count_parameters(weights: Mapping[str, np.ndarray]) -> int:
    """The number of scalars in a canonical dict, of either cell, with or without attention.

    The canonical layout keeps two biases per gate, so an LSTM counts 4H more per
    layer than Keras's ``count_params`` (one bias); a GRU counts the same as a Keras
    ``GRU(reset_after=True)`` and as ``nn.GRU``.
    """
    return sum(int(np.size(value)) for value in weights.values())
