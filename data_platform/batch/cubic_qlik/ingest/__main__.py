"""`python -m data_platform.batch.cubic_qlik.ingest`: the same as
`data-platform cubic-qlik ingest` (data_platform/cli/qlik.py)."""

from data_platform.cli.main import run_standalone

if __name__ == "__main__":
    run_standalone("cubic-qlik", "ingest")
