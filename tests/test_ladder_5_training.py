"""Training parity, the top rung of the ladder: the same loss, gradients and updates.

From the same canonical weights on the same batches, both backends must give
the same loss and canonical gradients and the same weights after 20 SGD steps,
for an LSTM and for a GRU, and for one model of each attention kind; and --
with Adam's epsilon matched -- the same losses over 50 Adam steps, for the LSTM
and the GRU with Bahdanau attention (``ADAM_MODELS``).  The GRU
matters here: its two biases both train in both frameworks (b_hn sits inside
r * (...)), where the LSTM trains one.  Attention adds weights that only the
loss through the attentional states reaches.

The attending models have one bidirectional layer, not two: what they add to
the ladder is the attention's gradients and updates, and the stacking is the
models without attention's to show.  (Each Keras ``train`` call traces its
step, which grows with the layers, on each of Keras's three backends: the
suite's budget is in these calls.)  For the
same reason no model runs a separate one-step SGD test: the first step is in
the 20, and ``test_loss_and_gradients_agree`` compares its gradients directly.

Above the losses, a run that moves between the frameworks: both compute one Adam
update (epsilon after the bias correction, ``keras_impl/optimizer.py``), clip the
same gradients to the same global norm, and a run of N steps in one framework,
saved with its optimizer state and resumed for M steps in the other, gives the
losses of N + M steps in one framework, both ways.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from shared import Seq2SeqConfig, batches, load_task
from shared.checkpoint import TrainingState, load_checkpoint, optimizer_settings, save_checkpoint
from shared.checkpoint.training_state import frozen_weights
from shared.core.compare import ADAM_LOSS_ATOL, GRADIENT_RTOL, STATE_ATOL, assert_close
from shared.text.data import build_tokenizers
from tests.checkpoint_files import adam_state
from tests.support import (
    KERAS_BACKEND,
    ON_TENSORFLOW,
    TRAINERS,
    backend,
    grid_weights,
    keras_export,
    model_with,
)

# Training is where Keras's backends differ most (gradients, compiled steps): make test
# (tests/run.py) runs keras_impl's tests here on Keras on JAX and on PyTorch too.
pytestmark = pytest.mark.every_keras_backend


# (cell, attention, layers): both cells without attention, and each attention kind once.
MODELS = [("lstm", "none", 2), ("gru", "none", 2), ("lstm", "luong", 1), ("gru", "bahdanau", 1)]
LSTM = [MODELS[0]]  # the tests of the training loop itself need one model only
# Adam over the two-layer LSTM (stacking, both biases summed) and the GRU with Bahdanau
# attention (a GRU's two biases, attention's weights): each cell once, each Keras train
# call a trace of seconds.  What Adam adds to the exact SGD updates -- epsilon's place,
# the moments, dense embedding gradients -- is the same for every model;
# benchmarks/training_parity.py runs it over all four (docs/attention.md has the figures).
ADAM_MODELS = [MODELS[0], MODELS[3]]
# Keras on JAX and on PyTorch (tests/run.py) train those two only: both
# cells, stacking and attention; on JAX each model's gradient and train step cost seconds
# of XLA compiling.  Luong's and the plain GRU's gradients are matched on TensorFlow.
TRAINED = MODELS if KERAS_BACKEND == "tensorflow" else ADAM_MODELS


def _model_id(model) -> str:
    cell, attention, _ = model
    return cell if attention == "none" else f"{cell}-{attention}"


@pytest.fixture(scope="module", params=TRAINED, ids=_model_id)
def setup(request):
    cell, attention, num_layers = request.param
    pairs = load_task("addition", 96, seed=5)
    src_tok, tgt_tok = build_tokenizers(pairs)
    config = Seq2SeqConfig(
        src_vocab_size=len(src_tok), tgt_vocab_size=len(tgt_tok),
        embedding_dim=8, hidden_size=6, num_layers=num_layers, bidirectional=True, cell=cell,
        attention=attention,
    )
    batch_list = list(batches(pairs, src_tok, tgt_tok, batch_size=24, seed=1))
    weights = grid_weights(config, seed=11)
    return config, batch_list, weights


def test_loss_and_gradients_agree(setup):
    config, batch_list, weights = setup
    results = {}
    for name in TRAINERS:
        module, model = model_with(name, config, weights)
        results[name] = module.loss_and_gradients(model, *batch_list[0])
    (loss_k, grads_k), (loss_t, grads_t) = results["keras_impl"], results["torch_impl"]
    assert abs(loss_k - loss_t) <= GRADIENT_RTOL * abs(loss_t), (
        f"loss keras {loss_k} torch {loss_t}")
    assert list(grads_k) == list(weights)
    for key, grad in grads_t.items():
        scale = max(float(np.abs(grad).max()), 1e-6)
        assert_close(f"{config.cell} gradient {key}", grads_k[key], grad, GRADIENT_RTOL * scale)
    # The gradients are not all zero: the comparison above has something to compare.
    gate = "f" if config.cell == "lstm" else "z"
    assert np.abs(grads_t[f"encoder.layers.0.backward.{gate}.W_ih"]).max() > 1e-4
    if config.cell == "gru":  # b_hn acts inside r * (...): its gradient is its own
        key = "decoder.layers.0.forward.n"
        assert np.abs(grads_t[f"{key}.b_hh"] - grads_t[f"{key}.b_ih"]).max() > 1e-4
    for key in (k for k in grads_t if k.startswith("decoder.attention.")):
        assert np.abs(grads_t[key]).max() > 1e-4, f"{key}: no gradient reaches the attention"


def test_gradient_matches_finite_difference(setup):
    """Both backends agree, and they are right: a central difference on one weight.

    With attention, the weight is one of the score's (W_a, or W_1 on h_t), at its
    largest gradient: score gradients are small (about 1e-3), so the check is
    relative, with a wider step that keeps float32 rounding of the loss below 1%.
    """
    config, batch_list, weights = setup
    module, model = model_with("torch_impl", config, weights)
    _, grads = module.loss_and_gradients(model, *batch_list[0])
    gate = "o" if config.cell == "lstm" else "n"
    key, index, eps = f"decoder.layers.1.forward.{gate}.W_hh", (2, 3), 1e-2
    if config.has_attention:
        key = {"luong": "decoder.attention.W_a", "bahdanau": "decoder.attention.W_1"}[
            config.attention]
        index = np.unravel_index(np.argmax(np.abs(grads[key])), grads[key].shape)
        eps = 5e-2
    losses = []
    for sign in (1, -1):
        moved = {k: v.astype(np.float64).copy() for k, v in weights.items()}
        moved[key][index] += sign * eps
        module.import_weights(model, {k: v.astype(np.float32) for k, v in moved.items()})
        losses.append(module.loss_and_gradients(model, *batch_list[0])[0])
    numeric = (losses[0] - losses[1]) / (2 * eps)
    analytic = grads[key][index]
    if not config.has_attention:
        assert abs(numeric - analytic) < 2e-3 * max(1.0, abs(numeric)), (key, numeric, analytic)
    else:
        assert abs(analytic) > 1e-4, f"{key}: the gradient to check is {analytic}"
        assert abs(numeric - analytic) < 0.02 * abs(analytic), (key, index, numeric, analytic)


# 20 steps (see the module's docstring).
SGD_RUNS = [(model, 20) for model in TRAINED]


@pytest.mark.parametrize(("setup", "steps"), SGD_RUNS, indirect=["setup"],
                         ids=[f"{_model_id(model)}-{steps}" for model, steps in SGD_RUNS])
def test_sgd_steps_give_the_same_weights(setup, steps):
    config, batch_list, weights = setup
    trained = {}
    for name in TRAINERS:
        module, model = model_with(name, config, weights)
        cycle = [batch_list[i % len(batch_list)] for i in range(steps)]
        module.train(model, cycle, epochs=1, optimizer="sgd", lr=0.5, verbose=False)
        trained[name] = module.export_weights(model)
    # A Keras LSTM holds the sum of both biases in b_ih; a GRU holds both.
    for key, expected in keras_export(trained["torch_impl"], config).items():
        assert_close(f"{config.cell} after {steps} SGD steps: {key}", trained["keras_impl"][key],
                     expected, STATE_ATOL)
    moved = np.abs(trained["torch_impl"]["decoder.output.W"] - weights["decoder.output.W"]).max()
    assert moved > 1e-3, "training did not move the weights"


@pytest.mark.parametrize("setup", ADAM_MODELS, indirect=True, ids=_model_id)
def test_adam_50_steps_losses_agree_and_fall(setup):
    config, batch_list, weights = setup
    losses = {}
    for name in TRAINERS:
        module, model = model_with(name, config, weights)
        history = module.train(model, batch_list, epochs=13, optimizer="adam", lr=1e-2,
                               adam_epsilon=1e-8, verbose=False)
        losses[name] = np.array(history["loss"][:50])
    assert len(losses["torch_impl"]) == 50
    worst = np.abs(losses["keras_impl"] - losses["torch_impl"]).max()
    assert worst < ADAM_LOSS_ATOL, (
        f"{config.cell} {config.attention}: Adam losses differ by up to {worst:.2e} over 50 steps")
    assert losses["torch_impl"][-1] < 0.8 * losses["torch_impl"][0], "Adam did not learn"


def test_both_frameworks_take_one_adam_step_where_keras_own_would_not():
    """Gradients near 1e-9, where √v̂ is near epsilon: keras_impl's Adam takes PyTorch's steps
    (epsilon after the bias correction), where Keras's own Adam (epsilon before) does not."""
    import keras
    import torch

    from keras_impl.optimizer import Adam

    rng = np.random.default_rng(3)
    grads = (rng.standard_normal((20, 5)) * 1e-9).astype(np.float32)           # (steps, 5)
    start = rng.standard_normal(5).astype(np.float32)
    w = torch.tensor(start, requires_grad=True)
    optimizer = torch.optim.Adam([w], lr=1e-2, eps=1e-8)
    moved = {}
    for name, keras_adam in (("ours", Adam), ("keras", keras.optimizers.Adam)):
        variable = keras.Variable(start)
        adam = keras_adam(learning_rate=1e-2, epsilon=1e-8)
        for g in grads:
            adam.apply([keras.ops.convert_to_tensor(g)], [variable])
        moved[name] = np.asarray(variable) - start
    for g in grads:
        w.grad = torch.from_numpy(g.copy())
        optimizer.step()
    torch_moved = w.detach().numpy() - start
    assert_close("keras_impl's Adam after 20 tiny steps", moved["ours"], torch_moved,
                 1e-4 * np.abs(torch_moved).max())  # float32 Adam, the scalars apart
    assert np.abs(moved["keras"] - torch_moved).max() > 0.1 * np.abs(torch_moved).max(), (
        "Keras's own Adam should differ here: the check above could not fail")


