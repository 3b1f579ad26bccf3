"""The canonical weight layout, and converters between each framework's LSTM arrays.

Every framework stores an LSTM layer as a few big arrays holding all four gates
stacked together, but each picks its own stacking order, its own orientation
(``x @ kernel`` or ``W @ x``) and its own number of biases.  To move weights
between frameworks we name every gate's piece once, in one canonical layout,
and convert each framework to and from it.

The gates (canonical letters; σ is the logistic sigmoid):

    i = σ(W_ii x + b_ii + W_hi h + b_hi)      input gate
    f = σ(W_if x + b_if + W_hf h + b_hf)      forget gate
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)   candidate cell (Keras "c", TF1 "j")
    o = σ(W_io x + b_io + W_ho h + b_ho)      output gate
    c' = f * c + i * g
    h' = o * tanh(c')

How each framework stores one layer, one direction (in: input width, H: hidden):

    framework             arrays                                   gates    biases
    Keras 3 layers.LSTM   kernel (in, 4H): x @ kernel              i f c o  bias (4H,)
                          recurrent_kernel (H, 4H): h @ rk
    PyTorch nn.LSTM       weight_ih_l{k} (4H, in): W @ x           i f g o  bias_ih_l{k} (4H,)
                          weight_hh_l{k} (4H, H)                            + bias_hh_l{k} (4H,)
                          (backward direction: suffix _reverse)
    TF1 LSTMCell,         kernel (in + H, 4H): [x, h] @ kernel     i j f o  bias (4H,), plus
      BasicLSTMCell       (first in rows multiply x, last H h)              forget_bias added to
                                                                            f at run time only
    ONNX LSTM             W (D, 4H, in), R (D, 4H, H): W @ x       i o f c  B (D, 8H) = [Wb, Rb]

So Keras and PyTorch differ only by a transpose and PyTorch's second bias
(the two are simply added).  TF1 fuses the input and recurrent kernels into one,
orders the gates i, j, f, o, and adds ``forget_bias`` (default 1.0) to the
forget gate when it runs: the stored bias does not include it.  ONNX orders the
gates i, o, f, c and keeps two biases end to end in one vector.  TF1's peepholes,
projections and cell clipping and ONNX's peepholes P are not covered here.

GRU, for the curious (not implemented): Keras stacks z, r, h (update, reset,
candidate) and PyTorch stacks r, z, n (reset, update, new), so the first two
blocks swap.

The canonical layout is a flat dict of float32 arrays, one entry per gate piece:

    encoder.embedding                                               (V_src, E)
    {encoder|decoder}.layers.{k}.{forward|backward}.{i|f|g|o}.W_ih  (H, in_k)
    {encoder|decoder}.layers.{k}.{forward|backward}.{i|f|g|o}.W_hh  (H, H)
    {encoder|decoder}.layers.{k}.{forward|backward}.{i|f|g|o}.b_ih  (H,)
    {encoder|decoder}.layers.{k}.{forward|backward}.{i|f|g|o}.b_hh  (H,)
    decoder.embedding                                               (V_tgt, E)
    decoder.output.W                                                (V_tgt, H_dec)
    decoder.output.b                                                (V_tgt,)

The encoder's H is ``hidden_size`` with in_0 = E and in_k = D*H; the decoder is
one-directional (``forward`` only) with H_dec = D*H, in_0 = E and in_k = H_dec.

Shape legend: B batch, E embedding, H hidden, L layers, D directions, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from shared.config import Seq2SeqConfig

# Each framework's gate stacking order, in canonical letters.
GATE_ORDER = {"keras": "ifgo", "torch": "ifgo", "tf1": "igfo", "onnx": "iofg"}

_GATES = "ifgo"
_PIECES = ("W_ih", "W_hh", "b_ih", "b_hh")
_SIDES = ("encoder", "decoder")
_DIRECTIONS = ("forward", "backward")


def _gate_letters(order: str, argument: str) -> str:
    """The 4 canonical letters of ``order``: a GATE_ORDER key or a permutation of "ifgo"."""
    if isinstance(order, str) and order in GATE_ORDER:
        return GATE_ORDER[order]
    if isinstance(order, str) and len(order) == 4 and sorted(order) == sorted(_GATES):
        return order
    raise ValueError(
        f"{argument} must be one of {', '.join(GATE_ORDER)} or a permutation of 'ifgo'; "
        f"got {order!r}"
    )


def reorder_gates(array: np.ndarray, src: str, dst: str, axis: int) -> np.ndarray:
    """Reorder the 4 equal gate blocks of ``array`` along ``axis`` from ``src`` to ``dst``.

    Example: ``reorder_gates(onnx_W, "onnx", "torch", axis=0)`` turns ONNX's
    (4H, in) i, o, f, c stack into PyTorch's i, f, g, o stack.

    Args:
        array: any array whose length along ``axis`` is 4H (four gate blocks of H).
        src: the order the blocks are in: a ``GATE_ORDER`` key or 4 letters such as "igfo".
        dst: the order wanted, in the same form.
        axis: the axis that stacks the gates.

    Returns:
        A new array of the same shape with the blocks in ``dst`` order.
    """
    src_letters = _gate_letters(src, "src")
    dst_letters = _gate_letters(dst, "dst")
    array = np.asarray(array)
    if not -array.ndim <= axis < array.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of shape {array.shape}")
    length = array.shape[axis]
    if length == 0 or length % 4:
        raise ValueError(
            f"array has length {length} along axis {axis} (shape {array.shape}); "
            "expected 4 equal gate blocks, a positive multiple of 4"
        )
    blocks = np.split(array, 4, axis=axis)
    return np.concatenate([blocks[src_letters.index(gate)] for gate in dst_letters], axis=axis)


def _hidden_size(name: str, array: np.ndarray, axis: int, rule: str) -> int:
    """H, read from a 2-D ``array`` whose ``axis`` stacks the 4 gates; ValueError if it can't."""
    if array.ndim != 2 or array.shape[axis] == 0 or array.shape[axis] % 4:
        raise ValueError(
            f"{name} must have shape {rule} with 4H a positive multiple of 4; got {array.shape}"
        )
    return array.shape[axis] // 4


