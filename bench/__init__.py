"""Benchmarks: `.venv/bin/python -m bench NAME [--quick]` (see bench/README.md)."""
