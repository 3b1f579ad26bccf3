"""Training parity on the stage axis: 2 replicas against one process, on every engine that trains.

The top rung of the ladder, along another axis: tests/test_ladder_5_training.py holds
the two frameworks to each other; this file holds each engine's data-parallel training
to its own one-process training.  From the same canonical weights on the same global
batches, 2 replicas must give one process's gradients, and its weights after 20 SGD
steps and after 20 Adam steps within STATE_ATOL.

    engine                          replicas                            checked in
    torch_impl                      DDP ranks (gloo), processes         the main run
    keras_impl on TensorFlow        MirroredStrategy, 2 logical CPUs    the main run
    keras_impl on JAX               DataParallel, 2 virtual CPUs        make test's JAX run
    keras_impl on PyTorch           refused in one line                 make test's PyTorch run

The batches are ragged where replicas can go wrong: global batches of 5 rows, whose
first 3 rows hold short answers, split 3 + 2 (and a PAD row), so replica 0 holds
fewer real tokens than replica 1 and each replica's own masked mean would weigh them
differently.  A batch of 1 row leaves replica 1 without a real token (its gradients
case).  Widths and batch sizes are fixed, so JAX compiles each step once.  Each
engine runs every case in one call of its ``data_parallel.run_jobs``: torch starts
its ranks once for all of them.

The trap, as a mutation: the first batch's gradients with each replica's own masked
mean (``loss_rule="replica-mean"``, what each engine's default loss gives) must land
far outside the tolerance, so the parity above would fail without the global token
count (docs/examples/13_data_parallel_trap.py shows the figures).

On Keras on JAX every case compiles a program (seconds each): the LSTM's gradients are
left to its 20 SGD steps there, and the trap has no JAX form (``CASES_HERE``).

Adam and the 1e-5: splitting a batch changes only the float32 order of the gradient
sum, but Adam divides each gradient element by its own magnitude, so an element whose
true gradient is near zero can turn that rounding into a visible step (a GRU with
Bahdanau attention and H 8 moved 2.5e-5 after one step, in one process, by summing
two halves).  The models and seeds here stay well inside; a new model or seed that
fails the Adam case should first be tried as a split-and-sum in one process.
"""

from __future__ import annotations

import functools
import importlib
import json
import re

import numpy as np
import pytest

from shared import BOS, EOS, PAD, Batch, Seq2SeqConfig, load_checkpoint
from shared.app.cli import main
from shared.core.compare import GRADIENT_RTOL, STATE_ATOL, assert_close
from shared.ladder import climb, run_reference
from shared.text.data import random_ids
from shared.training.replicas import (
    KERAS_TORCH_REFUSAL,
    Job,
    ReplicaFailedError,
    real_tokens,
    split_batch,
)
from tests.conftest import REPLICAS
from tests.refusal import cli_refusal, refusal
from tests.support import (
    KERAS_BACKEND,
    TRAINERS,
    V_SRC,
    V_TGT,
    assert_rungs,
    backend,
    grid_weights,
)

pytestmark = pytest.mark.every_keras_backend

S, T = 8, 7  # fixed widths
STEPS = 20
ROWS = 5  # of each global batch: 3 + 2 on 2 replicas, an uneven split
TRAP_DRIFT = 0.1  # the trap's gradients, relative to the largest: far above GRADIENT_RTOL

# (cell, attention): an LSTM (one bias trained per gate) and a GRU with Bahdanau attention
# (two biases, the attention's weights).  One layer, one direction: what replicas can get
# wrong is in the loss and the reduction, not in the depth, and each replicated step is a
# trace or a compile of seconds on Keras's backends.
MODELS = {"lstm": ("lstm", "none"), "gru-bahdanau": ("gru", "bahdanau")}
# Keras on PyTorch has no replicas (see test_keras_on_pytorch_is_refused).
ENGINES = TRAINERS if KERAS_BACKEND != "torch" else ["torch_impl"]


def _config(name: str) -> Seq2SeqConfig:
    cell, attention = MODELS[name]
    return Seq2SeqConfig(src_vocab_size=V_SRC, tgt_vocab_size=V_TGT, embedding_dim=8,
                         hidden_size=6, cell=cell, attention=attention)


def _batch(rng: np.random.Generator, rows: int) -> Batch:
    """A global batch whose first rows (replica 0's) hold short answers, the rest long ones."""
    short = (rows + 1) // 2
    answers = [int(rng.integers(0, 2)) for _ in range(short)]
    answers += [int(rng.integers(3, T)) for _ in range(rows - short)]
    src = random_ids(rng, [int(rng.integers(0, S + 1)) for _ in range(rows)], V_SRC, width=S)
    answer_ids = random_ids(rng, answers, V_TGT, width=T - 1)                  # (B, T - 1)
    tgt_in = np.full((rows, T), PAD, dtype=np.int64)                          # (B, T)
    tgt_out = np.full((rows, T), PAD, dtype=np.int64)                         # (B, T)
    for row, n in enumerate(answers):  # BOS + answer in, answer + EOS out
        tgt_in[row, : n + 1] = [BOS, *answer_ids[row, :n]]
        tgt_out[row, : n + 1] = [*answer_ids[row, :n], EOS]
    return Batch(src, tgt_in, tgt_out)


