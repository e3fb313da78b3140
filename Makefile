# Quick start:  make demo   (set-up + separate the bundled demo song)
#               make test   (set-up + whole test suite)
.PHONY: setup demo test bench
setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/stemwright separate --demo -o out

test: setup
	.venv/bin/python -m pytest -q

bench: setup
	.venv/bin/python benchmarks/bench_separate.py
	.venv/bin/python benchmarks/bench_separate.py -m classic
