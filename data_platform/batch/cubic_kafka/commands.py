"""click commands for Kafka (`data-platform kafka ...`)."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path

import click

from data_platform.cli.options import json_option

log = logging.getLogger(__name__)


@click.command("consume", short_help="Consume a topic into batch files in incoming.")
@click.option("--topic", required=True, help="The topic to consume, e.g. taps.")
@click.option(
    "--max-records",
    type=click.IntRange(min=1),
    help="Flush a partition's batch at this many records (default KAFKA_MAX_RECORDS).",
)
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="Flush a batch when its first record is this old (default KAFKA_MAX_SECONDS).",
)
@click.option(
    "--once",
    is_flag=True,
    help="Consume what is in the topic now, flush, commit and exit (a scheduled job).",
)
@click.option(
    "--idle-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="With --once: also exit after this long without a new record.",
)
@json_option
def consume_command(
    topic: str,
    max_records: int | None,
    max_seconds: float | None,
    once: bool,
    idle_seconds: float,
    as_json: bool,
) -> None:
    """Consume TOPIC as a member of the group KAFKA_GROUP_ID into gzip JSON lines files in
    the incoming zone, one per partition batch:
    <KAFKA_PREFIX><topic>/partition=<p>/offsets=<first>-<last>.jsonl.gz.

    A partition's batch is written when it holds --max-records records or its first
    record is --max-seconds old, when a rebalance takes the partition away, and when the
    consumer stops; its offsets are committed only once the file is stored (at least
    once: a crash in between writes the records again, never loses them). SIGTERM or
    Ctrl-C: flush, commit, exit 0. A file that cannot be stored: nothing committed,
    exit 4.

    \b
    Examples:
      data-platform kafka consume --topic taps                 # runs until SIGTERM
      data-platform kafka consume --topic taps --once          # drain and exit
      data-platform kafka consume --topic taps --max-records 500 --max-seconds 60
    """
    from data_platform.batch.cubic_kafka.lander import KafkaLander
    from data_platform.loads.landing import land

    stopping = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("%s received: flushing and committing", signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("consuming %s (pid %d; SIGTERM stops it cleanly)", topic, os.getpid())
    lander = KafkaLander(
        [topic],
        once=once,
        stop=stopping.is_set,
        max_records=max_records,
        max_seconds=max_seconds,
        idle_seconds=idle_seconds,
    )
    try:
        result = land(lander).detail[topic]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(json.dumps(result.to_dict()) if as_json else result.render())


@click.command("produce-sample", short_help="Send sample tap events to a topic (demo).")
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
      data-platform kafka produce-sample --topic taps --count 1000
      data-platform kafka produce-sample --topic taps --count 100 --bad-every 10
      data-platform kafka produce-sample --topic taps --count 400 --poison-every 40
      data-platform kafka produce-sample --topic taps --file taps.jsonl
    """
    from data_platform.batch.cubic_kafka import sample
    from data_platform.batch.cubic_kafka.consume import client_config
    from data_platform.settings import get_settings

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


@click.group("kafka")
def group() -> None:
    """Kafka tap events: consume a topic into batch files in incoming."""


group.add_command(consume_command)
group.add_command(produce_sample_command)
