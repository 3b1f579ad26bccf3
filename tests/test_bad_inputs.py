"""The bad-input grid: every wrong input is refused, loudly, in the same words by every engine.

A model handed the wrong thing rarely fails where the mistake is: a float id is
truncated, an id past the vocabulary reads a neighbour's row, a pre-padded row
hands off the state at a PAD, a corrupted file loads different numbers.  Here
each such input goes to every engine (keras_impl on the current Keras backend,
torch_impl, and where installed onnx_impl and the on-device engines, litert_impl and
executorch_impl, running programs exported from the same weights; weights to the
engines that build models from them; the training settings and batches to the two
engines that train), for each cell where the cell changes what is right (the state,
the weights).  Each engine must refuse with the same
exception and the same words as torch_impl, the anchor, so all engines say one
thing, and the words must name the argument.  Files and the command line are in
test_bad_files.py; docs/errors.md lists the messages.

Shape legend: B batch, S source length, T target length, L layers, H_dec decoder hidden.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared import BOS, EOS, PAD, Batch, Seq2SeqConfig, reference
from shared.core.compare import LOGITS_ATOL, STATE_ATOL, assert_close
from shared.layout import random_weights
from shared.training.checks import TrainingDivergedError
from tests.refusal import same_refusal
from tests.support import BUILDERS, ENGINES, TRAINERS, V_SRC, V_TGT, model_with

CONFIG = Seq2SeqConfig(V_SRC, V_TGT, embedding_dim=4, hidden_size=3, num_layers=2,
                       bidirectional=True)
CONFIGS = {"lstm": CONFIG, "gru": Seq2SeqConfig(**{**CONFIG.to_dict(), "cell": "gru"})}
L, H_DEC = CONFIG.num_layers, CONFIG.decoder_hidden_size
SRC = np.array([[5, 6, 7], [4, 0, 0]])                                      # (B, S) = (2, 3)
TGT_IN = np.array([[BOS, 5, 6], [BOS, 0, 0]])                               # (B, T) = (2, 3)
TGT_OUT = np.array([[5, 6, EOS], [EOS, 0, 0]])                              # (B, T) = (2, 3)
STATES = {cell: tuple(np.zeros((L, 2, H_DEC), np.float32) for _ in config.state_names)
          for cell, config in CONFIGS.items()}                              # each (L, B, H_dec)
STATE = STATES["lstm"]
ANCHOR = "torch_impl"  # every engine's words are compared with these


@pytest.fixture(scope="module")
def models():
    """models(cell)[engine] = (module, model): every engine's model of ``cell``, same weights."""
    built: dict = {}

    class Models(dict):
        """Each engine's model made when a test first asks (an on-device one is an export)."""

        def __init__(self, cell: str):
            super().__init__()
            self.cell = cell

        def __missing__(self, name: str):
            config = CONFIGS[self.cell]
            self[name] = model_with(name, config, random_weights(config, seed=2))
            return self[name]

    def of(cell: str) -> dict:
        return built.setdefault(cell, Models(cell))

    return of


def anchored(engine_models: dict, engine: str) -> dict:
    """``engine``'s (module, model) and the anchor's: same_refusal then holds every engine's
    words to the anchor's, so all engines say one thing."""
    return {name: engine_models[name] for name in dict.fromkeys([engine, ANCHOR])}


# ---- ids: every entry point that reads source ids refuses the same bad ones ----

BAD_IDS = {
    "id-out-of-range": (np.array([[5, V_SRC]]), f"id {V_SRC} at row 0, position 1"),
    "id-negative": (np.array([[5, -1]]), "id -1 at row 0, position 1"),
    "float-array": (SRC.astype(np.float64), "must hold integer token ids; got float64"),
    "float-list": ([[5.0, 6.0]], "must hold integer token ids; got float64"),
    "strings": (np.array([["a", "b"]]), "encode text with the tokenizer first"),
    "pre-padded": (np.array([[0, 5, 6]]), "PAD at position 0 before a real token at position 1"),
    "pad-hole": (np.array([[5, 0, 6]]), "PAD at position 1 before a real token at position 2"),
    "rank-1": (np.array([5, 6]), "got shape (2,) (for one sentence use"),
    "rank-3": (np.ones((1, 2, 2), np.int64), "got shape (1, 2, 2)"),
    "rank-0": (np.int64(5), "got shape ()"),
    "ragged-list": ([[5, 6], [4]], "must be post-padded with PAD to one length"),
    "empty-batch": (np.zeros((0, 3), np.int64), "is an empty batch (shape (0, 3))"),
}

