"""Run one layer in real PyTorch, for ``--check``: the source's own module or the ported one.

Every recurrent run takes and gives PyTorch's conventions, which the check uses
for every engine: x (B, T, in) with real lengths (B,), states (L*D, B, H)
indexed k*D + d, outputs (B, T, D*H) that are zeros at padding.  The batch is
packed (``pack_padded_sequence``) so that each row stops at its last real step.

Shape legend: B batch, T steps, H hidden, L layers, D directions, V vocabulary.
"""

from __future__ import annotations

import numpy as np


def rnn(kind: str, args: tuple, kwargs: dict, state_dict: dict, x: np.ndarray,
        lengths: np.ndarray, h0: np.ndarray, c0: np.ndarray | None):
    """``nn.{kind}(*args, **kwargs)`` holding ``state_dict`` (strict), run on a padded batch.

    Returns:
        (outputs (B, T, D*H), h_n (L*D, B, H), c_n (L*D, B, H) or None for a GRU).
    """
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    module = getattr(torch.nn, kind)(*args, **{**kwargs, "batch_first": True})
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state_dict.items()},
                           strict=True)
    module.eval()
    with torch.no_grad():
        packed = pack_padded_sequence(torch.from_numpy(x), torch.as_tensor(lengths),
                                      batch_first=True, enforce_sorted=False)
        state = torch.from_numpy(h0) if c0 is None else (torch.from_numpy(h0),
                                                         torch.from_numpy(c0))
        outputs, final = module(packed, state)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=x.shape[1])
    if c0 is None:
        return outputs.numpy(), final.numpy(), None
    return outputs.numpy(), final[0].numpy(), final[1].numpy()


def embedding(args: tuple, weight: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``nn.Embedding(*args)`` holding ``weight``: ids (B, T) -> (B, T, E)."""
    import torch

    module = torch.nn.Embedding(*args)
    module.load_state_dict({"weight": torch.from_numpy(weight)}, strict=True)
    with torch.no_grad():
        return module(torch.from_numpy(ids)).numpy()


def linear(args: tuple, kwargs: dict, state_dict: dict, x: np.ndarray) -> np.ndarray:
    """``nn.Linear(*args, **kwargs)`` holding ``state_dict``: x (B, T, in) -> (B, T, out)."""
    import torch

    module = torch.nn.Linear(*args, **kwargs)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict.items()}, strict=True)
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()
