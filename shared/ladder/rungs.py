"""The parity ladder, written once: one engine climbs every rung against the float64 reference.

An engine (``keras_impl``, ``torch_impl``, ``onnx_impl``, ...) and a model holding
canonical weights are given the same inputs as the NumPy reference, and every
quantity a user relies on is compared, from the smallest to the whole model:

    hand-off     encode(src): every part (h, c or h) of every layer
    memory       encode(src, return_memory=True): the encoder outputs an attending
                 decoder reads and the source mask (attending models)
    logits       decode(tgt_in, reference hand-off, reference memory), real positions:
                 decoded from the reference's hand-off so the logits compare alone
    final state  the decoder's final state from the same call, every part and layer
    attention    attention_weights(src, tgt_in), real positions (attending models)
    greedy       greedy_decode(src, max_len): rows whose tokens differ
    beam         beam_decode(src, K, max_len): rows whose tokens differ

``run_reference`` computes the reference's side once (``Reference``); ``climb`` runs
one engine and returns its rows.  The same two halves serve every table:
``engine_outputs`` computes an engine's side (in this process or in another, whose
arrays cross back), and ``compare_outputs`` compares two sides, the reference's or
another engine's, so a pair of engines is compared by the very same rungs.

    reference = run_reference(weights, config, src)
    rows = climb(torch_impl, model, reference)        # [Row(engine="torch", ...), ...]

This module imports no engine: engines are passed in.

Shapes: B batch, S source length, T target length, L layers, H_dec decoder hidden,
V_tgt target vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from shared import reference as numpy_reference
from shared.core.compare import LOGITS_ATOL, STATE_ATOL, compare, sci
from shared.core.config import Seq2SeqConfig
from shared.core.tokens import BOS, EOS, PAD
from shared.decoding.memory import Memory

RUNGS = ("hand-off", "memory", "logits", "final state", "attention", "greedy", "beam")
# Token rungs count the rows that differ: one token off is a different answer.
TOKEN_RUNGS = ("greedy", "beam")
TOLERANCES = {"hand-off": STATE_ATOL, "memory": STATE_ATOL, "logits": LOGITS_ATOL,
              "final state": STATE_ATOL, "attention": STATE_ATOL, "greedy": 0, "beam": 0}
BEAM_SIZE = 3

# What one side computed: rung -> tensor name -> array (a hand-off part is (L, B, H_dec)).
Outputs = dict[str, dict[str, np.ndarray]]


@dataclass(frozen=True)
class Row:
    """One tensor of one rung, compared: a line of every parity table.

    Attributes:
        engine: who was compared, e.g. "torch" (against the reference) or
            "keras/jax vs torch" (two engines).
        rung: one of ``RUNGS``.
        tensor: which tensor of the rung, e.g. "h layer 0", "outputs", "tokens".
        max_abs_diff: the largest |difference|; for a token rung, the rows that differ.
        atol: the tolerance (0 for tokens: they must be equal).
        ok: max_abs_diff <= atol (False for a NaN).
        where: the index of the largest difference; for tokens, the first row that
            differs; () when nothing differs or nothing was compared.
        actual, expected: the two values at ``where`` (None for tokens).
        rows: for a token rung, the rows compared; None otherwise.
    """

    engine: str
    rung: str
    tensor: str
    max_abs_diff: float
    atol: float
    ok: bool
    where: tuple[int, ...] = ()
    actual: float | None = None
    expected: float | None = None
    rows: int | None = None

    @property
    def name(self) -> str:
        """The rung and the tensor in words: "hand-off h layer 0", "logits", "beam tokens"."""
        return self.rung if self.tensor == self.rung else f"{self.rung} {self.tensor}"

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAIL"
        if self.rows is not None:
            first = f", the first row {self.where[0]}" if self.where else ""
            return (f"{self.engine}: {self.name}: {int(self.max_abs_diff)} of {self.rows} rows "
                    f"differ{first}  {verdict}")
        relation = "<=" if self.ok else ">"
        values = "" if self.ok else f"; actual {self.actual!r}, expected {self.expected!r}"
        return (f"{self.engine}: {self.name}: max |diff| {sci(self.max_abs_diff)} at {self.where} "
                f"{relation} atol {sci(self.atol)}  {verdict}{values}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``Row(**row.to_dict())`` gives it back)."""
        return asdict(self)


