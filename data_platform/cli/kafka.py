"""click commands for Kafka (`data-platform kafka ...`)."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading

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


@click.group("kafka")
def group() -> None:
    """Kafka tap events: consume a topic into batch files in incoming."""


group.add_command(consume_command)
