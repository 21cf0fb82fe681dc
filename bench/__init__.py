"""Benchmarks: run each as a module, ``python -m bench.<name> [--quick]``; the last line is JSON."""
