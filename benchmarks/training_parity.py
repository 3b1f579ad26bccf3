"""Training parity in figures: how far keras_impl, on each Keras backend, is from torch_impl.

    python benchmarks/training_parity.py                  # Keras on KERAS_BACKEND
    python benchmarks/training_parity.py --keras-backends tensorflow,jax,torch

tests/test_ladder_5_training.py asserts each of these within its tolerance; this prints
how far inside it each backend is, on that file's own setup (task "addition",
96 pairs, batches of 24, E = 8, H = 6, the canonical weights of seed 11), for
its four models: the LSTM and the GRU over two bidirectional layers, and Luong
over an LSTM and Bahdanau over a GRU, each over one bidirectional layer:

    loss      |loss_keras - loss_torch| / |loss_torch| on the first batch (test: 1e-4)
    gradient  the largest, over tensors, of max |g_keras - g_torch| / max |g_torch|
              (test: 1e-4)
    sgd-20    max |w_keras - w_torch| over all weights after 20 SGD steps, lr 0.5
              (test: 1e-5)
    adam-50   max |loss_keras - loss_torch| over 50 Adam steps, lr 1e-2, epsilon 1e-8
              (test: 1e-4)

Each Keras backend runs in its own process (Keras fixes its backend at import).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.common import benchmark_parser, per_keras_backend

MEASURES = ("loss", "gradient", "sgd-20", "adam-50")
TOLERANCES = {"loss": 1e-4, "gradient": 1e-4, "sgd-20": 1e-5, "adam-50": 1e-4}


def setup(model: tuple):
    """tests/test_ladder_5_training.py's ``setup`` fixture: (config, batches, canonical weights)."""
    from tests.support import training_setup

    return training_setup(*model)


def measure(model: tuple) -> dict[str, float]:
    """The four figures of one model, keras_impl (this process's backend) against torch_impl."""
    import keras_impl
    import torch_impl
    from tests.support import keras_export

    config, batch_list, weights = setup(model)

    def fresh(module):
        model = module.build_model(config, seed=0)
        module.import_weights(model, weights)
        return model

    (loss_k, grads_k), (loss_t, grads_t) = (
        module.loss_and_gradients(fresh(module), *batch_list[0])
        for module in (keras_impl, torch_impl)
    )
    gradient = max(float(np.abs(grads_k[key] - grad).max()) / max(float(np.abs(grad).max()), 1e-6)
                   for key, grad in grads_t.items())
    trained = {}
    adam = {}
    for module in (keras_impl, torch_impl):
        model = fresh(module)
        cycle = [batch_list[i % len(batch_list)] for i in range(20)]
        module.train(model, cycle, epochs=1, optimizer="sgd", lr=0.5, verbose=False)
        trained[module.NAME] = module.export_weights(model)
        model = fresh(module)
        history = module.train(model, batch_list, epochs=13, optimizer="adam", lr=1e-2,
                               adam_epsilon=1e-8, verbose=False)
        adam[module.NAME] = np.array(history["loss"][:50])
    expected = keras_export(trained["torch"], config)   # a Keras LSTM holds the bias sum
    sgd = max(float(np.abs(trained["keras"][key] - value).max())
              for key, value in expected.items())
    return {"loss": abs(loss_k - loss_t) / abs(loss_t), "gradient": gradient, "sgd-20": sgd,
            "adam-50": float(np.abs(adam["keras"] - adam["torch"]).max())}


def run_here() -> dict[str, dict[str, float]]:
    import keras_impl
    from tests.test_ladder_5_training import MODELS, _model_id

    return {f"{_model_id(model)}, keras/{keras_impl.BACKEND}": measure(model)
            for model in MODELS}


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, keras_backends=True)
    args = parser.parse_args(argv)
    if args.keras_backends is None:
        results = run_here()
    else:
        results = per_keras_backend("benchmarks.training_parity:run_here", args.keras_backends)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"{'against torch_impl':<32}" + "".join(f"{m:>10}" for m in MEASURES))
    for engine, figures in results.items():
        print(f"{engine:<32}" + "".join(f"{figures[m]:10.1e}" for m in MEASURES))
    print(f"{'test tolerance':<32}" + "".join(f"{TOLERANCES[m]:10.0e}" for m in MEASURES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