SOURCE_READERS = {
    "encode": lambda module, model, src: module.encode(model, src),
    "greedy_decode": lambda module, model, src: module.greedy_decode(model, src, 4),
    "beam_decode": lambda module, model, src: module.beam_decode(model, src, 2, 4),
    "forward": lambda module, model, src: module.forward(model, src, TGT_IN[:1]),
}


@pytest.mark.parametrize("reader", list(SOURCE_READERS))
@pytest.mark.parametrize("bad", list(BAD_IDS))
@pytest.mark.parametrize("engine", ENGINES)
def test_bad_source_ids_are_refused_alike(models, engine, bad, reader):
    src, detail = BAD_IDS[bad]
    read = SOURCE_READERS[reader]
    message = same_refusal(anchored(models("lstm"), engine), lambda m, x: read(m, x, src),
                           holds="src")
    assert detail in message, message


@pytest.mark.parametrize("reader", ["decode", "forward"])
@pytest.mark.parametrize("bad", list(BAD_IDS))
@pytest.mark.parametrize("engine", ENGINES)
def test_bad_decoder_input_ids_are_refused_alike(models, engine, bad, reader):
    tgt_in, detail = BAD_IDS[bad]
    if bad == "id-out-of-range":
        tgt_in, detail = np.array([[BOS, V_TGT]]), f"id {V_TGT} at row 0, position 1"
    state = tuple(part[:, :1] for part in STATE)                            # one row
    calls = {"decode": lambda module, model: module.decode(model, tgt_in, state),
             "forward": lambda module, model: module.forward(model, SRC[:1], tgt_in)}
    message = same_refusal(anchored(models("lstm"), engine), calls[reader], holds="tgt_in")
    assert detail in message, message


@pytest.mark.parametrize("engine", ENGINES)
def test_forward_refuses_batches_of_different_sizes(models, engine):
    message = same_refusal(anchored(models("lstm"), engine),
                           lambda module, model: module.forward(model, SRC, TGT_IN[:1]),
                           holds="src has 2 rows but tgt_in has 1")
    assert "row b of tgt_in must be the answer to row b of src" in message


@pytest.mark.parametrize("cell", list(CONFIGS))
@pytest.mark.parametrize("engine", ENGINES)
def test_odd_but_valid_inputs_get_the_reference_answer(models, engine, cell):
    """Empty rows, no columns at all and an integer state have one right answer: the reference's."""
    config, (module, model) = CONFIGS[cell], models(cell)[engine]
    weights = random_weights(config, seed=2)
    src = np.array([[5, 6, 7], [0, 0, 0]])                                 # an all-PAD row
    tgt_in = np.array([[BOS, 5, 6], [0, 0, 0]])                            # one takes no step
    state = (np.ones((L, 2, H_DEC), np.int64), np.zeros((L, 2, H_DEC), np.int64))[
        : len(config.state_names)]
    name = f"{engine} {cell}"
    for part, value, expected in zip(config.state_names, module.encode(model, src),
                                     reference.encode(weights, config, src), strict=True):
        assert_close(f"{name} hand-off {part}", value, expected, STATE_ATOL)
        assert not value[:, 1].any(), f"{name}: the all-PAD row hands off {part} != 0"
    for part, value in zip(config.state_names, module.encode(model, np.zeros((2, 0), np.int64)),
                           strict=True):
        np.testing.assert_array_equal(value, np.zeros((L, 2, H_DEC)), err_msg=f"{name} {part}")
    logits, end = module.decode(model, tgt_in, state)
    logits_ref, end_ref = reference.decode(weights, config, tgt_in, state)
    assert_close(f"{name} logits", logits, logits_ref, LOGITS_ATOL, mask=tgt_in != PAD)
    for part, value, expected in zip(config.state_names, end, end_ref, strict=True):
        assert_close(f"{name} final {part}", value, expected, STATE_ATOL)
    np.testing.assert_array_equal(end[0][:, 1], state[0][:, 1], err_msg=f"{name} kept h")
    logits, end = module.decode(model, np.zeros((2, 0), np.int64), state)
    assert logits.shape == (2, 0, V_TGT) and logits.dtype == np.float32
    for part, value, given in zip(config.state_names, end, state, strict=True):
        np.testing.assert_array_equal(value, given, err_msg=f"{name} {part} with no step")


