# Development shortcuts; run inside the virtual environment made by the README's commands.
.PHONY: lint format test test-quick bench golden golden-family

lint:
	ruff check . && ruff format --check .

format:
	ruff format . && ruff check --fix .

test:
	python -m pytest

test-quick:  # the quick loop: everything but the tests marked slow (CI runs them all)
	python -m pytest -m "not slow"

bench:
	python benchmarks/bench_pt.py
	python benchmarks/bench_tf.py
	python benchmarks/bench_flax.py
	python benchmarks/bench_tokenizers.py
	python benchmarks/bench_convert.py
	python benchmarks/bench_family.py
	python benchmarks/bench_onnx.py

golden:  # regenerate the committed fixtures from the reference (needs transformers==4.57.6)
	python scripts/make_golden.py
	python scripts/make_tokenizer_fixtures.py
	python scripts/make_sample_checkpoint.py

golden-family:  # RoFormer-V2 / Sim / GPT-char fixtures from bert4keras and JunnYu's roformer (builds their venvs)
	python scripts/make_family_golden.py
