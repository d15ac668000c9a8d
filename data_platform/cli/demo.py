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
@click.option(
    "-v", "--verbose", is_flag=True, help="Also print the platform's INFO logs between the steps."
)
def demo(sample_dir: Path | None, verbose: bool) -> None:
    """Migrate; land the sample Qlik files; fetch the sample DMAP feed and the sample
    pedestrian counts from local servers playing their APIs; seed and extract the
    totesys sales database; produce sample taps into a local Kafka broker and consume
    them; ingest everything, build the dbt models and print the results.

    Safe to run again: nothing is landed or applied twice. Only warnings are logged
    between the numbered steps, unless -v.
    """
    import logging

    from data_platform.demo import run_demo

    if not verbose and not (click.get_current_context().find_root().obj or {}).get("debug"):
        logging.getLogger().setLevel(logging.WARNING)

    run_demo(sample_dir, echo=click.echo)