def _check_shape(name: str, array: np.ndarray, expected: tuple, rule: str, why: str) -> None:
    if array.shape != expected:
        raise ValueError(
            f"{name} must have shape {rule} = {expected} with {why}; got {array.shape}"
        )


def keras_lstm_to_torch(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keras ``LSTM`` arrays to PyTorch ``nn.LSTM`` arrays (one layer, one direction).

    Args:
        kernel: (in, 4H), gates i, f, c, o.
        recurrent_kernel: (H, 4H).
        bias: (4H,).

    Returns:
        (weight_ih (4H, in), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,)): Keras's one
        bias goes to bias_ih and bias_hh is zeros, since PyTorch only uses their sum.
    """
    kernel, recurrent_kernel, bias = map(np.asarray, (kernel, recurrent_kernel, bias))
    hidden = _hidden_size("kernel", kernel, 1, "(in, 4H)")
    why = f"H = kernel.shape[1] // 4 = {hidden}"
    _check_shape("recurrent_kernel", recurrent_kernel, (hidden, 4 * hidden), "(H, 4H)", why)
    _check_shape("bias", bias, (4 * hidden,), "(4H,)", why)
    # Both stack the gates i, f, g, o: only the orientation differs (x @ kernel vs W @ x).
    weight_ih = np.ascontiguousarray(kernel.T)  # (4H, in)
    weight_hh = np.ascontiguousarray(recurrent_kernel.T)  # (4H, H)
    return weight_ih, weight_hh, bias.copy(), np.zeros_like(bias)


def torch_lstm_to_keras(
    weight_ih: np.ndarray, weight_hh: np.ndarray, bias_ih: np.ndarray, bias_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch ``nn.LSTM`` arrays to Keras ``LSTM`` arrays (one layer, one direction).

    Args:
        weight_ih: (4H, in), gates i, f, g, o.
        weight_hh: (4H, H).
        bias_ih: (4H,).
        bias_hh: (4H,).

    Returns:
        (kernel (in, 4H), recurrent_kernel (H, 4H), bias (4H,)) with bias = bias_ih + bias_hh.
    """
    weight_ih, weight_hh, bias_ih, bias_hh = map(
        np.asarray, (weight_ih, weight_hh, bias_ih, bias_hh)
    )
    hidden = _hidden_size("weight_ih", weight_ih, 0, "(4H, in)")
    why = f"H = weight_ih.shape[0] // 4 = {hidden}"
    _check_shape("weight_hh", weight_hh, (4 * hidden, hidden), "(4H, H)", why)
    _check_shape("bias_ih", bias_ih, (4 * hidden,), "(4H,)", why)
    _check_shape("bias_hh", bias_hh, (4 * hidden,), "(4H,)", why)
    kernel = np.ascontiguousarray(weight_ih.T)  # (in, 4H)
    recurrent_kernel = np.ascontiguousarray(weight_hh.T)  # (H, 4H)
    return kernel, recurrent_kernel, bias_ih + bias_hh


