"""Files and records written the way the sources write them: for the demo, tests and benchmarks."""
