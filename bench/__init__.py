"""Benchmarks of the training engine against the original's pipeline (not tests: run `python -m bench.bench`)."""