def tf1_lstm_to_keras(
    kernel: np.ndarray, bias: np.ndarray, forget_bias: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF1 ``LSTMCell`` / ``BasicLSTMCell`` arrays to Keras ``LSTM`` arrays.

    TF1 computes  i, j, f, o = split([x, h] @ kernel + bias)  and then uses
    σ(f + forget_bias), so the forget bias Keras needs is the stored one plus
    ``forget_bias``.

    Args:
        kernel: the fused (in + H, 4H) kernel, gates i, j, f, o; its first ``in`` rows
            multiply x and its last H rows multiply h.
        bias: (4H,), without ``forget_bias``.
        forget_bias: the cell's ``forget_bias`` argument (TF1's default is 1.0).

    Returns:
        (kernel (in, 4H), recurrent_kernel (H, 4H), bias (4H,)), gates i, f, c, o.
    """
    kernel, bias = np.asarray(kernel), np.asarray(bias)
    hidden = _hidden_size("kernel", kernel, 1, "(in + H, 4H)")
    if kernel.shape[0] <= hidden:
        raise ValueError(
            f"kernel must have shape (in + H, 4H) with in >= 1 and H = kernel.shape[1] // 4 "
            f"= {hidden}, so more than {hidden} rows; got {kernel.shape}"
        )
    _check_shape("bias", bias, (4 * hidden,), "(4H,)", f"H = kernel.shape[1] // 4 = {hidden}")
    inputs = kernel.shape[0] - hidden
    fused = reorder_gates(kernel, "tf1", "keras", axis=1)  # (in + H, 4H)
    bias = reorder_gates(bias, "tf1", "keras", axis=0)  # (4H,)
    bias[hidden : 2 * hidden] += forget_bias  # Keras's block 1 is f
    return np.ascontiguousarray(fused[:inputs]), np.ascontiguousarray(fused[inputs:]), bias


def keras_lstm_to_tf1(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray, forget_bias: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Keras ``LSTM`` arrays to TF1 ``LSTMCell`` / ``BasicLSTMCell`` arrays.

    The inverse of ``tf1_lstm_to_keras``: the cell will add ``forget_bias`` back
    when it runs, so it is subtracted from the stored forget bias here.

    Args:
        kernel: (in, 4H), gates i, f, c, o.
        recurrent_kernel: (H, 4H).
        bias: (4H,).
        forget_bias: the ``forget_bias`` the TF1 cell will be built with.

    Returns:
        (kernel (in + H, 4H), bias (4H,)), gates i, j, f, o.
    """
    kernel, recurrent_kernel, bias = map(np.asarray, (kernel, recurrent_kernel, bias))
    hidden = _hidden_size("kernel", kernel, 1, "(in, 4H)")
    why = f"H = kernel.shape[1] // 4 = {hidden}"
    _check_shape("recurrent_kernel", recurrent_kernel, (hidden, 4 * hidden), "(H, 4H)", why)
    _check_shape("bias", bias, (4 * hidden,), "(4H,)", why)
    bias = bias.copy()
    bias[hidden : 2 * hidden] -= forget_bias  # Keras's block 1 is f
    fused = np.concatenate([kernel, recurrent_kernel], axis=0)  # (in + H, 4H)
    return reorder_gates(fused, "keras", "tf1", axis=1), reorder_gates(bias, "keras", "tf1", axis=0)


