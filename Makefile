# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch; installed first so that no resolver pulls a CUDA build.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test venv clean-venv lint bench

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: venv
	$(VENV)/bin/hpsearch demo

test: venv
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/lint-imports

clean-venv:
	rm -rf $(VENV)
