"""Benchmark scripts that print figures (run as ``python -m supervisor.perf.<name>``)."""