def onnx_lstm_to_keras(
    W: np.ndarray, R: np.ndarray, B: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX ``LSTM`` arrays (one direction) to Keras ``LSTM`` arrays.

    ONNX stores W, R and B with a leading num_directions axis, (D, 4H, in) and
    so on; the caller slices one direction (``W[0]``) before calling this.

    Args:
        W: (4H, in), gates i, o, f, c.
        R: (4H, H).
        B: (8H,) = [Wb, Rb], input and recurrent biases end to end.

    Returns:
        (kernel (in, 4H), recurrent_kernel (H, 4H), bias (4H,) = Wb + Rb), gates i, f, c, o.
    """
    W, R, B = map(np.asarray, (W, R, B))
    hidden = _hidden_size("W", W, 0, "(4H, in)")
    why = f"H = W.shape[0] // 4 = {hidden}"
    _check_shape("R", R, (4 * hidden, hidden), "(4H, H)", why)
    _check_shape("B", B, (8 * hidden,), "(8H,)", why)
    kernel = reorder_gates(W, "onnx", "keras", axis=0).T  # (in, 4H)
    recurrent_kernel = reorder_gates(R, "onnx", "keras", axis=0).T  # (H, 4H)
    bias = reorder_gates(B[: 4 * hidden] + B[4 * hidden :], "onnx", "keras", axis=0)  # (4H,)
    return np.ascontiguousarray(kernel), np.ascontiguousarray(recurrent_kernel), bias


def keras_lstm_to_onnx(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras ``LSTM`` arrays to ONNX ``LSTM`` arrays (one direction).

    Add ONNX's leading num_directions axis yourself (``W[None]``) when writing a model.

    Args:
        kernel: (in, 4H), gates i, f, c, o.
        recurrent_kernel: (H, 4H).
        bias: (4H,).

    Returns:
        (W (4H, in), R (4H, H), B (8H,)), gates i, o, f, c; Keras's one bias becomes Wb
        and Rb is zeros.
    """
    kernel, recurrent_kernel, bias = map(np.asarray, (kernel, recurrent_kernel, bias))
    hidden = _hidden_size("kernel", kernel, 1, "(in, 4H)")
    why = f"H = kernel.shape[1] // 4 = {hidden}"
    _check_shape("recurrent_kernel", recurrent_kernel, (hidden, 4 * hidden), "(H, 4H)", why)
    _check_shape("bias", bias, (4 * hidden,), "(4H,)", why)
    W = reorder_gates(kernel.T, "keras", "onnx", axis=0)  # (4H, in)
    R = reorder_gates(recurrent_kernel.T, "keras", "onnx", axis=0)  # (4H, H)
    B = np.concatenate([reorder_gates(bias, "keras", "onnx", axis=0), np.zeros_like(bias)])
    return W, R, B  # B: (8H,)


def layer_prefix(side: str, layer: int, direction: str = "forward") -> str:
    """The canonical name prefix of one LSTM layer, e.g. "encoder.layers.0.forward".

    Args:
        side: "encoder" or "decoder".
        layer: the layer index k, from 0 at the bottom.
        direction: "forward" or "backward" ("backward" exists only in a bidirectional
            encoder; the decoder is one-directional).
    """
    if side not in _SIDES:
        raise ValueError(f"side must be 'encoder' or 'decoder'; got {side!r}")
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or layer < 0:
        raise ValueError(f"layer must be a non-negative integer; got {layer!r}")
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be 'forward' or 'backward'; got {direction!r}")
    if side == "decoder" and direction == "backward":
        raise ValueError("the decoder is one-directional: it has no 'backward' layers")
    return f"{side}.layers.{int(layer)}.{direction}"


def split_gates(
    prefix: str,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias_ih: np.ndarray,
    bias_hh: np.ndarray,
) -> dict[str, np.ndarray]:
    """One layer's stacked PyTorch-layout arrays to its 16 canonical entries.

    Args:
        prefix: the layer's name prefix, from ``layer_prefix``.
        weight_ih: (4H, in), gates stacked i, f, g, o.
        weight_hh: (4H, H).
        bias_ih: (4H,).
        bias_hh: (4H,).

    Returns:
        {f"{prefix}.{gate}.{piece}": array} for gate in i, f, g, o and piece in
        W_ih (H, in), W_hh (H, H), b_ih (H,), b_hh (H,), in that order; float32 copies.
    """
    stacked = {
        "W_ih": np.asarray(weight_ih),  # (4H, in)
        "W_hh": np.asarray(weight_hh),  # (4H, H)
        "b_ih": np.asarray(bias_ih),  # (4H,)
        "b_hh": np.asarray(bias_hh),  # (4H,)
    }
    hidden = _hidden_size("weight_ih", stacked["W_ih"], 0, "(4H, in)")
    why = f"H = weight_ih.shape[0] // 4 = {hidden}"
    _check_shape("weight_hh", stacked["W_hh"], (4 * hidden, hidden), "(4H, H)", why)
    _check_shape("bias_ih", stacked["b_ih"], (4 * hidden,), "(4H,)", why)
    _check_shape("bias_hh", stacked["b_hh"], (4 * hidden,), "(4H,)", why)
    weights = {}
    for index, gate in enumerate(_GATES):
        rows = slice(index * hidden, (index + 1) * hidden)  # this gate's block of H rows
        for piece in _PIECES:
            weights[f"{prefix}.{gate}.{piece}"] = np.array(stacked[piece][rows], np.float32)
    return weights


def join_gates(
    weights: Mapping[str, np.ndarray], prefix: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One layer's 16 canonical entries to stacked PyTorch-layout arrays (the inverse of split).

    Args:
        weights: a canonical dict holding at least the layer's 16 entries.
        prefix: the layer's name prefix, from ``layer_prefix``.

    Returns:
        (weight_ih (4H, in), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,)), float32,
        gates stacked i, f, g, o.
    """
    stacked = []
    for piece in _PIECES:
        blocks = []
        for gate in _GATES:
            name = f"{prefix}.{gate}.{piece}"
            if name not in weights:
                raise ValueError(f"weights has no entry {name!r}")
            blocks.append(np.asarray(weights[name], np.float32))
            if blocks[-1].shape != blocks[0].shape:
                raise ValueError(
                    f"{name} has shape {blocks[-1].shape}; expected {blocks[0].shape} "
                    f"like {prefix}.i.{piece}"
                )
        stacked.append(np.concatenate(blocks, axis=0))
    weight_ih, weight_hh, bias_ih, bias_hh = stacked
    return weight_ih, weight_hh, bias_ih, bias_hh


def _lstm_layers(config: Seq2SeqConfig, side: str) -> list[tuple[str, int, int]]:
    """(prefix, H, in) of every LSTM layer of one side, in canonical order."""
    width = config.decoder_hidden_size  # D*H: what a layer above the first reads
    hidden = config.hidden_size if side == "encoder" else width
    directions = _DIRECTIONS[: config.num_directions] if side == "encoder" else ("forward",)
    layers = []
    for k in range(config.num_layers):
        inputs = config.embedding_dim if k == 0 else width  # layer k reads layer k-1's outputs
        for direction in directions:
            layers.append((layer_prefix(side, k, direction), hidden, inputs))
    return layers


def canonical_shapes(config: Seq2SeqConfig) -> dict[str, tuple[int, ...]]:
    """Every canonical name of ``config``'s model with its shape, in canonical order.

    The order: encoder.embedding; encoder layers k = 0.. (forward, then backward),
    each gate i, f, g, o with W_ih, W_hh, b_ih, b_hh; decoder.embedding; decoder
    layers likewise (forward only); decoder.output.W; decoder.output.b.

    Args:
        config: the model's sizes.

    Returns:
        {name: shape}.
    """
    shapes = {}
    vocab_sizes = {"encoder": config.src_vocab_size, "decoder": config.tgt_vocab_size}
    for side, vocab_size in vocab_sizes.items():
        shapes[f"{side}.embedding"] = (vocab_size, config.embedding_dim)
        for prefix, hidden, inputs in _lstm_layers(config, side):
            piece_shapes = ((hidden, inputs), (hidden, hidden), (hidden,), (hidden,))
            for gate in _GATES:
                for piece, shape in zip(_PIECES, piece_shapes, strict=True):
                    shapes[f"{prefix}.{gate}.{piece}"] = shape
    shapes["decoder.output.W"] = (config.tgt_vocab_size, config.decoder_hidden_size)
    shapes["decoder.output.b"] = (config.tgt_vocab_size,)
    return shapes


def _some(names: list[str], limit: int = 5) -> str:
    """The first ``limit`` names, and how many more there are."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


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
        )
    checked = {}
    for name, shape in shapes.items():
        value = np.asarray(weights[name])
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

    Args:
        config: the model's sizes.
        seed: seed of ``numpy.random.default_rng``.
        scale: half-width of the uniform range of LSTM and output weights and biases.

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
        weights[name] = value.astype(np.float32)
    return weights


def count_parameters(weights: Mapping[str, np.ndarray]) -> int:
    """The number of scalars in a canonical dict."""
    return sum(int(np.size(value)) for value in weights.values())
