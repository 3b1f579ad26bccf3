"""One seed function for every framework, and thread settings that refuse nonsense."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from shared import configure_threads, seed_everything


def _draws():
    import keras
    import torch

    return (
        random.random(),
        float(np.random.rand()),
        float(torch.rand(1)),
        float(keras.random.uniform((1,))[0]),
    )


def test_seed_everything_repeats_every_generator():
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    seed_everything(21)
    first = _draws()
    seed_everything(21)
    assert _draws() == first
    seed_everything(22)
    assert all(a != b for a, b in zip(_draws(), first, strict=True))


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", 2**32])
def test_seed_must_be_an_integer_in_the_seed_range(bad):
    with pytest.raises(ValueError, match=re.escape("seed must be an integer in [0, 4294967295]")):
        seed_everything(bad)


@pytest.mark.parametrize("bad", [0, -2, 1.0, None])
def test_thread_counts_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match="intra_op must be an integer >= 1"):
        configure_threads(bad)


def test_threads_block_restores_torch_threads():
    torch = pytest.importorskip("torch")
    from shared.core.runtime import threads

    before = torch.get_num_threads()
    with threads(intra_op=before + 1, inter_op=2):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


def test_configure_threads_sets_only_the_frameworks_named():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        configure_threads(before + 1, frameworks=("tensorflow",))
        assert torch.get_num_threads() == before, "frameworks=('tensorflow',) changed torch"
        configure_threads(before + 1, frameworks=("torch",))
        assert torch.get_num_threads() == before + 1
    finally:
        torch.set_num_threads(before)
    for bad in ("torch", ("torch", "jax")):
        with pytest.raises(ValueError, match="frameworks must be a tuple of"):
            configure_threads(1, frameworks=bad)
