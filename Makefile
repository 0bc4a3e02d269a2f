# Two commands do all the set-up on a fresh machine:
#   make demo   - build a verified int8 package from the real sentiment example
#   make test   - run the test suite
# Each creates .venv and installs from constraints.txt (the tested pins).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
STAMP := $(VENV)/.edgec-installed

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

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) benchmarks/.venv-optimum dist .pytest_cache