@dataclass(frozen=True)
class Inputs:
    """What every side is given: the same questions, decoder input, hand-off and search sizes.

    Attributes:
        src: int64 (B, S) questions, post-padded.
        tgt_in: int64 (B, T) teacher-forced decoder input, BOS first.
        state: the reference's hand-off, (h, c) or (h,), each float64 (L, B, H_dec):
            every decoder starts from it for the logits and final state rungs.
        memory: the reference's ``Memory`` (empty, (B, S, 0), without attention).
        max_len: tokens generated per row by greedy and beam search.
        beam_size: K for the beam rung.
    """

    src: np.ndarray
    tgt_in: np.ndarray
    state: tuple[np.ndarray, ...]
    memory: Memory
    max_len: int
    beam_size: int = BEAM_SIZE

    def to_dict(self) -> dict[str, Any]:
        """NumPy arrays and numbers, for another process (``shared.app.elsewhere``)."""
        return {"src": self.src, "tgt_in": self.tgt_in, "state": list(self.state),
                "memory": list(self.memory), "max_len": self.max_len,
                "beam_size": self.beam_size}

    @classmethod
    def from_dict(cls, given: Mapping[str, Any]) -> Inputs:
        return cls(given["src"], given["tgt_in"], tuple(given["state"]),
                   Memory(*given["memory"]), int(given["max_len"]), int(given["beam_size"]))


@dataclass(frozen=True)
class Reference:
    """The reference's side of the ladder: the inputs every engine gets and what it computed."""

    config: Seq2SeqConfig
    inputs: Inputs
    outputs: Outputs


class ReferenceModel(NamedTuple):
    """The reference's "model": canonical weights and their config."""

    weights: Mapping[str, np.ndarray]
    config: Seq2SeqConfig


class _NumpyReference:
    """``shared.reference`` behind an engine's API, so one ``engine_outputs`` runs both sides."""

    NAME = "reference"

    @staticmethod
    def encode(model: ReferenceModel, src, return_memory=False, initial_state=None):
        return numpy_reference.encode(model.weights, model.config, src, return_memory,
                                      initial_state)

    @staticmethod
    def decode(model: ReferenceModel, tgt_in, state, memory=None):
        return numpy_reference.decode(model.weights, model.config, tgt_in, state, memory)

    @staticmethod
    def attention_weights(model: ReferenceModel, src, tgt_in):
        return numpy_reference.attention_weights(model.weights, model.config, src, tgt_in)

    @staticmethod
    def greedy_decode(model: ReferenceModel, src, max_len):
        return numpy_reference.greedy_decode(model.weights, model.config, src, max_len)

    @staticmethod
    def beam_decode(model: ReferenceModel, src, beam_size, max_len):
        return numpy_reference.beam_decode(model.weights, model.config, src, beam_size, max_len)


NUMPY_REFERENCE = _NumpyReference()


def engine_name(module) -> str:
    """How tables name an engine: "keras/tensorflow" (Keras and its backend), "torch", "onnx"."""
    backend = getattr(module, "BACKEND", None)
    return module.NAME if backend is None else f"{module.NAME}/{backend}"


def teacher_inputs(tokens: np.ndarray) -> np.ndarray:
    """Decoder input BOS + tokens (up to EOS) from generated tokens (B, T) -> (B, T + 1)."""
    B, T = tokens.shape
    tgt_in = np.full((B, T + 1), PAD, dtype=np.int64)                       # (B, T + 1)
    tgt_in[:, 0] = BOS
    for row in range(B):
        real = tokens[row][(tokens[row] != PAD) & (tokens[row] != EOS)]
        tgt_in[row, 1 : 1 + len(real)] = real
    return tgt_in


def run_reference(
    weights: Mapping[str, np.ndarray], config: Seq2SeqConfig, src: np.ndarray,
    tgt_in: np.ndarray | None = None, max_len: int = 20, beam_size: int = BEAM_SIZE,
    rungs: Sequence[str] = RUNGS,
) -> Reference:
    """The reference's side, computed once for every engine that climbs after it.

    Args:
        weights: canonical dict, the weights every engine's model holds.
        config: their config.
        src: int (B, S) questions, post-padded.
        tgt_in: int (B, T) decoder input; None: BOS + the reference's greedy answers,
            so that the teacher-forced rungs read the steps generation takes.
        max_len, beam_size: the search rungs' sizes.
        rungs: which rungs to compute (``RUNGS``, in order).
    """
    model = ReferenceModel(weights, config)
    src = np.asarray(src, dtype=np.int64)
    encoded = NUMPY_REFERENCE.encode(model, src, return_memory=True)       # (state, Memory)
    greedy = None
    if tgt_in is None:
        greedy = NUMPY_REFERENCE.greedy_decode(model, src, max_len)        # (B, max_len)
        tgt_in = teacher_inputs(greedy)                                     # (B, T + 1)
    inputs = Inputs(src, np.asarray(tgt_in, dtype=np.int64), *encoded, max_len, beam_size)
    outputs = engine_outputs(NUMPY_REFERENCE, model, inputs, rungs, encoded, greedy)
    return Reference(config, inputs, outputs)


