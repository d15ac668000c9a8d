"""`data-platform verify`: every table checked against its source."""

from __future__ import annotations

import click

from data_platform.cli.options import json_option


@click.command()
@click.option(
    "--source",
    type=click.Choice(
        ["cubic_qlik", "cubic_dmap", "cubic_kafka", "melbourne_pedestrian", "totesys"]
    ),
    help="Only this source's tables.",
)
@click.option("--table", help="Only this table (its name as `status` shows it).")
@click.option("--latest", is_flag=True, help="Run nothing: show the newest result of each check.")
@json_option
def verify(source: str | None, table: str | None, latest: bool, as_json: bool) -> None:
    """Check tables against their sources, keep and alert the results.

    \b
    Qlik: a table whose change files wrote rows, against the next full load of the
      source once all of it is applied (keys missing, extra or different).
    DMAP: each dataset's rows against its file's.
    Kafka: every offset the consumer group committed is a row or a dead letter.
    Pedestrian: records and total per day against the portal's own aggregates.
    totesys: each table against the source database (count and hash per key range,
      narrowed to the keys), the rows the next pass reads left out.

    Exits 1 when a check finds a mismatch (its keys printed); when a source's check
    could not run (its database or portal unreachable), with that failure's code (3
    database, 1 otherwise) after the other sources ran; else 0. A source its settings
    do not let compare (Kafka without KAFKA_BOOTSTRAP_SERVERS, pedestrian counts
    fetched from another portal than OPEN_DATA_BASE_URL) is named `not verified` with
    the reason, and changes no exit code.

    \b
    Example:  data-platform verify --source cubic_dmap
    """
    from data_platform import verify as verifying
    from data_platform.errors import one_line

    failures: dict[str, Exception] = {}
    not_compared: dict[str, str] = {}
    if latest:
        results = verifying.latest(source)
    else:
        ran = verifying.verify(source, table)
        results, failures, not_compared = ran.results, ran.failures, ran.not_compared
    if table and latest:
        results = [v for v in results if v.subject.endswith(table.lower().replace(".", "_"))]
    if as_json:
        import json

        click.echo(json.dumps([v.to_dict() for v in results], indent=2))
    else:
        if not results and not failures and not not_compared:
            click.echo("nothing to verify yet" if not latest else "no verification yet")
        for result in results:
            click.echo(result.line())
            for key in result.keys[:20]:
                click.echo(f"  {key['kind']:<9} {key['key']}")
        for name, reason in sorted(not_compared.items()):
            click.echo(f"{name}: not verified: {reason}")
    for name, exc in sorted(failures.items()):
        click.echo(f"{name}: could not verify: {one_line(exc)[0]}", err=True)
    if failures:
        codes = [one_line(exc)[1] for exc in failures.values()]
        raise SystemExit(next((code for code in codes if code != 1), 1))
    if any(v.verdict == "mismatch" for v in results):
        raise SystemExit(1)
