"""Same as `data-platform cubic-qlik ingest`, for `python -m` (see commands.py)."""

from data_platform.cli.main import run_standalone

if __name__ == "__main__":
    run_standalone("cubic-qlik", "ingest")
