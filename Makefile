# Two commands do all the set-up on a fresh machine:
#   make demo   - build a verified int8 package from the real sentiment example
#   make test   - lint, the layer contract, mypy over TensorRT calls, and every test
#   make test-fast - the same without the slow real-teacher tests (the edit loop)
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

.PHONY: demo test test-fast check lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml runtime/pyproject.toml constraints.txt | $(PY)
	# The runtime is its own distribution (runtime/); the compiler depends on it.
	$(INSTALL) -e './runtime[onnxruntime,openvino]' -e '.[test]'
	# Type stubs of the TensorRT 10 API; without --no-deps pip would try to build the
	# tensorrt placeholder, which downloads from an index these machines cannot reach.
	$(INSTALL) --no-deps tensorrt-stubs
	touch $@

demo: $(STAMP)
	$(PY) examples/sentiment/demo.py

# tensorrt-stubs 10.13 does not parse as shipped (parameters named `in`, a required
# parameter after optional ones) and has no py.typed: mypy reads a repaired copy.
TRT_STUBS := build/trt-stubs
$(TRT_STUBS)/.repaired: $(STAMP)
	rm -rf $(TRT_STUBS) && mkdir -p $(TRT_STUBS)/tensorrt $(TRT_STUBS)/tensorrt_bindings
	site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	  cp "$$site"/tensorrt/*.pyi $(TRT_STUBS)/tensorrt/ && \
	  cp "$$site"/tensorrt_bindings/*.pyi $(TRT_STUBS)/tensorrt_bindings/
	sed -i -E -e 's/\((self(: [A-Za-z0-9_]+)?), in: /(\1, in_: /' \
	  -e 's/, channel_axis: int\)/, channel_axis: int = ...)/' $(TRT_STUBS)/tensorrt_bindings/tensorrt.pyi
	touch $@

# Static checks: style, imports that point only down, TensorRT calls against its stubs.
check: $(STAMP) $(TRT_STUBS)/.repaired
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m mypy

test: check
	$(PY) -m pytest

test-fast: check
	$(PY) -m pytest -m "not slow"

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
	rm -rf $(VENV) benchmarks/.venv-optimum dist .pytest_cache build/trt-stubs
