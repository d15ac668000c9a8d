"""`python -m data_platform.batch.cubic_dmap.fetch`: the same as `data-platform dmap fetch`
(data_platform/cli/dmap.py)."""

from data_platform.cli.main import run_standalone

if __name__ == "__main__":
    run_standalone("dmap", "fetch")
