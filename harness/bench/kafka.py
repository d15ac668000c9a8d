"""Tap events end to end: N events produced into a local Kafka-protocol broker
(librdkafka's mock cluster), consumed into batch files, loaded into cubic_kafka.taps.
Prints events/s per stage and from the first record sent to the rows committed (run by
`make bench`, in its own process: the peak RSS is the whole pipeline's)."""

from __future__ import annotations

import threading
import time

# Records a partition of librdkafka's mock cluster keeps (measured: about 23,000 of the
# sample taps); `make bench` stays under it so no record expires before it is consumed.
MOCK_RETAINS = 20_000


def kafka_bench(home: str, events: int) -> dict[str, float]:
    """Seconds of producing, consuming and loading `events` taps, and the rows loaded."""
    from harness.bench.qlik import _configure

    _configure(home)
    from sqlalchemy import text

    from data_platform.batch.cubic_kafka.consume import consume
    from data_platform.batch.cubic_kafka.source import KAFKA
    from data_platform.db import migrations
    from data_platform.db.engine import get_engine
    from data_platform.loads.worker import ingest
    from data_platform.settings import get_settings
    from harness.samples.kafka import produce, tap_events
    from harness.stand_ins.kafka_broker import create_topic, mock_cluster

    with get_engine().connect() as conn:
        migrated = conn.scalar(text("SELECT to_regclass('cubic_kafka.taps') IS NOT NULL"))
    if not migrated:
        migrations.upgrade()
    with get_engine().begin() as conn:
        conn.execute(text("TRUNCATE cubic_kafka.taps"))
    figures: dict[str, float] = {"events": events}
    with mock_cluster(partitions=3) as bootstrap:
        create_topic(bootstrap, "taps", 3)
        settings = get_settings().model_copy(
            update={"kafka_bootstrap_servers": bootstrap, "kafka_group_protocol": "consumer"}
        )
        # The mock broker keeps only the newest records of a partition (about 23,000 here),
        # so the consumer runs while the producer sends, as in production; it stops a few
        # seconds after the last record was sent, flushing and committing.
        produced: list[float] = []
        outcome: dict[str, object] = {}

        def run_consumer() -> None:
            outcome["result"] = consume(
                "taps",
                settings=settings,
                max_records=100_000,
                max_seconds=3600,
                stop=lambda: bool(produced) and time.monotonic() > produced[0] + 5,
            )

        consumer = threading.Thread(target=run_consumer)
        started = time.perf_counter()
        consumer.start()
        time.sleep(2)  # joined the group before the first record
        produce(bootstrap, "taps", tap_events(events))
        produced.append(time.monotonic())
        figures["produce"] = time.perf_counter() - started
        consumer.join()
        figures["consume"] = time.perf_counter() - started  # until its last file, committed
        result = outcome["result"]
    loading = time.perf_counter()
    KAFKA.scan()
    loaded = ingest(KAFKA)
    figures["load"] = time.perf_counter() - loading
    figures["broker to table"] = time.perf_counter() - started
    if loaded.errored:
        raise RuntimeError(f"load failed: {loaded.errors}")
    figures["files"] = len(result.files)
    with get_engine().connect() as conn:
        figures["rows"] = conn.scalar(text("SELECT count(*) FROM cubic_kafka.taps"))
    if figures["rows"] != events:
        # The mock broker drops a partition's oldest records past its size: a consumer
        # that falls behind then skips them (offset out of range), as against a real
        # broker's retention. A figure from such a run would be a lie.
        raise RuntimeError(
            f"{events - figures['rows']:,.0f} of {events:,} records were not loaded: more "
            f"than the mock broker keeps (MOCK_RETAINS per partition); run fewer events"
        )
    return figures


def report_kafka(figures: dict[str, float], rss_mb: float) -> None:
    events = figures["events"]
    print()
    print(f"tap events, {events:,.0f} through a local Kafka-protocol broker:")
    for stage in ("produce", "consume", "load", "broker to table"):
        print(f"  {stage:<16} {figures[stage]:>8.2f} s  {events / figures[stage]:>12,.0f} events/s")
    print(
        f"  (consume overlaps produce: it ends 5 s after the last record is sent; "
        f"{figures['files']:.0f} files, {figures['rows']:,.0f} rows; peak RSS {rss_mb:.0f} MB)"
    )
