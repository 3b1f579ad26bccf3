"""shared.app.elsewhere, the one way to run a function in another process on another backend.

What crosses (JSON with arrays beside it), the environment a process gets, and
a failure that names the function, the backend and the error.  ``make test``
itself runs the suite's share on Keras on JAX and on PyTorch through it
(tests/run.py), and the benchmarks their runs per backend.
"""

from __future__ import annotations

import numpy as np
import pytest

from shared.app.elsewhere import (
    ElsewhereError,
    _read,
    _write,
    elsewhere_env,
    run_elsewhere,
)


def test_arrays_tuples_and_json_values_cross_unchanged(tmp_path, rng):
    value = {"state": (rng.standard_normal((2, 3, 4)).astype(np.float32),
                       rng.integers(0, 9, (5,))),
             "rows": [1, 2.5, None, True, "text", np.float64(0.25)], "empty": {}}
    _write(tmp_path, "value", value)
    back = _read(tmp_path, "value")
    assert isinstance(back["state"], tuple) and back["state"][0].dtype == np.float32
    np.testing.assert_array_equal(back["state"][0], value["state"][0])
    np.testing.assert_array_equal(back["state"][1], value["state"][1])
    assert back["rows"] == [1, 2.5, None, True, "text", 0.25] and back["empty"] == {}


def test_what_cannot_cross_is_refused_by_name(tmp_path):
    with pytest.raises(TypeError, match="a set cannot cross"):
        _write(tmp_path, "value", {"ids": {1, 2}})
    with pytest.raises(TypeError, match="string keys"):
        _write(tmp_path, "value", {1: "one"})


def test_environment_sets_backend_threads_and_removes_what_is_asked(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x --xla_force_host_platform_device_count=8")
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    env = elsewhere_env("jax", threads=1, devices=2, cores=1, extra={"OMP_NUM_THREADS": None})
    assert env["KERAS_BACKEND"] == "jax" and "OMP_NUM_THREADS" not in env
    assert env["XLA_FLAGS"].split() == [
        "--xla_dump_to=/tmp/x",  # the caller's own flags stay; threads and devices are ours
        "--xla_cpu_multi_thread_eigen=false",
        "--xla_force_host_platform_device_count=2",
    ]
    assert env["OPENBLAS_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "1"
    assert env["SEQ2SEQ_CORES"] == "1"
    with pytest.raises(ValueError, match=r"keras_backend must be one of .*; got 'theano'"):
        elsewhere_env("theano")
    with pytest.raises(ValueError, match="cores"):
        elsewhere_env(cores=0)


def test_a_failure_names_the_function_the_backend_and_the_error():
    with pytest.raises(ElsewhereError, match=r"check_count on Keras/torch failed: "
                                             r"ValueError: threads must be .*; got -2"):
        run_elsewhere("shared.core.checks:check_count", {"value": -2, "name": "threads"},
                      keras_backend="torch")
    assert run_elsewhere("shared.core.checks:check_count", {"value": np.int64(3), "name": "n"},
                         keras_backend="torch") == 3
