"""What the evolve commands print (`cubic-qlik evolve-table`, `dmap evolve-type`)."""

from __future__ import annotations

import click

from data_platform.loads.schema_changes import EvolveResult


def echo_evolution(result: EvolveResult) -> None:
    """What an evolve command did, one line per change (Qlik and DMAP)."""
    for change in result.changes:
        click.echo(f"  {change.kind}: {change.describe()}")
    if result.revision is None:
        click.echo(f"{result.table}: the table already fits: no revision written")
    elif result.written:
        click.echo(f"wrote revision {result.revision} ({result.path}) evolving {result.table}")
    else:
        click.echo(
            f"revision {result.revision} ({result.path}) evolving {result.table} was written "
            "before and is not applied yet: nothing new written"
        )
    if result.applied:
        click.echo("database upgraded to head")
    if result.requeued:
        ids = ", ".join(map(str, result.requeued))
        click.echo(f"re-queued load(s) {ids}: the next `data-platform run` applies them")
