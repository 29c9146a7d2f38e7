# bastion: the two quick-start commands are `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast test-slow lint typecheck install clean

install: $(STAMP)

# torch is pinned and installed first, so nothing later pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

# Exit code 1 means "the scan found something", which is the demo's point, not a failure.
demo: $(STAMP)
	$(BIN)/bastion scan --demo --out bastion-demo-report.html; rc=$$?; [ $$rc -le 1 ]
	@echo "Open bastion-demo-report.html in a browser (models in bastion-demo-models/)."

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src

# Two test workers on two cores: one torch/BLAS thread each, no oversubscription.
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

test-fast: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -m "not slow" -n 2 -q

test-slow: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -m slow -q; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

test: lint typecheck test-fast test-slow

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
