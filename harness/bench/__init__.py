"""Benchmarks: how fast the platform converts and loads files, and how its page answers."""

# `make bench`'s steps, in the order they run (`python -m harness bench --only STEP`).
STEPS = ("loads", "warehouse", "kafka", "parquet", "web")
