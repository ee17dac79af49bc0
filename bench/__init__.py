"""Benchmarks (`make bench`): figures are written with the machine they ran on to bench/results.md."""