# ---- lengths and beam sizes ----

BAD_COUNTS = {"zero": 0, "negative": -3, "float": 2.5, "bool": True, "none": None, "str": "3"}
COUNTED = {
    "max_len-greedy": lambda value: lambda module, model: module.greedy_decode(model, SRC, value),
    "max_len-beam": lambda value: lambda module, model: module.beam_decode(model, SRC, 2, value),
    "beam_size": lambda value: lambda module, model: module.beam_decode(model, SRC, value, 4),
}


@pytest.mark.parametrize("bad", list(BAD_COUNTS))
@pytest.mark.parametrize("argument", list(COUNTED))
@pytest.mark.parametrize("engine", ENGINES)
def test_max_len_and_beam_size_below_one_are_refused_alike(models, engine, argument, bad):
    name = argument.split("-")[0]
    message = same_refusal(anchored(models("lstm"), engine), COUNTED[argument](BAD_COUNTS[bad]),
                           holds=f"{name} must be an integer >= 1; got")
    assert message.startswith(name)


# ---- decoder states: (h, c) for an LSTM, (h,) for a GRU ----

def bad_states(cell: str) -> dict:
    """{case: (state, words)}: each a wrong state for a model of ``cell``."""
    good, parts = STATES[cell], CONFIGS[cell].state_names
    nan_last, inf_h = good[-1].copy(), good[0].copy()
    nan_last[1, 0, 2], inf_h[0, 1, 0] = np.nan, np.inf

    def each(*shape):
        return tuple(np.zeros(shape) for _ in parts)

    cases = {
        "wrong-hidden": (each(L, 2, H_DEC + 1), f"has shape (2, 2, {H_DEC + 1})"),
        "wrong-layers": (each(1, 2, H_DEC), f"has shape (1, 2, {H_DEC})"),
        "wrong-batch": (each(L, 3, H_DEC), f"expected (2, 2, {H_DEC})"),
        "no-layer-axis": (each(2, H_DEC), f"has shape (2, {H_DEC})"),
        "one-part-too-many": ((*good, good[0]), f"got tuple of length {len(parts) + 1}"),
        "a-dict": (dict(zip(parts, good, strict=True)), "got dict"),
        "strings": (parts, "must hold real numbers; got strings"),
        "nones": ((None,) * len(parts), "must hold real numbers; got object"),
        "complex": ((good[0].astype(np.complex64), *good[1:]),
                    "must hold real numbers; got complex64"),
        f"nan-{parts[-1]}": ((*good[:-1], nan_last),
                             f"state {parts[-1]} has a non-finite value nan at (1, 0, 2)"),
        "inf-h": ((inf_h, *good[1:]), "state h has a non-finite value inf at (0, 1, 0)"),
        "float64-overflow": ((np.full((L, 2, H_DEC), 1e300), *good[1:]), "non-finite value inf"),
    }
    if cell == "lstm":
        cases["only-h"] = (good[0], "must be a pair (h, c)")
    else:
        cases["an-lstm-state"] = (STATE, "must be a 1-tuple (h,): a GRU's whole state is its "
                                         "hidden state h")
        cases["a-bare-array"] = (good[0], "got ndarray; wrap it as (h,)")
    return cases


BAD_STATES = [(cell, bad) for cell in CONFIGS for bad in bad_states(cell)]


@pytest.mark.parametrize(("cell", "bad"), BAD_STATES, ids=[f"{c}-{b}" for c, b in BAD_STATES])
@pytest.mark.parametrize("engine", ENGINES)
def test_bad_decoder_states_are_refused_alike(models, engine, cell, bad):
    state, detail = bad_states(cell)[bad]
    message = same_refusal(anchored(models(cell), engine),
                           lambda module, model: module.decode(model, TGT_IN, state),
                           holds="state")
    assert detail in message, message


