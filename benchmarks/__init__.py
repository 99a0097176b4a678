"""Benchmarks: `make bench` (all) or `make bench-NAME`. Each `bench_<name>.py` has `run(quick) -> dict`."""
