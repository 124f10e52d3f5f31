"""Benchmarks of the training engine against the seed's pipeline (not tests: run `python -m bench.bench`)."""