def _trained_grads(config, weights, gradients) -> dict:
    """The canonical gradients as the optimizers see them: an LSTM's b_hh zero (untrained)."""
    return {k: np.zeros_like(g) if k in frozen_weights(config) else g for k, g in gradients.items()}


@pytest.mark.skipif(not ON_TENSORFLOW, reason="global_clipnorm is one code on every Keras "
                                               "backend: checked on TensorFlow")
@pytest.mark.parametrize("setup", ADAM_MODELS, indirect=True, ids=_model_id)
def test_the_same_gradients_clip_to_the_same_global_norm(setup):
    """One batch's gradients, clipped to a third of their global norm: Keras's global_clipnorm
    (inside the optimizer, seen as an SGD step at lr 1 from zero weights) and PyTorch's
    clip_grad_norm_ give g * clip / norm, for every weight."""
    import torch

    from keras_impl.optimizer import build_optimizer
    from keras_impl.weights import from_canonical as keras_from_canonical
    from torch_impl.optimizer import clip_gradients
    from torch_impl.weights import from_canonical as torch_from_canonical
    from torch_impl.weights import to_canonical as torch_to_canonical

    config, batch_list, weights = setup
    module, model = model_with("torch_impl", config, weights)
    grads = _trained_grads(config, weights, module.loss_and_gradients(model, *batch_list[0])[1])
    norm = float(np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values())))
    settings = optimizer_settings("sgd", lr=1.0, clip_norm=norm / 3)
    expected = {k: g * (norm / 3) / norm for k, g in grads.items()}

    def write_grad(param, value):
        if param.requires_grad:
            param.grad = value.clone()
    torch_from_canonical(model, grads, write=write_grad)
    clip_gradients(model, settings)
    clipped = {"torch_impl": torch_to_canonical(
        model, read=lambda p: p.grad if p.requires_grad else torch.zeros_like(p))}
    # From zero weights an SGD step at lr 1 leaves exactly -g: no rounding of w - g to undo.
    zeros = {k: np.zeros_like(w) for k, w in weights.items()}
    keras_module, keras_model = model_with("keras_impl", config, zeros)
    by_variable = {}
    keras_from_canonical(keras_model, grads, write=lambda v, g: by_variable.__setitem__(id(v), g))
    variables = keras_model.trainable_variables
    build_optimizer(keras_model, settings).apply(
        [by_variable[id(v)] for v in variables], variables)
    clipped["keras_impl"] = {k: -w for k, w in keras_module.export_weights(keras_model).items()}
    for name, found in clipped.items():
        for key, value in expected.items():
            scale = max(float(np.abs(value).max()), 1e-6)
            assert_close(f"{name} clipped gradient {key}", found[key], value, 1e-5 * scale)