@pytest.mark.parametrize("cell", list(CONFIGS))
@pytest.mark.parametrize("engine", BUILDERS)
def test_weights_of_the_other_cell_are_refused_alike(models, engine, cell):
    other = "gru" if cell == "lstm" else "lstm"
    message = same_refusal(
        anchored(models(cell), engine),
        lambda module, model: module.import_weights(model, random_weights(CONFIGS[other])),
        holds="weights do not have this config's canonical names")
    gates = {"lstm": "i, f, g, o", "gru": "r, z, n"}[other]
    assert message.endswith(f"these are the names of the same model with cell='{other}' "
                            f"(gates {gates}), but config.cell is '{cell}'"), message


# ---- weights: refused whole, and a refusal leaves the model as it was ----

def _edited(name, value):
    def edit(weights):
        weights[name] = value
        return weights
    return edit


def _without(name):
    def edit(weights):
        del weights[name]
        return weights
    return edit


def _nan_in(name, index):
    def edit(weights):
        weights[name] = weights[name].copy()
        weights[name][index] = np.nan
        return weights
    return edit


_OTHER = Seq2SeqConfig(V_SRC, V_TGT, embedding_dim=4, hidden_size=3, num_layers=1)
BAD_WEIGHTS = {
    "another-config": (lambda w: random_weights(_OTHER), ValueError,
                       "weights do not have this config's canonical names; 64 missing"),
    "missing": (_without("decoder.output.b"), ValueError, "1 missing: decoder.output.b"),
    "unexpected": (_edited("decoder.output.bias", np.zeros(V_TGT)), ValueError,
                   "1 unexpected: 'decoder.output.bias'"),
    "wrong-shape": (_edited("encoder.layers.1.backward.g.W_ih", np.zeros((3, 4))), ValueError,
                    "encoder.layers.1.backward.g.W_ih has shape (3, 4); expected (3, 6)"),
    "transposed": (lambda w: _edited("decoder.output.W", w["decoder.output.W"].T)(w),
                   ValueError, f"decoder.output.W has shape ({H_DEC}, {V_TGT})"),
    "nan-first": (_nan_in("encoder.embedding", (3, 1)), ValueError,
                  "encoder.embedding holds NaN/inf (1 of"),
    "nan-last": (_nan_in("decoder.output.b", 4), ValueError, "decoder.output.b holds NaN/inf"),
    "float64-overflow": (_edited("decoder.output.b", np.full(V_TGT, 1e39)), ValueError,
                         "decoder.output.b holds values beyond float32's range"),
    "strings": (_edited("decoder.embedding", np.full((V_TGT, 4), "x")), ValueError,
                "decoder.embedding must hold real numbers"),
    "a-list": (lambda w: list(w.values()), TypeError,
               "weights must be a mapping of canonical names to arrays; got list"),
}


@pytest.mark.parametrize("bad", list(BAD_WEIGHTS))
@pytest.mark.parametrize("engine", BUILDERS)
def test_bad_weights_are_refused_alike(models, engine, bad):
    edit, kind, detail = BAD_WEIGHTS[bad]

    def call(module, model):
        return module.import_weights(model, edit(dict(random_weights(CONFIG, seed=9))))

    message = same_refusal(anchored(models("lstm"), engine), call, kind, holds=detail)
    assert message.startswith(("weights", "encoder.", "decoder.")), message


@pytest.mark.parametrize("bad", list(BAD_WEIGHTS))
@pytest.mark.parametrize("engine", BUILDERS)
def test_a_refused_import_leaves_the_model_unchanged(models, engine, bad):
    module, model = models("lstm")[engine]
    edit, kind, _ = BAD_WEIGHTS[bad]
    before = module.export_weights(model)
    with pytest.raises(kind):
        module.import_weights(model, edit(dict(random_weights(CONFIG, seed=9))))
    after = module.export_weights(model)
    assert list(after) == list(before)
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=f"{engine} {key} changed")


