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
	python benchmarks/bench_tf.py
	python benchmarks/bench_flax.py
	python benchmarks/bench_tokenizers.py
	python benchmarks/bench_convert.py

golden:  # regenerate the committed fixtures from the reference (needs transformers==4.57.6)
	python scripts/make_golden.py
	python scripts/make_tokenizer_fixtures.py
	python scripts/make_sample_checkpoint.py