def _run(name, config, weights, batch_list, epochs, state=None, first_epoch=0):
    """Adam over ``batch_list`` per epoch, clipped; (losses, the end's optimizer state, weights)."""
    module, model = model_with(name, config, weights)
    ends = []
    history = module.train(model, batch_list, epochs=epochs, lr=1e-2, clip_norm=1.0,
                           first_epoch=first_epoch, optimizer_state=state, verbose=False,
                           on_epoch_end=ends.append)
    return np.array(history["loss"]), ends[-1].optimizer_state(), module.export_weights(model)


# Not on JAX, where every new model and train step compiles for seconds to tens of seconds:
# the state's way into and out of Keras is the same code on every backend (variables
# assigned and read), and a run moved into Keras on JAX was checked by hand
# (docs/training.md); the update rule, which is backend code, is checked on all three above.
NOT_ON_JAX = pytest.mark.skipif(KERAS_BACKEND == "jax", reason="compiles too long; see the note")
# One layer, one direction: the slots' renaming is the weights' (each layer alike).
SMALL_MODELS = [("lstm", "none"), ("gru", "bahdanau")]


@NOT_ON_JAX
@pytest.mark.parametrize(("cell", "attention"), SMALL_MODELS, ids=["lstm", "gru-bahdanau"])
@pytest.mark.parametrize("name", TRAINERS)
def test_the_optimizer_state_goes_in_and_out_by_canonical_name(cell, attention, name):
    """A neutral Adam state imported into a framework's optimizer and exported back is the
    same, bit for bit (an LSTM's b_ih slots feed Keras's one bias, its b_hh slots stay 0)."""
    config = Seq2SeqConfig(13, 11, embedding_dim=4, hidden_size=3, cell=cell,
                           attention=attention)
    _, model = model_with(name, config, grid_weights(config, seed=2))
    optimizer = importlib.import_module(f"{name}.optimizer")
    state = adam_state(config).optimizer
    built = optimizer.build_optimizer(model, state.settings)
    optimizer.import_state(model, built, state)
    exported = optimizer.export_state(model, built, state.settings, state.step)
    for slot, arrays in state.slots.items():
        for key, value in arrays.items():
            np.testing.assert_array_equal(exported.slots[slot][key], value,
                                          err_msg=f"{name} {slot} {key}")