@pytest.mark.parametrize("engine", BUILDERS)
def test_build_model_refuses_a_config_dict(models, engine):
    same_refusal(anchored(models("lstm"), engine),
                 lambda module, model: module.build_model(CONFIG.to_dict()), TypeError,
                 holds="config must be a shared.Seq2SeqConfig; got dict")


@pytest.mark.parametrize("engine", BUILDERS)
def test_build_model_refuses_a_seed_out_of_range(models, engine):
    same_refusal(anchored(models("lstm"), engine),
                 lambda module, model: module.build_model(CONFIG, seed=2**32),
                 holds="seed must be an integer in [0, 4294967295]; got 4294967296")


# ---- grad-tracking tensors: read through NumPy, refused with the fix ----

def _needs_grad(array):
    torch = pytest.importorskip("torch")
    return torch.tensor(np.asarray(array, np.float32), requires_grad=True)


TENSOR_REFUSAL = ("is a tensor that NumPy cannot read (Can't call numpy() on Tensor that requires "
                  "grad. Use tensor.detach().numpy() instead.); give a NumPy array, e.g. "
                  "tensor.detach().cpu().numpy()")
GRAD_TENSOR_CALLS = {
    "src": lambda module, model: module.encode(model, _needs_grad(SRC)),
    "state h": lambda module, model: module.decode(model, TGT_IN, (_needs_grad(STATE[0]),
                                                                   STATE[1])),
    "decoder.output.b": lambda module, model: module.import_weights(
        model, {**random_weights(CONFIG, seed=9), "decoder.output.b": _needs_grad(np.ones(V_TGT))}),
}


@pytest.mark.parametrize(("engine", "argument"), [
    (engine, argument) for engine in ENGINES for argument in GRAD_TENSOR_CALLS
    if engine in BUILDERS or argument in ("src", "state h")])  # weights go to the builders
def test_a_tensor_that_requires_grad_is_refused_alike(models, engine, argument):
    """Every engine reads inputs through NumPy: the same ValueError, with the fix, not torch's
    RuntimeError."""
    message = same_refusal(anchored(models("lstm"), engine), GRAD_TENSOR_CALLS[argument],
                           holds=argument)
    assert message == f"{argument} {TENSOR_REFUSAL}", message


# ---- training: settings and batches, for the engines that train ----

BAD_TRAINING = {
    "epochs-zero": ({"epochs": 0}, "epochs must be an integer >= 1; got 0"),
    "optimizer": ({"optimizer": "adamw"}, "optimizer must be one of adam, sgd; got 'adamw'"),
    "lr-zero": ({"lr": 0.0}, "lr must be a positive finite number; got 0.0"),
    "lr-inf": ({"lr": float("inf")}, "lr must be a positive finite number; got inf"),
    "lr-nan": ({"lr": float("nan")}, "lr must be a positive finite number; got nan"),
    "adam_epsilon-inf": ({"adam_epsilon": float("inf")}, "adam_epsilon must be a positive"),
    "seed-negative": ({"seed": -1}, "seed must be an integer in [0, 4294967295]; got -1"),
    "seed-too-big": ({"seed": 2**64},
                     "seed must be an integer in [0, 4294967295]; got 18446744073709551616"),
    "epochs-float": ({"epochs": 1.0}, "epochs must be an integer >= 1; got 1.0"),
    "data_parallel-zero": ({"data_parallel": 0}, "data_parallel must be an integer >= 1; got 0"),
    "data_parallel-float": ({"data_parallel": 1.5},
                            "data_parallel must be an integer >= 1; got 1.5 (float)"),
    # The batch has 2 rows: a third replica would have none.
    "data_parallel-over-rows": ({"data_parallel": 3},
                                "data_parallel 3 is more replicas than a global batch has rows "
                                "(the largest batch has 2)"),
    "clip_norm-zero": ({"clip_norm": 0.0}, "clip_norm must be a positive finite number; got 0.0"),
    "first_epoch-negative": ({"first_epoch": -1},
                             "first_epoch must be an integer in [0, 9007199254740992]; got -1"),
    "optimizer_state-not-a-state": ({"optimizer_state": {"m": {}}},
                                    "optimizer_state must be an OptimizerState; got dict"),
}