BATCHES = [_batch(np.random.default_rng(3 + step), ROWS) for step in range(STEPS)]
ONE_ROW = _batch(np.random.default_rng(2), 1)  # replica 1's slice is all PAD


def _job(case: str) -> Job:
    """A case: "gradients-MODEL" (the first batch's), "empty-MODEL" (the 1-row batch's
    gradients), "trap-MODEL" (the first batch's, each replica's own mean), "sgd-MODEL" /
    "adam-MODEL" (20 steps)."""
    kind, model = case.split("-", 1)
    config = _config(model)
    weights = grid_weights(config, seed=11)
    if kind in ("gradients", "empty", "trap"):
        rule = "replica-mean" if kind == "trap" else "global"
        batch = ONE_ROW if kind == "empty" else BATCHES[0]
        return Job("gradients", config, weights, [[batch]], loss_rule=rule)
    lr = {"sgd": 0.5, "adam": 1e-2}[kind]
    return Job("train", config, weights, [BATCHES], optimizer=kind, lr=lr)


CASES = ["gradients-lstm", "empty-gru-bahdanau", "sgd-lstm", "adam-gru-bahdanau", "trap-lstm"]
# Keras on JAX has no trap to show: its one jitted program over the sharded batch sums and
# counts globally by itself (keras_impl.data_parallel writes the trap into it only to measure).
ON_JAX = ["empty-gru-bahdanau", "sgd-lstm", "adam-gru-bahdanau"]
CASES_HERE = {engine: ON_JAX if (engine, KERAS_BACKEND) == ("keras_impl", "jax") else CASES
              for engine in ENGINES}


def test_the_batches_hold_what_the_cases_need():
    """Replicas with different real-token counts, an uneven split, a replica with no real token."""
    slices = [[real_tokens(part.tgt_out) for part in split_batch(b, REPLICAS)] for b in BATCHES]
    assert all(first < second for first, second in slices), slices
    assert ROWS % REPLICAS, "the batches split evenly"
    assert [real_tokens(part.tgt_out) for part in split_batch(ONE_ROW, REPLICAS)][1:] == [0]


