# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch; installed first so that no resolver pulls a CUDA build.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

# Kohn-Sham DFT for `hpsearch data generate --engine gpaw`: system libraries (apt), then GPAW.
DFT_APT := libxc-dev libopenblas-dev libfftw3-dev
DFT_SPEC ?= 'gpaw>=25.1' 'gpaw-data>=1.2'
DFT_SKIP_APT ?=

# Quantum ESPRESSO for the default dataset (`hpsearch data generate`, engine qe): pw.x, pp.x, ld1.x.
QE_APT := quantum-espresso

.PHONY: demo test venv clean-venv lint bench dft test-dft qe qe-optional

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: venv qe
	$(VENV)/bin/hpsearch demo

test: venv qe-optional
	$(PY) -m pytest -q -ra --durations=20 $(PYTEST_ARGS)

# Quantum ESPRESSO from the distribution (Debian/Ubuntu: about 25 s); apt runs only when pw.x,
# pp.x or ld1.x is missing and we are root.
qe:
	@if command -v pw.x >/dev/null 2>&1 && command -v pp.x >/dev/null 2>&1 && command -v ld1.x >/dev/null 2>&1; then \
		echo "make qe: Quantum ESPRESSO present ($$(command -v pw.x))"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(QE_APT) >/dev/null && \
		echo "make qe: installed $$(command -v pw.x)"; \
	else \
		echo "make qe: Quantum ESPRESSO (pw.x, pp.x, ld1.x) is missing and cannot be installed here (needs root and apt-get). Run" >&2; \
		echo "  sudo apt-get install -y $(QE_APT)" >&2; \
		echo "(or put pw.x, pp.x and ld1.x of QE 6.x/7.x on the PATH)" >&2; \
		exit 1; \
	fi

# For the tests: install QE when possible; without it the tests of the qe engine are skipped.
qe-optional:
	@$(MAKE) --no-print-directory qe || echo "make test: without Quantum ESPRESSO the qe engine's tests are skipped"

lint: venv
	$(VENV)/bin/lint-imports

clean-venv:
	rm -rf $(VENV)

# GPAW 26 is source-only on PyPI: it needs libxc, BLAS and FFTW headers, and CC=g++ (its C
# sources include C++ headers). apt runs only when the packages are missing and we are root.
dft: venv
	@if [ -n "$(DFT_SKIP_APT)" ] || dpkg -s $(DFT_APT) >/dev/null 2>&1; then \
		echo "make dft: system libraries present (or DFT_SKIP_APT set)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DFT_APT); \
	else \
		echo "make dft: cannot install $(DFT_APT) here (needs root and apt-get). Run" >&2; \
		echo "  sudo apt-get install -y $(DFT_APT)" >&2; \
		echo "(or provide libxc, OpenBLAS and FFTW headers otherwise and run make dft DFT_SKIP_APT=1)" >&2; \
		exit 1; \
	fi
	CC=g++ $(PY) -m pip install -q $(DFT_SPEC)
	OMP_NUM_THREADS=1 $(PY) -c "import gpaw; print('make dft: GPAW', gpaw.__version__, 'is installed')"

# The gpaw engine's tests alone (they are skipped in `make test` when GPAW is missing).
test-dft: dft
	$(PY) -m pytest -q -ra tests/unit/test_gpaw_engine.py
