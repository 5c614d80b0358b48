# Two commands on a fresh machine:  `make demo` (main job)  and  `make test` (test suite).
# Both create .venv and install everything they need (CPU-only torch pinned first).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench install clean

$(STAMP): pyproject.toml jeans/pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need Python 3.11 ($(PYTHON))"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	# the Jeans analysis is its own distribution (jeans/), installed and tested with gcsbi
	$(PY) -m pip install -q -e ./jeans
	$(PY) -m pip install -q -e ".[dev]"
	# the MIST/C3K bolometric-correction tables ship inside gcsbi (gcsbi/stars/data/): nothing else to install
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m gcsbi.demo --out demo-output

# one pytest worker per core (TEST_WORKERS=0: one process); the blocks of a document stay in one worker
TEST_WORKERS ?= 2
test: $(STAMP)
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

test-fast: $(STAMP)
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info demo-output