@pytest.fixture(scope="module", params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def replicated(engine) -> dict:
    """Every case on 2 replicas of ``engine``, from one call: torch starts its ranks once."""
    backend(engine)
    data_parallel = importlib.import_module(f"{engine}.data_parallel")
    cases = CASES_HERE[engine]
    return dict(zip(cases, data_parallel.run_jobs([_job(c) for c in cases], REPLICAS),
                    strict=True))


def _one_process(engine: str, case: str):
    """The case's job in this process, without replicas: the reference (the trap's is one
    process's gradients)."""
    return _one_process_run(engine, case.replace("trap", "gradients"))


@functools.cache
def _one_process_run(engine: str, case: str):
    job = _job(case)
    module = backend(engine)
    model = module.build_model(job.config)
    module.import_weights(model, job.weights)
    if job.kind == "gradients":
        return module.loss_and_gradients(model, *job.schedule[0][0])
    history = module.train(model, job.schedule[0], epochs=1, optimizer=job.optimizer, lr=job.lr,
                           verbose=False)
    return history, module.export_weights(model)


@pytest.mark.parametrize("case", ["gradients-lstm", "empty-gru-bahdanau"])
def test_replicas_give_one_process_gradients(engine, replicated, case):
    if case not in CASES_HERE[engine]:
        pytest.skip("Keras on JAX: the LSTM's gradients are left to its 20 SGD steps")
    loss, gradients = _one_process(engine, case)
    got = replicated[case]
    assert abs(got["loss"] - loss) <= GRADIENT_RTOL * loss, f"{engine} {case}: loss {got['loss']} "
    assert list(got["gradients"]) == list(gradients)
    for key, grad in gradients.items():
        scale = max(float(np.abs(grad).max()), 1e-6)
        assert_close(f"{engine} {case} replicated gradient {key}", got["gradients"][key], grad,
                     GRADIENT_RTOL * scale)


@pytest.mark.parametrize("case", ["sgd-lstm", "adam-gru-bahdanau"])
def test_replicas_train_to_one_process_weights(engine, replicated, case):
    job = _job(case)
    history, weights = _one_process(engine, case)
    got = replicated[case]
    assert got["history"]["data_parallel"] == REPLICAS
    assert got["history"]["engine"] == {"torch_impl": "torch-ddp"}.get(
        engine, f"keras-{KERAS_BACKEND}")
    # Every step's loss is the global masked mean, as one process logs it.
    np.testing.assert_allclose(got["history"]["loss"], history["loss"], rtol=1e-5)
    for key, expected in weights.items():
        assert_close(f"{engine} {case}, {STEPS} steps on {REPLICAS} replicas: {key}",
                     got["weights"][key], expected, STATE_ATOL)
    moved = np.abs(weights["decoder.output.W"] - job.weights["decoder.output.W"]).max()
    assert moved > 1e-3, "training did not move the weights"


def test_each_replicas_own_mean_is_the_trap(engine, replicated):
    """The mutation: the trap's gradients land far outside the tolerance the fix keeps."""
    if "trap-lstm" not in CASES_HERE[engine]:
        pytest.skip("Keras on JAX: one jitted program over the sharded batch has no trap")
    _, gradients = _one_process(engine, "trap-lstm")
    got = replicated["trap-lstm"]["gradients"]
    drift = max(float(np.abs(got[key] - grad).max()) / max(float(np.abs(grad).max()), 1e-6)
                for key, grad in gradients.items())
    assert drift > TRAP_DRIFT, (
        f"{engine}: each replica's own mean drifted only {drift:.3g} from one process; "
        "these batches no longer tell the trap from the global token count")


def test_torch_impl_names_the_replica_that_failed():
    """A rank that raises ends the run with one line that names it and its error."""
    backend("torch_impl")
    data_parallel = importlib.import_module("torch_impl.data_parallel")
    job = _job("sgd-lstm")
    broken = {k: v for k, v in job.weights.items() if k != "decoder.output.b"}  # rank-side error
    message = refusal(lambda: data_parallel.run_jobs(
        [Job("train", job.config, broken, [BATCHES[:2]], optimizer="sgd", lr=0.5)], REPLICAS),
        ReplicaFailedError)
    # Every rank fails alike here; the first to say so is named, whichever it is.
    assert re.fullmatch(rf"replica [0-{REPLICAS - 1}] of {REPLICAS} failed: ValueError: weights do "
                        r"not have this config's canonical names; 1 missing: decoder\.output\.b",
                        message), message


def test_torch_impl_under_torchrun_takes_its_world_size(monkeypatch):
    """Under an outside torchrun the count must be the world size, refused before any rank joins."""
    backend("torch_impl")
    data_parallel = importlib.import_module("torch_impl.data_parallel")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    message = refusal(lambda: data_parallel.run_jobs([_job("sgd-lstm")], REPLICAS))
    assert message == f"data_parallel is {REPLICAS} but torchrun started 4 ranks (WORLD_SIZE); " \
                      "give data_parallel 4"


# ---- the replicas composed with train's epoch loop: hook, clipping, optimizer state, resume ----

# 3 epochs of 3 global batches each, Adam, a clip that binds (replicas that skip it log
# losses 6e-3 away): one process runs them all; the replicas resume its first epoch's state.
EPOCH_STEPS = 3
COMPOSED = {"optimizer": "adam", "lr": 1e-2, "clip_norm": 0.05, "verbose": False}


def _epoch_batches(epoch: int) -> list[Batch]:
    return BATCHES[epoch * EPOCH_STEPS : (epoch + 1) * EPOCH_STEPS]


def _train_recording(module, model, stop_after: int | None = None, **settings):
    """``train`` with a hook that records each epoch's (epoch, step, weights, state)."""
    ends = []

    def on_epoch_end(end) -> bool:
        ends.append((end.epoch, end.step, module.export_weights(model), end.optimizer_state()))
        return end.epoch == stop_after

    history = module.train(model, _epoch_batches, on_epoch_end=on_epoch_end, **settings,
                           **COMPOSED)
    return history, ends


def test_replicas_resume_train_epoch_by_epoch_with_its_hook_and_clipping(engine):
    """A one-process epoch's Adam state resumed on 2 replicas, epoch by epoch with the hook and
    a binding clip, ends each epoch where one process does (weights, Adam's m and v), and
    stops when the hook says so."""
    module = backend(engine)
    config = _config("lstm")
    model = module.build_model(config)
    module.import_weights(model, grid_weights(config, seed=11))
    history, ends = _train_recording(module, model, epochs=3)
    model = module.build_model(config)
    module.import_weights(model, ends[0][2])
    # 5 epochs asked from epoch 1; the hook stops the run after epoch 2.
    got, got_ends = _train_recording(module, model, stop_after=2, epochs=5, first_epoch=1,
                                     optimizer_state=ends[0][3], data_parallel=REPLICAS)
    assert [e[:2] for e in got_ends] == [(1, 2 * EPOCH_STEPS), (2, 3 * EPOCH_STEPS)]
    assert (got["first_epoch"], got["epochs_run"], got["data_parallel"]) == (1, 2, REPLICAS)
    np.testing.assert_allclose(got["loss"], history["loss"][EPOCH_STEPS:], rtol=1e-5)
    for (epoch, _, weights, state), (_, _, expected, expected_state) in zip(
            got_ends, ends[1:], strict=True):
        what = f"{engine} on {REPLICAS} replicas with clip_norm, epoch {epoch}"
        for key, value in expected.items():
            assert_close(f"{what}: {key}", weights[key], value, STATE_ATOL)
        assert (state.step, state.settings) == (expected_state.step, expected_state.settings)
        for slot, names in expected_state.slots.items():
            for key, value in names.items():
                assert_close(f"{what}: Adam's {slot} of {key}", state.slots[slot][key], value,
                             STATE_ATOL)


# ---- the command line end to end: train --data-parallel 2 against a plain train ----

# 9 pairs in one batch of 9 rows, split 5 + 4, for 2 epochs: a new order each epoch, the
# same widths (on JAX, whose steps compile once per batch shape, one compile per run).
LADDER_RUNGS = ("hand-off", "logits", "final state")  # no search: JAX compiles every step
# --clip-norm binds (replicas that skip it land 1.6e-3 away): they clip the global gradient,
# as one process does, in a fresh run of 2 epochs through train's hook (it writes the files).
TRAIN = ["train", "--task", "addition", "--n", "9", "--epochs", "2", "--batch-size", "9",
         "--embedding-dim", "8", "--hidden-size", "8", "--lr", "0.05", "--seed", "7",
         "--clip-norm", "0.1"]
FLAGS = {"torch_impl": "torch", "keras_impl": "keras"}


def _engine_recorded(engine: str, replicas: int) -> str:
    if engine == "torch_impl":
        return "torch-ddp" if replicas > 1 else "torch"
    return f"keras-{KERAS_BACKEND}"


@pytest.mark.parametrize("cli_engine", ENGINES)
def test_train_with_data_parallel_ends_where_a_plain_train_ends(cli_engine, tmp_path, capsys):
    """Same flags and seed: 2 replicas and one process write the same weights (STATE_ATOL)."""
    for replicas in (1, REPLICAS):
        out = tmp_path / str(replicas)
        assert main([*TRAIN, "--backend", FLAGS[cli_engine], "--data-parallel", str(replicas),
                     "--out", str(out)]) == 0
        history = json.loads((out / "history.json").read_text())
        assert (history["data_parallel"], history["engine"]) == (
            replicas, _engine_recorded(cli_engine, replicas))
    assert capsys.readouterr().out.count("saved ") == 2, "one process did not write once"
    plain, replicated = (load_checkpoint(tmp_path / str(n) / "model.safetensors")
                         for n in (1, REPLICAS))
    for key, expected in plain.weights.items():
        assert_close(f"{cli_engine} train --data-parallel {REPLICAS}: {key}",
                     replicated.weights[key], expected, STATE_ATOL)
    # The replicated run's checkpoint is an ordinary one: both trainers load it and climb the
    # ladder's teacher-forced rungs against the reference.
    src = random_ids(np.random.default_rng(0), [4, 2, 5], replicated.config.src_vocab_size)
    reference = run_reference(replicated.weights, replicated.config, src, rungs=LADDER_RUNGS)
    for name in TRAINERS:
        module = backend(name)
        model = module.build_model(replicated.config)
        module.import_weights(model, replicated.weights)
        assert_rungs(climb(module, model, reference), f"{cli_engine}'s replicated checkpoint")


@pytest.mark.skipif(KERAS_BACKEND != "torch", reason="Keras on PyTorch only (make test's run)")
def test_keras_on_pytorch_is_refused_in_one_line(tmp_path, capsys):
    """Keras has no keras.distribution on PyTorch: the API and the command line say so."""
    keras_impl = backend("keras_impl")
    job = _job("sgd-lstm")
    model = keras_impl.build_model(job.config)
    message = refusal(lambda: keras_impl.train(model, BATCHES[:1], epochs=1, verbose=False,
                                               data_parallel=REPLICAS))
    assert message == f"data_parallel {REPLICAS}: {KERAS_TORCH_REFUSAL}"
    line = cli_refusal(capsys, [*TRAIN, "--backend", "keras", "--data-parallel", str(REPLICAS),
                                "--out", str(tmp_path / "out")])
    assert line.endswith(f"--data-parallel {REPLICAS}: {KERAS_TORCH_REFUSAL}"), line
    assert not (tmp_path / "out").exists()
