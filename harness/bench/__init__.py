"""Benchmarks: how fast the platform converts and loads files."""
