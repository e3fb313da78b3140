# Quick start:  make demo   (set-up without root + separate the bundled demo song)
#               make test   (set-up with every extra and the test suite's Debian packages + whole test suite, one worker per core)
.PHONY: setup setup-dev demo test bench
setup:
	bash scripts/setup.sh

setup-dev:
	bash scripts/setup.sh --dev

demo: setup
	.venv/bin/stemwright separate --demo -o out

test: setup-dev
	.venv/bin/python -m pytest -q -n auto --dist loadfile  # one worker per core, a test file's tests together

bench: setup
	.venv/bin/python benchmarks/bench_separate.py
	.venv/bin/python benchmarks/bench_separate.py -m classic
