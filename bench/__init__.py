"""Benchmarks of accord: each sub-package is one benchmark, runnable as `python -m bench.<name>`."""
