# Development shortcuts; run inside the virtual environment made by the README's commands.
.PHONY: lint format test bench golden

lint:
	ruff check . && ruff format --check .

format:
	ruff format . && ruff check --fix .

test:
	python -m pytest

bench:
	python benchmarks/bench_pt.py

golden:  # regenerate tests/fixtures/golden from the reference (needs transformers==4.57.6)
	python scripts/make_golden.py
