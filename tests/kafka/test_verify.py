"""Kafka tables verified against the brokers (issue 25): every offset the consumer group
committed is a row or a dead letter; a row lost and a dead letter lost are named by
[topic, partition, offset], on librdkafka's mock cluster and a real platform."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from data_platform.batch.cubic_kafka.consume import consume
from data_platform.batch.cubic_kafka.verify import verify_kafka
from data_platform.db.engine import get_engine
from data_platform.run import run_once
from data_platform.settings import reset_settings
from harness.samples.kafka import produce, tap_events
from harness.stand_ins.kafka_broker import create_topic


@pytest.fixture
def consumed(kafka: str, platform, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("KAFKA_TOPICS", "taps")
    reset_settings()
    create_topic(kafka, "taps", 2)
    produce(kafka, "taps", tap_events(60, 3, bad_every=11))
    result = consume("taps", max_records=25, once=True)
    assert result.records == 60
    summary = run_once(land=False).source("cubic_kafka")
    assert summary.ingest.errored == 0, summary.ingest.errors
    return kafka


def _dead_letter_offset() -> tuple[int, int]:
    with get_engine().connect() as conn:
        key = conn.scalar(text("SELECT record_key FROM dead_letters ORDER BY id LIMIT 1"))
    return key[1], key[2]


def test_every_committed_offset_is_a_row_or_a_dead_letter(consumed: str) -> None:
    (found,) = verify_kafka(get_engine())
    assert (found.verdict, found.expected, found.actual) == ("ok", 60, 60)
    assert found.subject == "cubic_kafka.taps"


def test_a_lost_row_and_a_lost_dead_letter_are_named(consumed: str) -> None:
    dead_partition, dead_offset = _dead_letter_offset()
    with get_engine().begin() as conn:
        partition, offset = conn.execute(
            text("SELECT kafka_partition, kafka_offset FROM cubic_kafka.taps ORDER BY 1, 2 LIMIT 1")
        ).one()
        conn.execute(
            text("DELETE FROM cubic_kafka.taps WHERE kafka_partition = :p AND kafka_offset = :o"),
            {"p": partition, "o": offset},
        )
        conn.execute(text("DELETE FROM dead_letters WHERE id = (SELECT min(id) FROM dead_letters)"))
    (found,) = verify_kafka(get_engine())
    assert (found.verdict, found.differing, found.actual) == ("mismatch", 2, 58)
    assert sorted(k["key"] for k in found.keys) == sorted(
        [["taps", partition, offset], ["taps", dead_partition, dead_offset]]
    )


def test_not_checked_while_a_landed_file_waits(kafka: str, platform, monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_TOPICS", "taps")
    reset_settings()
    create_topic(kafka, "taps", 1)
    produce(kafka, "taps", tap_events(5, 4))
    consume("taps", once=True)
    from data_platform.batch.cubic_kafka.source import scan_kafka

    scan_kafka()  # recorded, not applied
    assert verify_kafka(get_engine()) == []


def test_tables_from_kafka_without_brokers_set_are_named_not_verified(
    consumed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's broker is gone once it ends: its taps are named as not verified, with
    the reason, never `nothing to verify yet`, and the exit code stays 0."""
    from click.testing import CliRunner

    from data_platform.cli.main import cli

    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS")
    reset_settings()
    done = CliRunner().invoke(cli, ["verify", "--source", "cubic_kafka"])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [
        "cubic_kafka: not verified: KAFKA_BOOTSTRAP_SERVERS is not set: the committed "
        "offsets of 1 topic table(s) cannot be read"
    ]
