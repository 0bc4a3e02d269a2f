# Two commands do all the set-up on a fresh machine:
#   make demo   - build a verified int8 package from the real sentiment example
#   make test   - run the test suite
# Each creates .venv and installs from constraints.txt (the tested pins).
#   make bench  - the benchmark suite (adds optimum's own venv, benchmarks/.venv-optimum)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
STAMP := $(VENV)/.edgec-installed
# optimum needs transformers<4.58, so the peer lives in a venv of its own.
PEER := benchmarks/.venv-optimum
PEER_STAMP := $(PEER)/.installed

.PHONY: demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(INSTALL) -e '.[test]'
	touch $@

demo: $(STAMP)
	$(PY) examples/sentiment/demo.py

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

$(PEER_STAMP): benchmarks/requirements-optimum.txt
	$(PYTHON) -m venv $(PEER)
	$(PEER)/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements-optimum.txt
	touch $@

bench: $(STAMP) $(PEER_STAMP)
	$(PY) benchmarks/suite.py

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) benchmarks/.venv-optimum dist .pytest_cache
