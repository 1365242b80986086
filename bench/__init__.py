"""Benchmarks (not tests): each module prints a table and records it in bench/results/."""
