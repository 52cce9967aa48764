# The two commands a new user runs; both create or reuse .venv (tools/setup_env.sh).
PY := .venv/bin/python

.PHONY: setup demo test test-fast
setup:
	bash tools/setup_env.sh

demo: setup
	$(PY) tools/demo.py

# Every test, the slowest ten listed at the end.
test: setup
	$(PY) -m pytest tests --durations=10

# Everything but real training runs (pytest -m "not slow").
test-fast: setup
	$(PY) -m pytest tests -m "not slow" --durations=10
