"""The totesys source: seed, simulate, extraction and loading."""
