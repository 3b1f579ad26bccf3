# The README's two commands: `make demo` and `make test`.
# Each creates .venv when it is missing and installs the project with all its
# extras under constraints.txt (the versions tested here), then runs.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/seq2seq-rosetta demo --out out/demo

# The suite on Keras on TensorFlow, and beside it the tests marked every_keras_backend on
# Keras on JAX and on PyTorch (tests/run.py says how, and how to run one file by hand).
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m tests.run

bench: $(STAMP)
	$(PY) benchmarks/train_step.py --quick
	$(PY) benchmarks/decode.py --quick

clean:
	rm -rf $(VENV) out .cache .pytest_cache .ruff_cache .hypothesis