@pytest.mark.parametrize("bad", list(BAD_TRAINING))
@pytest.mark.parametrize("engine", TRAINERS)
def test_bad_training_settings_are_refused_before_a_step(models, engine, bad):
    changes, detail = BAD_TRAINING[bad]
    settings = {"epochs": 1, "lr": 0.1, "verbose": False, **changes}
    batch = Batch(SRC, TGT_IN, TGT_OUT)
    same_refusal(anchored(models("lstm"), engine),
                 lambda module, model: module.train(model, [batch], **settings), holds=detail)


# tgt_out must be tgt_in shifted by one step: anything else scores logits nobody specified.
BAD_BATCHES = {
    "target-past-input": (
        (SRC, TGT_IN, np.array([[5, 6, EOS], [4, EOS, 0]])), "tgt_out",
        "tgt_out row 1 has 2 real tokens but tgt_in row 1 has 1",
    ),
    "empty-tgt_in-row": (
        (SRC, np.array([[BOS, 5, 6], [0, 0, 0]]), np.array([[5, 6, EOS], [0, 0, 0]])), "tgt_in",
        "tgt_in row 1 is empty",
    ),
    "shapes-differ": ((SRC, TGT_IN, TGT_OUT[:, :2]), "tgt_out", "the same shape"),
    "batch-sizes-differ": ((SRC[:1], TGT_IN, TGT_OUT), "tgt_in", "src has 1 rows but tgt_in has 2"),
}


@pytest.mark.parametrize("bad", list(BAD_BATCHES))
@pytest.mark.parametrize("entry", ["loss_and_gradients", "train"])
@pytest.mark.parametrize("engine", TRAINERS)
def test_training_batches_that_would_score_unspecified_logits_are_refused(models, engine, entry,
                                                                           bad):
    arrays, names, detail = BAD_BATCHES[bad]

    def call(module, model):
        if entry == "train":
            return module.train(model, [Batch(*arrays)], epochs=1, verbose=False)
        return module.loss_and_gradients(model, *arrays)

    assert detail in same_refusal(anchored(models("lstm"), engine), call, holds=names)


# Training changes the weights, so the tests that train build their own small models.
SMALL = Seq2SeqConfig(V_SRC, V_TGT, embedding_dim=4, hidden_size=3)


def test_numpy_scalars_are_taken_where_numbers_are():
    """np.int64 epochs and seed, np.float32 lr: trained alike, and plain numbers in the history."""
    weights = random_weights(SMALL, seed=2)
    batch = Batch(SRC, TGT_IN, TGT_OUT)
    histories = {}
    for name in TRAINERS:
        module, model = model_with(name, SMALL, weights)
        assert module.build_model(SMALL, seed=np.int64(3)).config == SMALL
        histories[name] = module.train(model, [batch], epochs=np.int64(2), lr=np.float32(0.01),
                                       adam_epsilon=np.float64(1e-8), seed=np.int64(4),
                                       verbose=False)
    for name, history in histories.items():
        assert type(history["epochs"]) is int and type(history["lr"]) is float, (name, history)
    # Step 1 starts from the same weights; later steps differ in Adam's epsilon placement.
    assert_close("first-step loss", histories["keras_impl"]["loss"][0],
                 histories["torch_impl"]["loss"][0], LOGITS_ATOL)


@pytest.mark.parametrize("engine", TRAINERS)
def test_a_diverging_learning_rate_stops_alike(engine):
    """lr 1e308: the first Adam step sends the weights to inf, and training stops at the next."""
    weights = random_weights(SMALL, seed=2)
    fresh = {name: model_with(name, SMALL, weights) for name in dict.fromkeys([engine, ANCHOR])}
    batch = Batch(SRC, TGT_IN, TGT_OUT)
    message = same_refusal(
        anchored(fresh, engine),
        lambda module, model: module.train(model, [batch], epochs=3, lr=1e308, verbose=False),
        TrainingDivergedError,
        holds="training diverged at step 2: the loss is nan (not finite) with lr 1e+308")
    assert message.endswith("lower the learning rate (--lr on the command line)"), message