# Both ways on the GRU with Bahdanau attention (both biases, attention's slots); the
# LSTM's one bias crosses both ways in tests/test_cli_training.py's resumed runs.
@NOT_ON_JAX
@pytest.mark.parametrize("setup", ADAM_MODELS[1:], indirect=True, ids=_model_id)
def test_a_run_moves_between_frameworks_with_its_optimizer_state(setup, tmp_path):
    """8 Adam steps in one framework, saved in a checkpoint with the optimizer state and resumed
    for 8 in the other, give the losses and the optimizer state of 16 in PyTorch alone, both
    ways; resuming with fresh moments gives other losses (so the check can fail)."""
    config, batch_list, weights = setup
    batch_list = batch_list[:4]  # 4 steps an epoch
    one_run, one_state, _ = _run("torch_impl", config, weights, batch_list, epochs=4)
    tokenizers = build_tokenizers(load_task("addition", 96, seed=5))
    for first, second in (("keras_impl", "torch_impl"), ("torch_impl", "keras_impl")):
        losses, state, trained = _run(first, config, weights, batch_list, epochs=2)
        path = tmp_path / f"{first}.safetensors"
        save_checkpoint(path, trained, config, *tokenizers,
                        training=TrainingState(2, 0, 24, state))
        saved = load_checkpoint(path)
        rest, end_state, _ = _run(second, config, saved.weights, batch_list, epochs=2,
                                  state=saved.training.optimizer, first_epoch=2)
        worst = np.abs(np.concatenate([losses, rest]) - one_run).max()
        assert worst < ADAM_LOSS_ATOL, (
            f"{first} 8 steps then {second} 8: losses differ from torch's 16 by {worst:.2e}")
        assert end_state.step == one_state.step == 16
        for slot, arrays in one_state.slots.items():
            for key, value in arrays.items():
                scale = max(float(np.abs(value).max()), 1e-12)
                assert_close(f"{first} then {second}: Adam's {slot} of {key} after 16 steps",
                             end_state.slots[slot][key], value, 1e-3 * scale)
    fresh, _, _ = _run("torch_impl", config, saved.weights, batch_list, epochs=2, first_epoch=2)
    assert np.abs(fresh - one_run[8:]).max() > 10 * ADAM_LOSS_ATOL, "fresh moments changed nothing"


