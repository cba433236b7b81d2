PY ?= .venv/bin/python

.PHONY: check lint typecheck test bench

check: lint typecheck test

lint:
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench

typecheck:
	$(PY) -m mypy

test:
	$(PY) -m pytest -n 2 -q

bench:
	$(PY) bench/overhead.py
