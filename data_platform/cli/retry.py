"""`data-platform retry LOAD_ID`: re-queue an errored load of any source."""

from __future__ import annotations

import click


@click.command()
@click.argument("load_id", type=int)
def retry(load_id: int) -> None:
    """Re-queue an errored load (any source) after its file is put back in incoming, or
    its cause fixed; the next `run` applies it in its place in the table's order.

    \b
    Uses the file put back in incoming under the same key, else moves the newest copy
    back from the error zone.

    \b
    Example:  data-platform retry 42 && data-platform run
    """
    from data_platform.loads.retry import retry_load
    from data_platform.run import all_sources

    how = retry_load(load_id, sources=all_sources())
    click.echo(f"load {load_id} is ready again ({how})")
