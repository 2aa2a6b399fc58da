"""Benchmarks: `make bench` runs `python -m bench` (PORTAL_ENV=testing)."""
