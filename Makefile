# Quanpai: `make demo` runs the whole flow on the embedded default; `make test` runs the checks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
MEMBERS ?= 100000
BENCH_SIZE ?= full

.PHONY: install system-deps test lint typecheck pytest demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	./scripts/system-deps.sh

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy .

pytest: install system-deps
	$(BIN)/pytest

test: install system-deps lint typecheck pytest

demo: install
	$(BIN)/quanpai demo --members $(MEMBERS)

bench: install system-deps
	$(BIN)/python -m bench.run --size $(BENCH_SIZE)

clean:
	rm -rf var build *.egg-info .mypy_cache .ruff_cache .pytest_cache
