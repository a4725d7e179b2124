"""Benchmarks of issue 9 (``python -m bench``): every figure is a ratio against a baseline
measured in the same run, because the machines are shared and noisy. See docs/benchmarks.md."""