@pytest.mark.parametrize("setup", LSTM, indirect=True, ids=_model_id)
@pytest.mark.parametrize("name", TRAINERS)
def test_same_seed_gives_bit_identical_weights(setup, name):
    config, batch_list, _ = setup
    # Dropout draws random masks between the two layers; one direction is enough for that
    # (and traces in half the time of two).
    config = Seq2SeqConfig(**{**config.to_dict(), "dropout": 0.3, "bidirectional": False})
    runs = []
    for _ in range(2):
        module = backend(name)
        model = module.build_model(config, seed=3)
        module.train(model, batch_list[:2], epochs=1, optimizer="adam", lr=1e-2, seed=4,
                     verbose=False)
        runs.append(module.export_weights(model))
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=f"{name} {key}")


@pytest.mark.parametrize("setup", LSTM, indirect=True, ids=_model_id)
@pytest.mark.parametrize("name", TRAINERS)
def test_loss_and_gradients_run_with_dropout_off(setup, name):
    """With dropout in the config, two calls still give one answer: dropout is off there."""
    config, batch_list, weights = setup
    config = Seq2SeqConfig(**{**config.to_dict(), "dropout": 0.5})
    module, model = model_with(name, config, weights)
    first, second = (module.loss_and_gradients(model, *batch_list[0]) for _ in range(2))
    assert first[0] == second[0]
    for key in first[1]:
        np.testing.assert_array_equal(first[1][key], second[1][key], err_msg=f"{name} {key}")


@pytest.mark.parametrize("setup", LSTM, indirect=True, ids=_model_id)
@pytest.mark.parametrize("name", TRAINERS)
def test_batches_can_change_every_epoch(setup, name):
    """A function of the epoch gives each epoch its own batches (a new shuffle)."""
    config, batch_list, weights = setup
    module, model = model_with(name, config, weights)
    asked = []

    def epoch_batches(epoch):
        asked.append(epoch)
        return batch_list[epoch : epoch + 2]

    history = module.train(model, epoch_batches, epochs=3, optimizer="sgd", lr=0.1, verbose=False)
    assert asked == [0, 1, 2] and len(history["loss"]) == 6 and len(history["epoch_loss"]) == 3
    assert history["epoch_loss"][1] == pytest.approx(np.mean(history["loss"][2:4]))
    with pytest.raises(ValueError, match="batches is empty for epoch 1"):
        module.train(model, lambda epoch: batch_list[:1] if epoch == 0 else [], epochs=2,
                     verbose=False)
