"""`python -m harness <command>`: the demo, the benchmarks, and the tools that play the
sources for them (seed and simulate the totesys database, send sample taps to Kafka).

Run from a checkout (`make demo`, `make bench`); none of it is installed with the package.
Errors are one `Error:` line and exit codes are those of `data-platform`.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import click

from data_platform.cli.main import CONTEXT_SETTINGS, AppGroup
from data_platform.cli.options import json_option
from harness.bench import STEPS


@click.group(cls=AppGroup, context_settings=CONTEXT_SETTINGS)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """The platform's harness: the demo, the benchmarks, stand-ins for the sources.

    \b
    Examples:
      python -m harness demo                  # the whole flow on sample data
      python -m harness bench --rows 100000
      python -m harness totesys seed
      python -m harness kafka produce-sample --topic taps --count 1000
    """
    from data_platform import log
    from data_platform.settings import get_settings

    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    settings = get_settings()
    log.configure("DEBUG" if debug else settings.log_level, settings.log_format)


@cli.command()
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

    from harness.demo import run_demo

    if not verbose and not (click.get_current_context().find_root().obj or {}).get("debug"):
        logging.getLogger().setLevel(logging.WARNING)

    run_demo(sample_dir, echo=click.echo)


@cli.command()
@click.option(
    "--rows",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="Rows per file.",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to put the files, kept afterwards (default: a temporary directory).",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Runs of each step, each bracketed by raw COPY runs.",
)
@click.option(
    "--only",
    type=click.Choice(STEPS),
    multiple=True,
    help="Run only this step (repeatable; default: every step).",
)
def bench(rows: int, work_dir: Path | None, repeats: int, only: tuple[str, ...]) -> None:
    """`make bench`: speed and memory of the platform's paths, as ratios to baselines
    measured in the same run, on a private embedded Postgres and local store.

    \b
    Examples:
      python -m harness bench
      python -m harness bench --rows 100000 --repeats 1
      python -m harness bench --only web
    """
    from harness.bench.run import run_bench

    run_bench(rows, work_dir, repeats, only or STEPS)


@cli.group()
def totesys() -> None:
    """The totesys source database: create and fill it, keep it busy. The platform only
    reads it (`data-platform totesys extract`, `data-platform run`)."""


@totesys.command("seed", short_help="Create the totesys source database and fill it.")
@click.option(
    "--orders",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Sales orders to create (a quarter as many purchase orders).",
)
@click.option(
    "--seed",
    "seed_value",
    type=int,
    default=1,
    show_default=True,
    help="Random seed: the same seed, the same rows.",
)
@click.option("--reset", is_flag=True, help="Drop the eleven tables first and seed anew.")
@json_option
def seed_command(orders: int, seed_value: int, reset: bool, as_json: bool) -> None:
    """Create the totesys database (TOTESYS_DATABASE_URL; unset: `totesys` on the
    platform's own server), its eleven tables and the read-only role totesys_reader,
    and fill it with a generated sales history (the same for the same --seed).

    A seeded database is left alone (it says so) unless --reset.

    \b
    Examples:
      python -m harness totesys seed
      python -m harness totesys seed --orders 1000000 --seed 7 --reset
    """
    from harness.totesys.seed import seed

    result = seed(orders=orders, seed=seed_value, reset=reset)
    click.echo(json.dumps(result.to_dict()) if as_json else result.render())


@totesys.command("simulate", short_help="Insert and update rows as the live business would.")
@click.option(
    "--minutes",
    type=click.FloatRange(min=0, min_open=True),
    required=True,
    help="How long to run (Ctrl-C stops earlier).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Actions per second (an action: one transaction of one or more rows).",
)
@click.option("--seed", "seed_value", type=int, help="Random seed (default: a new one each run).")
@json_option
def simulate_command(minutes: float, rate: float, seed_value: int | None, as_json: bool) -> None:
    """Keep a seeded totesys database busy: new sales orders with their transactions and
    payments, order updates, payments marked paid, counterparty/staff/address updates,
    batches of rows sharing one last_updated millisecond, and now and then a long
    transaction that commits a row late with an older timestamp.

    Progress is logged every minute; the totals are printed at the end.

    \b
    Examples:
      python -m harness totesys simulate --minutes 30
      python -m harness totesys simulate --minutes 5 --rate 20 --json
    """
    from harness.totesys.simulate import simulate

    stopped = False

    def on_interrupt(signum, frame) -> None:
        nonlocal stopped
        stopped = True

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = simulate(minutes=minutes, rate=rate, seed=seed_value, stop=lambda: stopped)
    finally:
        signal.signal(signal.SIGINT, previous)
    click.echo(json.dumps(result.to_dict()) if as_json else result.render())


@cli.group()
def kafka() -> None:
    """Sample tap events for a Kafka topic (the platform consumes them:
    `data-platform kafka consume`)."""


@kafka.command("produce-sample", short_help="Send sample tap events to a topic (demo).")
@click.option("--topic", required=True, help="The topic to send to, e.g. taps.")
@click.option(
    "--count", type=click.IntRange(min=0), default=100, show_default=True, help="How many."
)
@click.option(
    "--bad-every",
    type=click.IntRange(min=1),
    help="Make every N-th event malformed (not JSON, incomplete, wrong type).",
)
@click.option(
    "--poison-every",
    type=click.IntRange(min=1),
    help="Make every N-th event a poison record: well-formed, with a value PostgreSQL "
    "cannot store (a NUL, a lone surrogate, a fare past the integer column, 1e999).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same events.")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Send each line of this file as one record instead (JSON lines; sent as is).",
)
def produce_sample_command(
    topic: str,
    count: int,
    bad_every: int | None,
    poison_every: int | None,
    seed: int,
    path: Path | None,
) -> None:
    """Send sample tap events (JSON: tapId, tokenId, stopId, deviceId, tapTime, fare,
    mode) to TOPIC on KAFKA_BOOTSTRAP_SERVERS, keyed by tokenId; or the lines of --file.

    \b
    Examples:
      python -m harness kafka produce-sample --topic taps --count 1000
      python -m harness kafka produce-sample --topic taps --count 100 --bad-every 10
      python -m harness kafka produce-sample --topic taps --count 400 --poison-every 40
      python -m harness kafka produce-sample --topic taps --file taps.jsonl
    """
    from data_platform.batch.cubic_kafka.consume import client_config
    from data_platform.settings import get_settings
    from harness.samples import kafka as sample

    config = client_config(get_settings())
    bootstrap = config.pop("bootstrap.servers")
    if path is not None:
        with path.open(encoding="utf-8") as lines:
            events = (line.rstrip("\r\n") for line in lines if line.strip())
            sent = sample.produce(bootstrap, topic, events, config=config)
    else:
        events = sample.tap_events(count, seed, bad_every=bad_every, poison_every=poison_every)
        sent = sample.produce(bootstrap, topic, events, config=config)
    click.echo(f"sent {sent} record{'s' if sent != 1 else ''} to {topic}")


def main() -> None:
    """`python -m harness`."""
    cli.main(prog_name="python -m harness")
