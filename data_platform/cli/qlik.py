"""click commands for the Qlik source; also run as `python -m data_platform.batch.cubic_qlik.X`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from data_platform.cli.options import json_option


@click.command("process-new-table")
@click.option("--table", "source_table", required=True, help="Source table, e.g. EDW.SAMPLE.")
@click.option(
    "--dfm",
    "dfm_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read columns from this .dfm instead of the table's first full load in incoming.",
)
@click.option("--raw", is_flag=True, help="Keep every column as text (types not known yet).")
@click.option("--key", help="Key columns, comma-separated, when the .dfm marks none.")
@click.option("--apply", is_flag=True, help="Also run `alembic upgrade head`.")
@click.option(
    "--versions-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the revision here instead of migrations/cubic_qlik/ (or MIGRATIONS_DIR).",
)
@click.option(
    "--history",
    is_flag=True,
    help="Also keep the table's point-in-time history (<table>_history; doc/qlik-history.md).",
)
def process_new_table(
    source_table: str,
    dfm_path: Path | None,
    raw: bool,
    key: str | None,
    apply: bool,
    versions_dir: Path | None,
    history: bool,
) -> None:
    """Onboard a Qlik table: write an Alembic revision that creates its typed
    current-state table in schema cubic_ods_qlik and registers it.

    \b
    Example:
      data-platform cubic-qlik process-new-table --table EDW.SAMPLE --apply
    """
    from data_platform.batch.cubic_qlik.onboarding import onboard_table

    keys = [k.strip() for k in key.split(",") if k.strip()] if key else None
    result = onboard_table(
        source_table,
        dfm_path=dfm_path,
        raw=raw,
        key=keys,
        apply=apply,
        versions_dir=versions_dir,
        history=history,
    )
    target = f"{result.db_schema}.{result.db_table}"
    if result.created:
        click.echo(f"wrote revision {result.revision} ({result.path}) creating {target}")
    else:
        click.echo(
            f"{result.source_table} is onboarded already (revision {result.revision}, "
            f"{target}): nothing written"
        )
    if result.applied:
        click.echo("database upgraded to head")


@click.command("evolve-table")
@click.option("--table", "table", required=True, help="The table: EDW.SAMPLE or any of its names.")
@click.option(
    "--dfm",
    "dfm_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Evolve to this .dfm instead of those of the loads waiting on the change.",
)
@click.option("--apply", is_flag=True, help="Also upgrade to head and re-queue the waiting loads.")
@click.option(
    "--versions-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the revision here instead of migrations/cubic_qlik/ (or MIGRATIONS_DIR).",
)
def evolve_table(table: str, dfm_path: Path | None, apply: bool, versions_dir: Path | None) -> None:
    """Evolve a Qlik table whose source changed shape: write a reviewed Alembic revision
    from the .dfm of the loads waiting on the change (columns added, types widened,
    columns gone from the source kept); with --apply, upgrade and re-queue those loads,
    which the next `run` applies. Refuses, naming why, what would lose or reinterpret
    stored data (a changed key, a narrowing, a change of kind).

    \b
    Example:
      data-platform cubic-qlik evolve-table --table EDW.SAMPLE --apply
    """
    from data_platform.batch.cubic_qlik.evolve import evolve_table as evolve
    from data_platform.cli.evolution import echo_evolution
    from data_platform.loads.retry import operator

    result = evolve(
        table, dfm_path=dfm_path, apply=apply, actor=operator(), versions_dir=versions_dir
    )
    echo_evolution(result)


@click.command("keep-history")
@click.option("--table", "table", required=True, help="The table: EDW.SAMPLE or any of its names.")
@click.option("--apply", is_flag=True, help="Also run `alembic upgrade head`.")
@click.option(
    "--versions-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the revision here instead of migrations/cubic_qlik/ (or MIGRATIONS_DIR).",
)
def keep_history(table: str, apply: bool, versions_dir: Path | None) -> None:
    """Keep a Qlik table's point-in-time history from now on: write a reviewed Alembic
    revision creating <table>_history (a row per version of a key, valid from and to by
    change sequence) and <table>_as_of(T), seeded with the rows the table holds now.
    Every file applied afterwards writes its versions in the same transaction as the
    table (doc/qlik-history.md).

    \b
    Example:
      data-platform cubic-qlik keep-history --table EDW.SAMPLE --apply
    """
    from data_platform.batch.cubic_qlik.onboarding import keep_history as keep

    result = keep(table, apply=apply, versions_dir=versions_dir)
    if result.path is not None:
        click.echo(
            f"wrote revision {result.revision} ({result.path}) creating {result.history_table}"
        )
    else:
        click.echo(f"{result.table} keeps its history in {result.history_table} already")
    if result.applied:
        click.echo("database upgraded to head")


@click.command("scan")
@json_option
def scan(as_json: bool) -> None:
    """Scan: record every new Qlik data file in the incoming zone as a `ready` load.

    \b
    Example:  data-platform cubic-qlik scan
    (also `process-incoming`, the reference platform's name, and
    `python -m data_platform.batch.cubic_qlik.process_incoming`)
    """
    from data_platform.batch.cubic_qlik.scan import scan_incoming

    result = scan_incoming()
    if as_json:
        click.echo(json.dumps(result.__dict__))
        return
    click.echo(
        f"scanned {result.tables} table(s): {result.new_loads} new load(s), "
        f"{result.new_snapshots} new snapshot(s)"
    )
    for key in result.unrecognised_keys:
        click.echo(f"  not a Qlik data file, left in place: {key}")


@click.command("ingest")
@click.option(
    "--table",
    "tables",
    multiple=True,
    help="Only this table (repeatable): EDW.SAMPLE, cubic_ods_qlik.edw_sample or "
    "cubic_ods_qlik__edw_sample.",
)
@json_option
def ingest(tables: tuple[str, ...], as_json: bool) -> None:
    """Apply ready loads to their current-state tables, then archive (or error) each file.

    Safe to run in several processes at once: each table is worked by one at a time.

    \b
    Example:  data-platform cubic-qlik ingest
    """
    from data_platform.batch.cubic_qlik.source import ingest_qlik as run_ingest

    names = None
    if tables:
        from data_platform.db.engine import get_engine
        from data_platform.loads.tables import resolve_tables

        with get_engine().connect() as conn:
            found = resolve_tables(conn, list(tables))
        other = [t.name for t in found if t.source != "cubic_qlik"]
        if other:
            raise click.UsageError(f"not Qlik tables: {', '.join(other)}")
        names = [t.name for t in found]
    result = run_ingest(names)
    if as_json:
        click.echo(json.dumps(result.__dict__))
        return
    click.echo(
        f"archived {result.archived} load(s) ({result.superseded} superseded), "
        f"errored {result.errored}, {result.rows} row(s) applied"
    )
    for message in result.errors:
        click.echo(f"  error: {message}")
    if result.replaced:
        click.echo(
            f"  {result.replaced} file(s) replaced in incoming after the scan: not applied; "
            "their new versions are loads of their own at the next scan"
        )
    for name in result.blocked_tables:
        click.echo(f"  {name}: waiting for an errored load to be retried")
    for name in result.busy_tables:
        click.echo(f"  {name}: another worker is on it")


@click.command("retry")
@click.argument("load_id", type=int)
def retry(load_id: int) -> None:
    """Re-queue an errored load after its file is put back in incoming or its cause fixed.

    \b
    Example:  data-platform cubic-qlik retry 42 && data-platform run
    """
    from data_platform.batch.cubic_qlik.source import companions
    from data_platform.loads.retry import retry_load

    how = retry_load(load_id, companions)
    click.echo(f"load {load_id} is ready again ({how})")


@click.command("set-table")
@click.option("--table", "table", required=True, help="The table: EDW.SAMPLE or any of its names.")
@click.option(
    "--change-mask-order",
    type=click.Choice(["little_endian", "big_endian", "auto"]),
    help="Byte order of a header__change_mask longer than one byte; auto: decided per file "
    "from its before and after images.",
)
@click.option(
    "--sparse-updates/--no-sparse-updates",
    default=None,
    help="A U leaves untouched columns (NULL LOBs, clear mask bits) as they are.",
)
@json_option
def set_table(
    table: str, change_mask_order: str | None, sparse_updates: bool | None, as_json: bool
) -> None:
    """Show a Qlik table's settings, changing those given first. A change applies to the
    loads that run after it: retry an errored load to apply it there.

    \b
    Example:
      data-platform cubic-qlik set-table --table EDW.SAMPLE --change-mask-order big_endian
    """
    from data_platform.batch.cubic_qlik.table_settings import KEEP
    from data_platform.batch.cubic_qlik.table_settings import set_table as apply_settings

    settings = apply_settings(
        table,
        sparse_updates=KEEP if sparse_updates is None else sparse_updates,
        change_mask_order=(
            KEEP
            if change_mask_order is None
            else None
            if change_mask_order == "auto"
            else change_mask_order
        ),
    )
    if as_json:
        click.echo(json.dumps(settings.__dict__))
        return
    click.echo(
        f"{settings.name}: sparse updates {'on' if settings.sparse_updates else 'off'}, "
        f"change mask order {settings.change_mask_order or 'auto (from the images)'}"
    )


@click.group("cubic-qlik")
def group() -> None:
    """Cubic ODS tables from Qlik Replicate: onboard, evolve, set, keep history, scan,
    ingest, retry."""


for command in (process_new_table, evolve_table, set_table, keep_history, scan, ingest, retry):
    group.add_command(command)
# The reference platform's name for the scan, kept for its scripts.
group.add_command(
    click.Command("process-incoming", callback=scan.callback, params=scan.params, hidden=True)
)