def engine_outputs(module, model, inputs: Inputs, rungs: Sequence[str] = RUNGS,
                   encoded=None, greedy: np.ndarray | None = None) -> Outputs:
    """What ``module``'s ``model`` computes on every rung of ``rungs``, in ladder order.

    The memory and attention rungs are left out for a model without attention (its
    memory is empty); a rung needs only the inputs it reads (the logits and final
    state rungs no ``src``).  ``encoded`` ((state, memory) of ``inputs.src``) and
    ``greedy`` (its greedy tokens), when given, were computed already and are not
    computed again (``run_reference`` needs both to make the inputs).
    """
    unknown = [rung for rung in rungs if rung not in RUNGS]
    if unknown:
        raise ValueError(f"rungs must be among {', '.join(RUNGS)}; got {unknown}")
    config = model.config
    wanted = [rung for rung in RUNGS if rung in rungs
              and (rung not in ("memory", "attention") or config.has_attention)]
    parts = config.state_names                                              # ("h", "c") or ("h",)
    out: Outputs = {}
    if {"hand-off", "memory"} & set(wanted):
        if encoded is None:
            encoded = module.encode(model, inputs.src, return_memory=True)
        state, memory = encoded                                             # each (L, B, H_dec)
        out["hand-off"] = dict(zip(parts, state, strict=True))
        out["memory"] = {"outputs": memory.outputs, "mask": memory.mask}   # (B, S, H_dec), (B, S)
    if {"logits", "final state"} & set(wanted):
        logits, final = module.decode(model, inputs.tgt_in, inputs.state, inputs.memory)
        out["logits"] = {"logits": logits}                                  # (B, T, V_tgt)
        out["final state"] = dict(zip(parts, final, strict=True))          # each (L, B, H_dec)
    if "attention" in wanted:
        out["attention"] = {"weights": module.attention_weights(model, inputs.src,
                                                                inputs.tgt_in)}  # (B, T, S)
    if "greedy" in wanted:
        if greedy is None:
            greedy = module.greedy_decode(model, inputs.src, inputs.max_len)  # (B, max_len)
        out["greedy"] = {"tokens": greedy}
    if "beam" in wanted:
        out["beam"] = {"tokens": module.beam_decode(model, inputs.src, inputs.beam_size,
                                                    inputs.max_len)}        # (B, max_len)
    return {rung: out[rung] for rung in wanted}


def compare_outputs(engine: str, got: Outputs, expected: Outputs, tgt_in: np.ndarray) -> list[Row]:
    """Every tensor of every rung in ``got`` against ``expected``'s, as rows named ``engine``.

    The logits and attention weights count at real (non-PAD) steps of ``tgt_in``
    only: at PAD steps they are unspecified.
    """
    real = np.asarray(tgt_in) != PAD                                        # (B, T)
    rows = []
    for rung, tensors in got.items():
        for tensor, value in tensors.items():
            other = expected[rung][tensor]
            if rung in TOKEN_RUNGS:
                rows.append(_token_row(engine, rung, value, other))
            elif rung in ("hand-off", "final state"):                       # (L, B, H_dec)
                rows += [_row(engine, rung, f"{tensor} layer {k}", value[k], other[k])
                         for k in range(len(value))]
            else:
                mask = real if rung in ("logits", "attention") else None
                rows.append(_row(engine, rung, tensor, value, other, mask))
    return rows


def climb(module, model, reference: Reference, rungs: Sequence[str] | None = None,
          engine: str | None = None) -> list[Row]:
    """The parity ladder for one engine: its rows on every rung against the reference.

    Args:
        module: the engine, e.g. ``torch_impl``.
        model: its model, holding the canonical weights the reference was run on.
        reference: from ``run_reference``.
        rungs: a few rungs only; None: every rung the reference computed.
        engine: the name its rows carry; None: ``engine_name(module)``.
    """
    rungs = tuple(reference.outputs) if rungs is None else rungs
    got = engine_outputs(module, model, reference.inputs, rungs)
    return compare_outputs(engine or engine_name(module), got, reference.outputs,
                           reference.inputs.tgt_in)


def _row(engine: str, rung: str, tensor: str, actual, expected, mask=None) -> Row:
    c = compare(f"{engine} {rung} {tensor}", actual, expected, TOLERANCES[rung], mask)
    return Row(engine, rung, tensor, c.max_abs_diff, c.atol, c.ok, c.where, c.actual, c.expected)


def _token_row(engine: str, rung: str, tokens, expected) -> Row:
    tokens, expected = np.asarray(tokens), np.asarray(expected)             # (B, max_len)
    if tokens.shape != expected.shape:
        raise ValueError(f"{engine} {rung} tokens: shape {tokens.shape}, expected "
                         f"{expected.shape}")
    differ = np.any(tokens != expected, axis=1)                             # (B,)
    count = int(differ.sum())
    where = (int(np.argmax(differ)),) if count else ()
    return Row(engine, rung, "tokens", count, 0, count == 0, where, rows=len(differ))
