"""The optimizer on PyTorch: one Adam update rule, clipping by the global norm, a neutral state.

Mirror of ``keras_impl/optimizer.py``.  A run moves between the frameworks with
its optimizer's state (``shared.checkpoint.training_state``), so both must
compute one update from it.  Adam, as both engines here compute it (PyTorch's
rule, and Algorithm 1 of Kingma & Ba):

    m = β₁ m + (1 - β₁) g              v = β₂ v + (1 - β₂) g²
    m̂ = m / (1 - β₁ᵗ)                  v̂ = v / (1 - β₂ᵗ)
    w = w - lr · m̂ / (√v̂ + ε)

``torch.optim.Adam`` computes exactly this, so it is used as it is; Keras's own
Adam adds ε before the bias correction, which ``keras_impl.optimizer.Adam``
changes.  Clipping is ``torch.nn.utils.clip_grad_norm_``: every gradient scaled
by clip_norm / (norm + 1e-6) when that is below 1, the norm taken over all of them
together (Keras's ``global_clipnorm`` scales by clip_norm / max(norm, clip_norm):
the 1e-6 is the only difference, a relative 1e-6 / norm).

Slots: PyTorch keeps m and v per parameter in ``optimizer.state[p]`` as
``exp_avg`` and ``exp_avg_sq``, with its own ``step``; ``export_state`` and
``import_state`` rename them to and from canonical names with the weights'
converter (``torch_impl.weights``).  An LSTM's bias_hh is frozen (see
``torch_impl.model``) and has no state: it exports as zeros.
"""

from __future__ import annotations

import torch

from shared.checkpoint.training_state import SLOTS, OptimizerSettings, OptimizerState
from torch_impl.model import Seq2Seq
from torch_impl.weights import from_canonical, to_canonical

# Our slot names and PyTorch's keys in optimizer.state[p].
_SLOT_KEYS = {"m": "exp_avg", "v": "exp_avg_sq"}


def _trainable(model: Seq2Seq) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def build_optimizer(model: Seq2Seq, settings: OptimizerSettings) -> torch.optim.Optimizer:
    """A PyTorch optimizer for ``settings`` on the model's trainable parameters."""
    if settings.name == "sgd":
        return torch.optim.SGD(_trainable(model), lr=settings.lr)
    return torch.optim.Adam(_trainable(model), lr=settings.lr,
                            betas=(settings.beta_1, settings.beta_2), eps=settings.epsilon)


def clip_gradients(model: Seq2Seq, settings: OptimizerSettings) -> None:
    """Scale the gradients to the global norm ``settings.clip_norm`` if theirs is larger."""
    if settings.clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(_trainable(model), settings.clip_norm)


def export_state(model: Seq2Seq, optimizer: torch.optim.Optimizer, settings: OptimizerSettings,
                 step: int) -> OptimizerState:
    """The optimizer's state, keyed by canonical names (an LSTM's b_hh: zeros, untrained)."""
    slots = {}
    for slot in SLOTS[settings.name]:
        key = _SLOT_KEYS[slot]

        def read(p, key=key):
            kept = optimizer.state.get(p, {})
            return kept[key] if key in kept else torch.zeros_like(p)  # no step taken yet

        slots[slot] = to_canonical(model, read=read)
    return OptimizerState(settings, step, slots)


def import_state(model: Seq2Seq, optimizer: torch.optim.Optimizer, state: OptimizerState) -> None:
    """Put a checked neutral state into ``optimizer``, as if it had taken ``state.step`` steps."""
    if not SLOTS[state.settings.name]:
        return  # SGD keeps nothing
    trainable = set(_trainable(model))

    def write(param, value, key):
        if param in trainable:  # a frozen bias_hh has no state (its slots are zeros)
            kept = optimizer.state[param]
            kept["step"] = torch.tensor(float(state.step))
            kept[key] = value.to(param.device).clone()

    for slot, key in _SLOT_KEYS.items():
        from_canonical(model, state.slots[slot], write=lambda p, value, key=key: write(p, value,
                                                                                    key))
