"""The training state a checkpoint may hold: where a run stopped, and its optimizer's state.

    state = TrainingState(epochs_done=2, seed=0, batch_size=64, optimizer=OptimizerState(
        optimizer_settings("adam", lr=1e-2), step=120, slots={"m": {...}, "v": {...}}))
    save_checkpoint(path, weights, config, src_tok, tgt_tok, training=state)
    load_checkpoint(path).training          # None for a checkpoint of weights only

The optimizer state is neutral, like the weights.  Each slot (Adam's first moment
m and second moment v) holds one float32 array per canonical weight, with the
weight's shape, stored as the tensor ``optimizer.m.<canonical name>``; the
settings and the step count are JSON in the metadata key "training".  Both
frameworks keep the same m and v (running averages of g and g², before any bias
correction), so moving them is a renaming, done by each engine's weights
converter; what differs between the frameworks' Adam is the update they compute
from them, and both engines here compute one (docs/training.md).

An LSTM trains one bias per gate in both frameworks (Keras has one; torch_impl
freezes bias_hh), held under b_ih: the slots of its b_hh are zeros, and a file
whose b_hh slots are not is refused (Keras would add them to b_ih's, PyTorch would
drop them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np

from shared.core.checks import check_count, check_positive_number, check_seed, is_integer, is_real
from shared.core.config import Seq2SeqConfig
from shared.layout import canonical_shapes, check_weights

OPTIMIZERS = ("adam", "sgd")
# Each optimizer's slots: the arrays it keeps per weight.  SGD without momentum keeps none.
SLOTS = {"adam": ("m", "v"), "sgd": ()}
MAX_SLOTS = max(len(slots) for slots in SLOTS.values())
# Adam's defaults, the same in Keras, PyTorch and the paper; epsilon as PyTorch and the
# paper place it (after the bias correction: the update rule both engines use).
ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8
# The file's name of a slot tensor is PREFIX + slot + "." + the canonical name.
PREFIX = "optimizer."
# Step and epoch counts beyond 2**53 are not exact as float64 (PyTorch keeps Adam's step
# as a float): a larger count can only come from a broken or hostile file.
MAX_COUNT = 2**53


@dataclass(frozen=True)
class OptimizerSettings:
    """What an optimizer is, apart from its state; a resumed run must use the same.

    Attributes:
        name: "adam" or "sgd".
        lr: the learning rate.
        epsilon: Adam's epsilon, added to sqrt(v_hat) after the bias correction; None for SGD.
        beta_1: Adam's decay of m; None for SGD.
        beta_2: Adam's decay of v; None for SGD.
        clip_norm: gradients are scaled to this global norm when theirs is larger; None: never.
    """

    name: str
    lr: float
    epsilon: float | None = None
    beta_1: float | None = None
    beta_2: float | None = None
    clip_norm: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def differences(self, other: OptimizerSettings) -> list[tuple[str, object, object]]:
        """(field, this value, the other's) for every field where the two differ."""
        return [(f.name, getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
                if getattr(self, f.name) != getattr(other, f.name)]

    @classmethod
    def from_dict(cls, data: object) -> OptimizerSettings:
        """Settings read back strictly (every key, no other); ValueError names the field."""
        names = [f.name for f in fields(cls)]
        if not isinstance(data, dict) or sorted(data) != sorted(names):
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"optimizer settings must have the keys {names}; got {keys}")
        betas = (data["beta_1"], data["beta_2"])
        if data["name"] == "adam" and not all(is_real(b) and 0 <= b < 1 for b in betas):
            raise ValueError(f"Adam's beta_1 and beta_2 must be numbers in [0, 1); got {betas}")
        settings = optimizer_settings(data["name"], data["lr"], data["epsilon"],
                                      data["clip_norm"], betas)
        if settings != cls(**data):  # an SGD that names Adam's settings, or a bool
            raise ValueError(f"optimizer settings {data} do not fit optimizer {data['name']!r}")
        return settings


def optimizer_settings(
    name: str, lr: float, epsilon: float | None = None, clip_norm: float | None = None,
    betas: tuple[float, float] = ADAM_BETAS,
) -> OptimizerSettings:
    """Checked settings: Adam's epsilon defaults to ``ADAM_EPSILON``; SGD has no epsilon.

    Raises:
        ValueError: "optimizer must be one of adam, sgd; got 'adamw'", "lr must be a
            positive finite number; got 0.0" and the like.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    lr = check_positive_number(lr, "lr")
    if clip_norm is not None:
        clip_norm = check_positive_number(clip_norm, "clip_norm")
    if name == "sgd":
        return OptimizerSettings(name, lr, clip_norm=clip_norm)
    epsilon = ADAM_EPSILON if epsilon is None else check_positive_number(epsilon, "adam_epsilon")
    beta_1, beta_2 = (float(b) for b in betas)
    return OptimizerSettings(name, lr, epsilon, beta_1, beta_2, clip_norm)


@dataclass(frozen=True, eq=False)
class OptimizerState:
    """An optimizer's settings and state, framework-free.

    Attributes:
        settings: the optimizer (``OptimizerSettings``).
        step: the updates taken so far: Adam's t, which its bias correction reads.
        slots: {slot: {canonical name: float32 array shaped like that weight}}, one
            entry per slot of ``SLOTS[settings.name]`` (Adam: "m", "v"; SGD: none).
    """

    settings: OptimizerSettings
    step: int
    slots: Mapping[str, Mapping[str, np.ndarray]]


@dataclass(frozen=True, eq=False)
class TrainingState:
    """Where a run stopped: what ``train --resume`` continues from.

    Attributes:
        epochs_done: epochs trained; a resumed run's first epoch is this one (0-based)
            and shuffles its batches as that epoch of an uninterrupted run would.
        seed: the run's seed (the data split, the shuffles, the dropout).
        batch_size: the pairs per step.
        optimizer: the optimizer's settings and state after the last step.
    """

    epochs_done: int
    seed: int
    batch_size: int
    optimizer: OptimizerState


def frozen_weights(config: Seq2SeqConfig) -> list[str]:
    """The canonical weights that neither engine trains: an LSTM's b_hh (only b_ih + b_hh acts)."""
    if config.cell != "lstm":
        return []
    return [name for name in canonical_shapes(config) if name.endswith(".b_hh")]


def check_optimizer_state(state: OptimizerState, config: Seq2SeqConfig) -> OptimizerState:
    """The state checked against ``config``, with float32 copies of its slots in canonical order.

    Raises:
        ValueError: naming the slot and the weight: a missing or extra slot, a name or
            shape that is not the config's, a value that is not finite, a negative v, an
            LSTM's b_hh slot that is not zero.
    """
    if not isinstance(state, OptimizerState):
        raise ValueError(f"optimizer_state must be an OptimizerState; got {type(state).__name__}")
    settings = state.settings
    step = check_count(state.step, "the optimizer's step", 0, MAX_COUNT)
    expected = SLOTS[settings.name]
    if sorted(state.slots) != sorted(expected):
        raise ValueError(f"{settings.name} keeps the slots {list(expected)}; the optimizer state "
                         f"has {sorted(state.slots)}")
    slots = {}
    for slot in expected:
        try:
            slots[slot] = check_weights(state.slots[slot], config)
        except ValueError as error:
            raise ValueError(f"optimizer slot {slot!r}: {error}") from None
    if "v" in slots:
        for name, value in slots["v"].items():
            if (value < 0).any():
                raise ValueError(f"optimizer slot 'v' of {name!r} holds negative values; v is an "
                                 "average of squared gradients")
    for slot, name in ((s, n) for s in slots for n in frozen_weights(config)):
        if np.any(slots[slot][name]):
            raise ValueError(f"optimizer slot {slot!r} of {name!r} is not zero; an LSTM trains "
                             "one bias per gate, whose state is b_ih's")
    return OptimizerState(settings, step, slots)


def check_training_state(state: TrainingState, config: Seq2SeqConfig) -> TrainingState:
    """The whole training state checked against ``config`` (see ``check_optimizer_state``)."""
    if not isinstance(state, TrainingState):
        raise ValueError(f"training must be a TrainingState; got {type(state).__name__}")
    return TrainingState(
        check_count(state.epochs_done, "epochs_done", 0, MAX_COUNT), check_seed(state.seed),
        check_count(state.batch_size, "batch_size"), check_optimizer_state(state.optimizer, config),
    )


def training_tensors(state: TrainingState) -> dict[str, np.ndarray]:
    """The slot tensors as the file names them: ``optimizer.m.encoder.embedding``, ..."""
    return {f"{PREFIX}{slot}.{name}": value
            for slot, arrays in state.optimizer.slots.items() for name, value in arrays.items()}


def training_metadata(state: TrainingState) -> str:
    """The metadata value "training": everything but the slots, as JSON text."""
    optimizer = state.optimizer
    return json.dumps({"epochs_done": state.epochs_done, "seed": state.seed,
                       "batch_size": state.batch_size, "step": optimizer.step,
                       "optimizer": optimizer.settings.to_dict()})


_KEYS = ("batch_size", "epochs_done", "optimizer", "seed", "step")


def read_training_state(
    data: object, tensors: Mapping[str, np.ndarray], config: Seq2SeqConfig
) -> TrainingState:
    """The training state from the parsed metadata value and the file's slot tensors.

    Args:
        data: the "training" metadata, parsed (strict JSON).
        tensors: the tensors whose names start with ``PREFIX``.
        config: the checkpoint's config.

    Raises:
        ValueError: a missing or unknown key, a value of the wrong kind, a slot tensor
            missing, extra or not fitting its weight; the message names it.
    """
    if not isinstance(data, dict) or sorted(data) != list(_KEYS):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"metadata 'training' must have the keys {list(_KEYS)}; got {keys}")
    for key in ("epochs_done", "step", "seed", "batch_size"):
        if not is_integer(data[key]):  # check_count would say "got 2.0 (float)" too
            raise ValueError(f"metadata 'training' {key} must be an integer; got {data[key]!r}")
    settings = OptimizerSettings.from_dict(data["optimizer"])
    slots: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in SLOTS[settings.name]}
    for file_name, value in tensors.items():
        slot, _, name = file_name[len(PREFIX):].partition(".")
        if slot not in slots:
            raise ValueError(f"tensor {file_name!r} is not a slot of {settings.name} "
                             f"({', '.join(SLOTS[settings.name]) or 'none'})")
        slots[slot][name] = value
    optimizer = OptimizerState(settings, data["step"], slots)
    return check_training_state(
        TrainingState(data["epochs_done"], data["seed"], data["batch_size"], optimizer), config)
