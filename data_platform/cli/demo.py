"""`data-platform demo`: the whole flow on the sample data, on whatever is configured."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--sample-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Files to land in the incoming zone (default: the repository's sample_data/).",
)
def demo(sample_dir: Path | None) -> None:
    """Migrate, land the sample Qlik files, fetch the sample DMAP feed from a local API,
    ingest both and print the result.

    Safe to run again: nothing is landed or applied twice.
    """
    from data_platform.demo import run_demo

    run_demo(sample_dir, echo=click.echo)
