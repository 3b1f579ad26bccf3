"""Attention written out in NumPy, float64: the reference's attention rung.

The equations (``shared.layout.attention`` has them with the reasons):

    luong      score(h_t, h_s) = h_t^T W_a h_s
    bahdanau   score(h_t, h_s) = v_a^T tanh(W_1 h_t + W_2 h_s)
    a_t = softmax over the real source positions of score(h_t, .)    PAD: weight 0
    c_t = sum_s a_t(s) h_s
    h~_t = tanh(W_c [c_t; h_t])

An all-PAD source row has weights 0 and context 0.

Shape legend: B batch, S source length, T target length, H = H_dec decoder hidden.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from shared.layout.attention import PREFIX


def scores(
    kind: str, weights: Mapping[str, np.ndarray], h_t: np.ndarray, h_s: np.ndarray
) -> np.ndarray:
    """Raw scores (B, T, S) of every decoder output h_t (B, T, H) against every h_s (B, S, H)."""
    W = {name[len(PREFIX) + 1 :]: np.asarray(value, np.float64)
         for name, value in weights.items() if name.startswith(PREFIX + ".")}
    if kind == "luong":
        keys = h_s @ W["W_a"].T  # (B, S, H): W_a h_s
        return h_t @ keys.transpose(0, 2, 1)  # (B, T, S): h_t . (W_a h_s)
    if kind == "bahdanau":
        query = (h_t @ W["W_1"].T)[:, :, None, :]  # (B, T, 1, H): W_1 h_t
        keys = (h_s @ W["W_2"].T)[:, None, :, :]  # (B, 1, S, H): W_2 h_s
        return np.tanh(query + keys) @ W["v_a"]  # (B, T, S)
    raise ValueError(f"attention must be 'luong' or 'bahdanau'; got {kind!r}")


def attend(
    kind: str,
    weights: Mapping[str, np.ndarray],
    h_t: np.ndarray,
    h_s: np.ndarray,
    mask: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The attentional hidden states and the attention weights.

    Args:
        kind: "luong" or "bahdanau".
        weights: canonical dict holding the decoder.attention.* entries.
        h_t: (B, T, H) the top decoder layer's outputs.
        h_s: (B, S, H) the top encoder layer's outputs.
        mask: (B, S) bool, True at real source tokens.

    Returns:
        (h~ (B, T, H), a (B, T, S)), float64; a row of a sums to 1 over its real
        source positions, and is all 0 for an all-PAD source row.
    """
    h_t, h_s = np.asarray(h_t, np.float64), np.asarray(h_s, np.float64)
    mask = np.asarray(mask, bool)
    raw = scores(kind, weights, h_t, h_s)  # (B, T, S)
    raw = np.where(mask[:, None, :], raw, -np.inf)
    empty = ~mask.any(axis=1)  # (B,): nothing to attend to
    raw[empty] = 0.0  # any finite value: these rows are zeroed below
    shifted = np.exp(raw - raw.max(axis=2, keepdims=True))  # (B, T, S), PAD positions 0
    a = shifted / shifted.sum(axis=2, keepdims=True)  # (B, T, S)
    a[empty] = 0.0
    context = a @ h_s  # (B, T, H)
    W_c = np.asarray(weights[f"{PREFIX}.W_c"], np.float64)  # (H, 2H): context columns first
    return np.tanh(np.concatenate([context, h_t], axis=-1) @ W_c.T), a
